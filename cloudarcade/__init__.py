"""cloudarcade: a cloud-gaming streaming testbed.

Headless games are rendered with pygame, encoded with PyAV and streamed over
WebRTC (aiortc); netsim puts network profiles into the media path and bench
measures input-to-photon delay stage by stage.
"""

import os

# pygame prints a banner on import and SDL would look for a display and a
# sound card; cloudarcade renders headless unless a window is asked for.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

__version__ = "0.1.0"
