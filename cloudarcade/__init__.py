"""cloudarcade: a cloud-gaming streaming testbed.

Headless games are rendered with pygame, encoded with PyAV and streamed over
WebRTC (aiortc); netsim puts network profiles into the media path and bench
measures input-to-photon delay stage by stage.
"""

__version__ = "0.1.0"
