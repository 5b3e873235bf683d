"""A short real benchmark run: server subprocess, relay, client, every output file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudarcade import cli
from cloudarcade.bench.compare import FASTER, NO_CHANGE, SLOWER, compare
from cloudarcade.bench.jsonl import read_frames, read_probes
from cloudarcade.bench.runner import run_bench
from cloudarcade.bench.scenario import BenchConfig, Cell
from cloudarcade.bench.summary import read_summary
from cloudarcade.stages import STAGES, TIMESTAMPS, stage_durations

pytestmark = pytest.mark.slow


async def test_short_run_writes_every_output_consistently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    config = BenchConfig(
        out=out, profiles=["ideal", "wired"], cells=[Cell("h264", 640, 360, 30, 1_000_000)],
        stacks=["tuned", "stock"], probes=12, probe_interval=0.12, warmup=0.5,
        sample_every=15,
    )
    summaries = await run_bench(config)
    printed = capsys.readouterr().err  # the bench's console is stderr
    # After the table: each summary's slowest probe and the stages that made it slow.
    assert "slowest probes (more: python -m cloudarcade.bench.tails" in printed, printed
    for line in ("ideal headless tuned: ", "wired headless stock: "):
        assert line in printed, printed
    for name in ("probes.jsonl", "frames.jsonl", "summary.json", "metadata.json",
                 "report.html", "ecdf.png", "stages.png", "timeseries.png"):
        assert (out / name).is_file(), name
    for name in ("probes.jsonl", "frames.jsonl", "summary.json"):
        assert (out / "stock" / name).is_file(), name

    probes, skipped = read_probes(out / "probes.jsonl")
    assert skipped == 0
    assert len(probes) == 2 * 12  # every probe recorded, hit or miss
    assert {p.profile for p in probes} == {"ideal", "wired"}
    tuned = read_summary(out / "summary.json")
    assert [s.profile for s in tuned] == ["ideal", "wired"]
    for s in tuned:
        mine = [p for p in probes if p.profile == s.profile]
        assert s.latency.count == len(mine)
        assert s.latency.misses == sum(p.missed for p in mine)
        assert s.latency.misses < len(mine)  # it streams (how well: the bench's figure)
        # The median in the summary is the median of the records.
        delays = sorted(p.input_to_photon for p in mine if p.input_to_photon is not None)
        assert s.latency.p50.value is not None
        assert min(delays) <= s.latency.p50.value <= max(delays)
        # Stage breakdown present and per-probe stages sum to the end-to-end delay.
        assert {"encode", "decode", "downlink"} <= set(s.stage_medians)
        # The slowest probes, slowest first, are this profile's own.
        slowest = [p for p in mine if not p.missed]
        slowest.sort(key=lambda p: -(p.input_to_photon or 0.0))
        assert [row["probe"] for row in s.slowest] == [p.probe for p in slowest[:5]]
    # Every hit carries every stamp of the path; its stages add up to its
    # end-to-end delay with nothing unaccounted, and the stages timed inside
    # one process are in path order. (The two that cross processes, uplink and
    # downlink, may not be: last_packet_sent is stamped after the send returns,
    # and on a loaded machine the client can complete the frame before that.)
    hits = [p for p in probes if not p.missed]
    assert hits
    for hit in hits:
        assert hit.input_to_photon is not None
        assert set(TIMESTAMPS) <= set(hit.timestamps), set(TIMESTAMPS) - set(hit.timestamps)
        assert hit.timestamps["photon"] - hit.timestamps["input_sent"] == pytest.approx(
            hit.input_to_photon)
        stages = stage_durations(hit.timestamps)
        unaccounted = stages.pop("unaccounted")
        assert set(stages) == {name for name, _, _ in STAGES}
        assert min(v for k, v in stages.items() if k not in ("uplink", "downlink")) >= 0, stages
        assert sum(stages.values()) == pytest.approx(hit.input_to_photon, abs=1e-6)
        assert unaccounted == pytest.approx(0.0, abs=1e-6)
    # wired adds 27 ms each way: its median is above ideal's by at least one
    # way's worth (54 ms is expected; the bench reports the figure).
    ideal, wired = (s.latency.p50.value for s in tuned)
    assert ideal is not None and wired is not None and wired - ideal > 0.027

    frames, _ = read_frames(out / "frames.jsonl")
    decoded = [f for f in frames if f.decoded]
    assert len(decoded) > 20
    assert any(f.psnr is not None for f in frames), "sampled frames carry PSNR"
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["seed"] == 1 and metadata["versions"]["aiortc"]
    assert metadata["finished"] is not None and metadata["interrupted"] is False
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "wired" in html
    assert set(summaries) == {"tuned", "stock"}

    # `bench compare` of a run with itself: nothing changed, for each profile.
    capsys.readouterr()
    assert cli.main(["bench", "compare", str(out), str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("no significant change") == 2, printed
    # ... and of two different runs, ours against stock aiortc: one row per
    # profile, each with both runs' medians and a verdict.
    stock = read_summary(out / "stock" / "summary.json")
    assert cli.main(["bench", "compare", str(out), str(out / "stock")]) == 0
    printed = capsys.readouterr().out
    assert "ideal" in printed and "wired" in printed, printed
    changes = compare(out, out / "stock", n_resamples=200)
    assert [c.profile for c in changes] == ["ideal", "wired"]
    for change, mine, theirs in zip(changes, tuned, stock, strict=True):
        assert change.verdict in (FASTER, SLOWER, NO_CHANGE)
        assert (change.count_a, change.count_b) == (mine.latency.count, theirs.latency.count)
        for got, want in zip(change.percentiles["p50"],
                             (mine.latency.p50.value, theirs.latency.p50.value), strict=True):
            assert got == (None if want is None else pytest.approx(want)), (got, want)
    # and a clear error for a directory that is not a run
    assert cli.main(["bench", "compare", str(out), str(tmp_path / "nope")]) == 2


def test_interrupted_run_leaves_valid_partial_results(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudarcade.cli", "bench", "--profiles", "ideal,wired",
         "--stack", "tuned", "--resolution", "640x360", "--fps", "30", "--bitrate", "1M",
         "--probes", "200", "--probe-interval", "0.05", "--warmup", "0.3", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        # Wait until some probes are on disk, then interrupt as a user would.
        while time.monotonic() < deadline:
            path = out / "probes.jsonl"
            if path.exists() and path.read_text().count("\n") >= 20:
                break
            time.sleep(0.2)  # polling the file: the condition above is the wait
        else:
            pytest.fail("no probes written within 60 s")
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output.decode(errors="replace")[-2000:]
    probes, skipped = read_probes(out / "probes.jsonl")
    assert len(probes) >= 20 and skipped <= 1
    assert (out / "summary.json").is_file()
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["interrupted"] is True
    # The report is written from what was measured before Ctrl-C.
    html = (out / "report.html").read_text()
    assert "ideal" in html and "data:image/png;base64," in html
    # The server subprocess was stopped with the bench.
    assert not _server_processes(out)


def _server_processes(out: Path) -> list[str]:
    try:
        listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [line for line in listing.splitlines()
            if "cloudarcade.cli serve" in line and str(out) in line]

