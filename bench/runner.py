"""Runs a benchmark: server subprocess, netsim relay (in the server), bench clients.

For each client kind (bench/clients.py: headless, chromium), stack (tuned, then
the stock-aiortc baseline), cell and profile it connects a client, warms up,
sends probes open-loop (jittered against the game tick), and writes one
``ProbeRecord`` per probe and one ``FrameRecord`` per frame to JSONL as it goes.
The summary, table and report are computed from those records at the end, or
from what there is when the run is interrupted. Stock results go to
``OUT/stock/`` and another client's to ``OUT/CLIENT/`` (its stock to
``OUT/CLIENT/stock/``), so that each directory holds one client and stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cloudarcade.bench.analysis import psnr, ssim, summarize_all
from cloudarcade.bench.clients import HEADLESS, ClientKind, create_client_kind
from cloudarcade.bench.jsonl import FRAMES_FILE, PROBES_FILE, JsonlWriter
from cloudarcade.bench.link_origin import relay_origin
from cloudarcade.bench.linkstats import link_extras
from cloudarcade.bench.metadata import write_metadata
from cloudarcade.bench.records import DROP_ENCODE_SKIP, FrameRecord, ProbeRecord
from cloudarcade.bench.report import RunResults, write_run_report
from cloudarcade.bench.scenario import NO_RELAY, BenchConfig, Cell, split_variant
from cloudarcade.bench.server_process import ServerProcess
from cloudarcade.bench.summary import SUMMARY_FILE, ProfileSummary, write_summary
from cloudarcade.bench.table import render_table
from cloudarcade.bench.tails import SlowProbe
from cloudarcade.bench.unit import RecordSink, Unit, plan_units
from cloudarcade.client.headless import ClientOptions
from cloudarcade.client.results import FrameResult, ProbeResult
from cloudarcade.client.schedule import InputSchedule, run_schedule
from cloudarcade.stages import TIMESTAMPS

STOCK_DIR = "stock"
_KNOWN = frozenset(TIMESTAMPS)


def stack_dir(
    out: Path, stack: str, client: str = HEADLESS, primary: str = "tuned"
) -> Path:
    """Where a (client, stack variant)'s results go: the primary variant in the client's
    directory (``out`` for headless), stock in ``stock/`` under it, other congestion
    controllers in ``cc-NAME/`` under it."""
    base = out if client == HEADLESS else out / client
    if stack == "stock":
        return base / STOCK_DIR
    if stack == primary:
        return base
    return base / f"cc-{split_variant(stack)[1]}"


def run_key(client: str, stack: str) -> str:
    """The key of a (client, stack) in a run's results: ``tuned``, ``stock``,
    ``chromium/tuned``, ``chromium/stock``, ..."""
    return stack if client == HEADLESS else f"{client}/{stack}"


@dataclass
class StackResults:
    """The records of one stack, kept for the summary at the end."""

    directory: Path
    probes: list[ProbeRecord] = field(default_factory=list)
    frames: list[FrameRecord] = field(default_factory=list)
    extras: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    probe_writer: JsonlWriter | None = None
    frame_writer: JsonlWriter | None = None

    def open(self) -> None:
        """Create the directory and the JSONL writers (once)."""
        if self.probe_writer is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.probe_writer = JsonlWriter(self.directory / PROBES_FILE)
        self.frame_writer = JsonlWriter(self.directory / FRAMES_FILE)

    def add_probe(self, record: ProbeRecord) -> None:
        self.probes.append(record)
        assert self.probe_writer is not None
        self.probe_writer.write(record)

    def add_frame(self, record: FrameRecord) -> None:
        self.frames.append(record)
        assert self.frame_writer is not None
        self.frame_writer.write(record)

    def close(self) -> None:
        for writer in (self.probe_writer, self.frame_writer):
            if writer is not None:
                writer.close()

    def summarize(self, seed: int) -> RunResults:
        """Write ``summary.json``; the records and summaries, for the report."""
        summaries = summarize_all(self.probes, self.frames, self.extras, seed=seed)
        write_summary(self.directory / SUMMARY_FILE, summaries, seed=seed)
        return RunResults(self.directory, self.probes, self.frames, summaries)


def _bitrate(start: tuple[float, int] | None, end: tuple[float, int] | None) -> float | None:
    """Bits/s between two sender-report readings of RTP payload bytes."""
    if start is None or end is None or end[0] <= start[0]:
        return None
    return (end[1] - start[1]) * 8 / (end[0] - start[0])


def _stamps(stamps: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in stamps.items() if k in _KNOWN}


class Measurement:
    """One (stack, cell, profile): a client session and its probes."""

    def __init__(
        self,
        config: BenchConfig,
        url: str,
        stack: str,
        cell: Cell,
        profile: str,
        results: RecordSink,
        advance: Callable[[], None],
        kind: ClientKind | None = None,
    ) -> None:
        self.config = config
        self.url = url
        self.stack = stack
        self.cell = cell
        self.profile = profile
        self.results = results
        self._advance = advance
        self._recording = False
        self._probe_index: dict[int, int] = {}
        self._frame_ids: set[int] = set()
        self._sampled: list[FrameResult] = []
        self._presses: list[asyncio.Future[None]] = []
        self.kind = kind or create_client_kind(HEADLESS)
        self.stack_name = split_variant(stack)[0]
        self.cc = config.cc_of(stack)
        self.client = self.kind.create(
            ClientOptions(
                url=url, game=config.game, resolution=cell.resolution, fps=cell.fps,
                codec=cell.codec, bitrate=cell.bitrate, stack=self.stack_name, cc=self.cc,
                ladder=config.ladder, fec=config.fec, seed=config.seed,
                profile=None if profile == NO_RELAY else profile,
                sample_every=config.sample_every,
            ),
            on_frame=self._on_frame,
            on_probe=self._on_probe,
        )

    async def run(self) -> None:
        config, client = self.config, self.client
        try:
            # The relay's trace starts with its first packet: about now, and exactly
            # what the relay says where it has a trace (see link_origin).
            link_origin = time.monotonic()
            await client.connect()
            await client.wait_for_frames(1, timeout=15)
            if self.profile != NO_RELAY:
                link_origin = await relay_origin(self.url, client.session_id) or link_origin
            # Warm-up: rate control, jitter estimates and caches settle; not measured.
            await asyncio.sleep(config.warmup)
            self._recording = True
            rtp_start = await client.rtp_bytes_sent()
            schedule = InputSchedule(config.probe_interval, seed=config.seed,
                                     start=time.monotonic(), count=config.probes)
            await run_schedule(schedule, self._probe)
            await asyncio.gather(*self._presses)
            # Open loop: the last probe gets its full timeout, then anything
            # still pending is a miss.
            await asyncio.sleep(config.probe_timeout)
            self._recording = False
            loss = await client.packet_loss()
            rtp_end = await client.rtp_bytes_sent()
        finally:
            await client.close()
            client.finish()
        self._undecoded_frames()
        self._quality()
        self.results.extras[(self.profile, self.cell.name)] = {
            "stack": self.stack, "packet_loss": loss, "resolution": self.cell.resolution,
            "fps": self.cell.fps, "codec": self.cell.codec, "bitrate": self.cell.bitrate,
            "session": client.session_id,
            "rtp_bitrate_bps": _bitrate(rtp_start, rtp_end),
            "client": self.kind.name, **client.extras(),
            "cc": self.cc, "link_origin": link_origin,
            **link_extras(config, self.profile),
        }

    def _probe(self) -> None:
        # A browser's press is a round trip to the page: it runs beside the schedule.
        self._presses.append(asyncio.ensure_future(self._press(len(self._presses))))

    async def _press(self, index: int) -> None:
        seq = await self.client.probe("Space")
        self._probe_index[seq] = index
        self._advance()

    def _on_probe(self, probe: ProbeResult) -> None:
        index = self._probe_index.get(probe.seq)
        if index is None:
            return  # a key press of the warm-up (none are sent) or a stray
        delay = probe.input_to_photon
        missed = delay is None or delay > self.config.probe_timeout
        stamps = {"input_sent": probe.input_sent}
        if probe.frame is not None and not missed:
            stamps.update(_stamps(probe.frame.stamps()))
        self.results.add_probe(ProbeRecord(
            profile=self.profile, cell=self.cell.name, probe=index, input_seq=probe.seq,
            timestamps=stamps, input_to_photon=None if missed else delay, missed=missed,
            frame_id=None if missed or probe.frame is None else probe.frame.frame_id,
        ))

    def _on_frame(self, result: FrameResult) -> None:
        if not self._recording:
            return
        self._frame_ids.add(result.frame_id)
        if result.luma is not None:
            self._sampled.append(result)  # written once its quality is known
            return
        self.results.add_frame(self._frame_record(result))

    def _frame_record(self, result: FrameResult) -> FrameRecord:
        server = result.server
        return FrameRecord(
            profile=self.profile, cell=self.cell.name, frame_id=result.frame_id,
            input_seq=result.input_seq, timestamps=_stamps(result.stamps()),
            size_bytes=server.size_bytes if server else 0,
            keyframe=server.keyframe if server else False,
            cc_target=server.cc_target if server else None,
            cc_queueing=server.cc_queueing if server else None,
            rung=(f"{server.width}x{server.height}@{server.fps}"
                  if server and server.width and server.height and server.fps else None),
        )

    def _undecoded_frames(self) -> None:
        """Frames sent but never decoded, and ids never sent (skipped before sending)."""
        if not self._frame_ids:
            return
        low, high = min(self._frame_ids), max(self._frame_ids)
        sent_not_decoded = {r.frame_id: r for r in self.client.undecoded_records()
                            if low <= r.frame_id <= high}
        for frame_id in range(low, high + 1):
            if frame_id in self._frame_ids:
                continue
            record = sent_not_decoded.get(frame_id)
            self.results.add_frame(FrameRecord(
                profile=self.profile, cell=self.cell.name, frame_id=frame_id,
                input_seq=record.input_seq if record else None,
                timestamps=_stamps(record.stamps()) if record else {},
                size_bytes=record.size_bytes if record else 0,
                decoded=False,
                drop_phase=self.client.unseen_phase if record else DROP_ENCODE_SKIP,
            ))

    def _quality(self) -> None:
        """PSNR/SSIM of sampled decoded frames against the server's source luma."""
        directory = self.config.out / "samples" / f"session-{self.client.session_id}"
        for result in self._sampled:
            record = self._frame_record(result)
            source = directory / f"frame-{result.frame_id}.npy"
            if source.exists() and result.luma is not None:
                reference = np.load(source)
                if reference.shape == result.luma.shape:
                    record.psnr = psnr(reference, result.luma)
                    record.ssim = ssim(reference, result.luma)
            self.results.add_frame(record)
        shutil.rmtree(directory, ignore_errors=True)


