"""The source layout: one module object per file, and loggers that are used.

The top-level packages (netsim, server, ...) are importable as
``cloudarcade.netsim`` etc. through symlinks in ``cloudarcade/``. Imported by
their top-level name as well, one file would run twice as two modules (two
registries, two sets of metrics, classes that fail isinstance checks); these
tests keep every import on the ``cloudarcade.`` path.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINKED = sorted(p.name for p in (ROOT / "cloudarcade").iterdir() if p.is_symlink())


def _sources() -> list[Path]:
    out = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0].startswith(".") or (parts[0] == "cloudarcade" and parts[1] in LINKED):
            continue  # the venv, and the links (their files are seen at the top level)
        out.append(path)
    return out


def test_the_linked_packages_are_imported_only_through_cloudarcade() -> None:
    assert {"bench", "client", "encoder", "metrics", "netsim", "server"} <= set(LINKED)
    top_level = re.compile(rf"^\s*(?:from|import)\s+(?:{'|'.join(LINKED)})\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in _sources() if top_level.search(p.read_text())]
    assert offenders == [], f"import these through cloudarcade.<package>: {offenders}"


def test_importing_the_entry_points_loads_no_module_twice() -> None:
    code = (
        "import sys\n"
        "import cloudarcade.cli, cloudarcade.server.app, cloudarcade.client.headless\n"
        "import cloudarcade.bench.runner, cloudarcade.netsim\n"
        f"linked = {LINKED!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in linked))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_a_module_that_makes_a_logger_uses_it() -> None:
    made = re.compile(r"^logger = logging\.getLogger\(__name__\)$", re.M)
    unused = []
    for path in _sources():
        text = path.read_text()
        if made.search(text) and len(re.findall(r"\blogger\b", text)) < 2:
            unused.append(str(path.relative_to(ROOT)))
    assert unused == [], f"unused loggers: {unused}"
