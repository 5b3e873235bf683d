"""tools/mutation.py (make mutation) still fits the code: every mutation's text is there once.

The mutation run itself takes a minute and lives in ``make mutation``; this
check is instant, so that moving the code a mutation edits fails here, in the
suite, instead of turning the mutation STALE unnoticed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _mutation_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation", ROOT / "tools" / "mutation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mutation", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutation_applies_once_and_names_existing_tests() -> None:
    mutation = _mutation_module()
    names = [m.name for m in mutation.MUTATIONS]
    assert names == ["marker-flip", "netsim-delay", "spectator-isolation", "codec-validation"]
    for m in mutation.MUTATIONS:
        source = (ROOT / m.path).read_text()
        assert source.count(m.old) == 1, f"{m.name}: {m.path} no longer holds its text once"
        assert m.new != m.old
        for test in m.tests:
            assert (ROOT / test.split("::")[0]).is_file(), f"{m.name}: no {test}"