def server_args(config: BenchConfig, extra: list[str] | None = None) -> list[str]:
    """The ``cloudarcade serve`` arguments of a run; luma samples go under ``config.out``."""
    args = ["--sample-dir", str(config.out / "samples"),
            "--sample-every", str(config.sample_every), *(extra or [])]
    if config.extra_profiles is not None:
        args += ["--profiles", str(config.extra_profiles)]
    if config.metrics_port is not None:
        args += ["--metrics", f"127.0.0.1:{config.metrics_port}"]
    return args


async def measure_unit(
    config: BenchConfig,
    unit: Unit,
    url: str,
    sink: RecordSink,
    advance: Callable[[], None],
    kind: ClientKind | None = None,
) -> None:
    """Measure one unit against the server at ``url``; its records go to ``sink``.

    The one way a unit is run, locally (:func:`run_bench`, which starts each
    client kind once and passes it) and on a cluster node
    (:mod:`cloudarcade.bench.node`, where ``kind`` is None: it is started here).
    """
    own = kind is None
    kind = kind or create_client_kind(unit.client)
    if own:
        await kind.start()
    try:
        await Measurement(config, url, unit.stack, unit.cell, unit.profile, sink, advance,
                          kind).run()
    finally:
        if own:
            await kind.stop()


async def run_bench(
    config: BenchConfig,
    *,
    console: Console | None = None,
    extra_server_args: list[str] | None = None,
) -> dict[str, RunResults]:
    """Run every unit and write all outputs; returns each (client, stack)'s results
    by :func:`run_key`."""
    console = console or Console(stderr=True)
    config.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    write_metadata(config, started=started, finished=None)
    server = ServerProcess(args=server_args(config, extra_server_args),
                           log_path=config.out / "server.log")
    results = stack_results(config)
    kinds: dict[str, ClientKind] = {}
    interrupted = False
    try:
        url = await server.start()
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=False,
        ) as progress:
            for unit in plan_units(config):
                if unit.client not in kinds:  # a browser starts once per run
                    kinds[unit.client] = create_client_kind(unit.client)
                    await kinds[unit.client].start()
                sink = results[run_key(unit.client, unit.stack)]
                sink.open()
                label = f"{unit.profile:<13} {unit.cell.name} {unit.stack} ({unit.client})"
                task = progress.add_task(label, total=config.probes)
                await measure_unit(
                    config, unit, url, sink,
                    lambda task=task: progress.advance(task),  # type: ignore[misc]
                    kinds[unit.client],
                )
    except asyncio.CancelledError:
        interrupted = True
        console.print("[yellow]interrupted: writing what was measured[/]")
    finally:
        for kind in kinds.values():
            with contextlib.suppress(asyncio.CancelledError):
                await kind.stop()
        for each in results.values():
            each.close()
        with contextlib.suppress(asyncio.CancelledError):
            await server.stop()
        shutil.rmtree(config.out / "samples", ignore_errors=True)
    runs = finish_run(config, results, console, started=started, interrupted=interrupted)
    if interrupted:
        raise asyncio.CancelledError
    return runs


