"""Mutation check: break one thing the README promises, and the tests must notice.

Each mutation replaces one exact piece of source with a broken version, in a
fresh copy of the working tree under a temporary directory (never in the tree
itself), and runs the tests that guard it there. A mutation is CAUGHT when
those tests fail, MISSED when they pass. A mutation whose source text is no
longer in the file is STALE: the code moved, and this script must follow it.

First the same tests run on an unmutated copy: they must pass there, or a
"caught" would mean nothing.

    python tools/mutation.py            # every mutation (make mutation)
    python tools/mutation.py --list
    python tools/mutation.py netsim-delay marker-flip

Exit status: 0 when every mutation is caught, 1 when one is missed or stale,
2 when the unmutated tests fail.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    path: str  # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments: files, node ids, -k expressions


MUTATIONS = (
    Mutation(
        name="marker-flip",
        what="the probe's marker no longer flips on a press",
        path="server/games/probe.py",
        old="            self.white = not self.white\n",
        new="            pass  # mutation: the marker never flips\n",
        tests=("tests/test_games.py", "tests/test_stream_e2e.py::"
               "test_stream_frames_inputs_and_clean_close"),
    ),
    Mutation(
        name="netsim-delay",
        what="the netsim delay stage sends every packet on at once",
        path="netsim/delay.py",
        old="        departure = now + self._draw()\n",
        new="        departure = now + 0.0 * self._draw()  # mutation: no delay\n",
        tests=("tests/test_netsim_delay.py", "tests/test_netsim_relay.py"),
    ),
    Mutation(
        name="spectator-isolation",
        what="a spectator's inputs reach the game as player 0's",
        path="server/viewer.py",
        old="        elif self.player is not None:\n"
            "            verdict = self._dedupe.accept(message)\n"
            "            if verdict is protocol.Verdict.APPLY:\n"
            "                self.session.input_received(message, self.player, received)\n",
        new="        else:  # mutation: spectators play too\n"
            "            verdict = self._dedupe.accept(message)\n"
            "            if verdict is protocol.Verdict.APPLY:\n"
            "                self.session.input_received(message, self.player or 0, received)\n",
        tests=("tests/test_spectator_isolation.py",),
    ),
    Mutation(
        name="codec-validation",
        what="session options accept any codec name",
        path="server/options.py",
        old="    if not isinstance(value, str) or value not in CODECS:\n",
        new="    if not isinstance(value, str):  # mutation: any codec name passes\n",
        tests=("tests/test_cli.py", "tests/test_robust_offer.py", "tests/test_encoder.py"),
    ),
)


def tree_files() -> list[str]:
    """Tracked and new (not ignored) files of the working tree, as they are now."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout
    return sorted({name for name in listing.decode().split("\0") if name})


def copy_tree(files: list[str], into: Path) -> None:
    for name in files:
        source, target = ROOT / name, into / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet in the index
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


def run_tests(tree: Path, tests: tuple[str, ...], log: Path) -> int:
    """pytest on ``tests`` with ``tree``'s code (not the installed tree's); its exit code."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    check = subprocess.run(
        [sys.executable, "-c", "import cloudarcade; print(cloudarcade.__file__)"],
        cwd=tree, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    if not Path(check).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"mutation: the copy's code is not what runs ({check}); "
                         f"expected a path under {tree}")
    with log.open("w") as out:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, check=False,
        ).returncode


def apply(mutation: Mutation, tree: Path) -> bool:
    """Write the mutation into the copy; False when its source text is not there."""
    path = tree / mutation.path
    text = path.read_text()
    if text.count(mutation.old) != 1:
        return False
    path.write_text(text.replace(mutation.old, mutation.new))
    return True


def summary_line(log: Path) -> str:
    """pytest's last line, and the first test that failed."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    failed = next((line.split(" - ")[0] for line in lines if line.startswith("FAILED ")), None)
    last = lines[-1] if lines else "(no output)"
    return f"{last}; {failed}" if failed else last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--keep", action="store_true", help="keep the copies and logs")
    args = parser.parse_args(argv)
    known = {m.name: m for m in MUTATIONS}
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:20} {m.path:24} {m.what}")
        return 0
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown mutation {', '.join(unknown)}; known: {', '.join(known)}")
    chosen = [known[n] for n in args.names] if args.names else list(MUTATIONS)

    files = tree_files()
    work = Path(tempfile.mkdtemp(prefix="cloudarcade-mutation-"))
    try:
        baseline_tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        baseline = work / "baseline"
        copy_tree(files, baseline)
        started = time.monotonic()
        code = run_tests(baseline, baseline_tests, work / "baseline.log")
        print(f"baseline (no mutation): {'passed' if code == 0 else 'FAILED'} in "
              f"{time.monotonic() - started:.0f} s: {summary_line(work / 'baseline.log')}",
              flush=True)
        if code != 0:
            print((work / "baseline.log").read_text(errors="replace")[-3000:])
            return 2
        results = []
        for m in chosen:
            tree = work / m.name
            copy_tree(files, tree)
            started = time.monotonic()
            if not apply(m, tree):
                verdict, detail = "STALE", f"{m.path} no longer holds the text this mutation edits"
            else:
                log = work / f"{m.name}.log"
                code = run_tests(tree, m.tests, log)
                verdict = "CAUGHT" if code == 1 else "MISSED" if code == 0 else f"ERROR ({code})"
                detail = summary_line(log)
            took = time.monotonic() - started
            results.append(verdict)
            print(f"{m.name:20} {verdict:8} {took:4.0f} s  {m.what}\n{'':20} {detail}", flush=True)
        caught = results.count("CAUGHT")
        print(f"{caught} of {len(results)} mutations caught")
        if args.keep:
            print(f"copies and logs kept in {work}")
        return 0 if caught == len(results) else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
