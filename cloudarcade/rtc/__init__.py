"""The one way into aiortc's internals: seams per aiortc class, steps, and their contract.

See :mod:`cloudarcade.rtc.seam` for the seams, :mod:`cloudarcade.rtc.steps`
for aiortc's own behaviour as steps, :mod:`cloudarcade.rtc.contract` for the
pinned versions and private members, and docs/aiortc.md for why.
"""