def stack_results(config: BenchConfig) -> dict[str, StackResults]:
    """One (not yet opened) :class:`StackResults` per client and stack, by :func:`run_key`."""
    primary = config.primary_variant
    return {
        run_key(client, stack): StackResults(stack_dir(config.out, stack, client, primary))
        for client in config.clients for stack in config.stacks
    }


def finish_run(
    config: BenchConfig,
    results: dict[str, StackResults],
    console: Console,
    *,
    started: float,
    interrupted: bool,
    extra_metadata: dict[str, Any] | None = None,
) -> dict[str, RunResults]:
    """Summaries, metadata, the table and the report of a run whose writers are closed."""
    runs = {key: r.summarize(config.seed) for key, r in results.items() if r.probes}
    write_metadata(config, started=started, finished=time.time(), interrupted=interrupted,
                   extra=extra_metadata)
    everything = [s for run in runs.values() for s in run.summaries]
    if everything:
        console.print(render_table(everything))
        # The report draws on the records held here; only the metadata is read back.
        console.print(f"report: {write_run_report(config.out, runs)}")
        _print_slowest(everything, config.out, console)
    return runs


def _print_slowest(summaries: list[ProfileSummary], out: Path, console: Console) -> None:
    """Each summary's slowest probe and what made it slow, one line each."""
    lines = []
    for s in summaries:
        if s.slowest:
            slow = SlowProbe.from_dict(s.slowest[0])
            at = "" if slow.at_s is None else f" at {slow.at_s:.2f} s"
            lines.append(f"  {s.profile} {s.client} {s.stack}: {slow.input_to_photon_ms:.1f} ms"
                         f"{at}: {slow.describe()}")
    if lines:
        console.print(f"slowest probes (more: python -m cloudarcade.bench.tails {out}):",
                      markup=False, soft_wrap=True)
        for line in lines:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
