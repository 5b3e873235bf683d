"""cloudarcade.runtime: what every long-running command starts with."""

from __future__ import annotations

import gc

from cloudarcade import runtime


def test_run_moves_startup_objects_out_of_the_collectors_way() -> None:
    async def frozen() -> int:
        return gc.get_freeze_count()

    gc.unfreeze()  # whatever an earlier test in this process froze
    assert gc.get_freeze_count() == 0
    try:
        assert runtime.run(frozen(), use_uvloop=False) > 1000  # modules, classes, the app
    finally:
        gc.unfreeze()
