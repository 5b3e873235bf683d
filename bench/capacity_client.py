"""One headless client of a capacity ramp, in a process of its own.

    python -m cloudarcade.bench.capacity_client --url URL --game pong \
        --resolution 640x360 --fps 30 --warmup 2 --duration 10

It speaks JSON lines on stdout so that the ramp can start every session's
measurement together: ``{"event": "ready"}`` once frames flow, then it waits
for a line on stdin (``go``), warms up, says ``{"event": "measuring"}``,
plays (scripted key presses) for ``--duration`` seconds and ends with
``{"event": "result", ...}``: frames decoded in the window, delivered fps and
frame latency (server render end → client decode, one clock) percentiles.
A failure ends with ``{"event": "error", "error": ...}`` and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cloudarcade import runtime
from cloudarcade.client.headless import ClientError, ClientOptions, HeadlessClient
from cloudarcade.client.results import ClientSummary

# Seconds a client may take to connect, busy retries included (a whole step
# connects at once).
CONNECT_TIMEOUT = 45.0


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def _stdin_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def connect(options: ClientOptions) -> tuple[HeadlessClient, int]:
    """A connected client, and how many times the server said it was busy first.

    The server admits only a few sessions that are still connecting (503,
    "server busy ... retry"); when a whole step starts at once, the others try
    again after a jittered second, until ``options.connect_timeout``. Any
    other refusal (a full server, say) is final.
    """
    rng = random.Random(options.input_seed)
    deadline = time.monotonic() + options.connect_timeout
    busy = 0
    while True:
        client = HeadlessClient(options)
        try:
            await client.connect()
            return client, busy
        except ClientError as exc:
            await client.close()
            if "(503): server busy" not in str(exc) or time.monotonic() > deadline:
                raise
        busy += 1
        await asyncio.sleep(0.5 + rng.random())


async def measure_session(
    options: ClientOptions, *, warmup: float, duration: float,
    go: Callable[[], Awaitable[Any]], on_event: Callable[..., None],
) -> dict[str, Any]:
    """Connect, wait for ``go``, warm up, measure ``duration`` s; the window's figures.

    ``on_event(name, **fields)`` is told "ready" and "measuring" (the ramp's
    barrier); the same function runs in a local process or a Ray task.
    """
    client, busy = await connect(options)
    try:
        await client.wait_for_frames(1, options.connect_timeout)
        on_event("ready")
        await go()
        await client.run_inputs(warmup)  # settle after the others connected; not measured
        client.summary = ClientSummary()
        started, cpu = time.monotonic(), time.process_time()
        on_event("measuring")
        await client.run_inputs(duration)
        window, cpu = time.monotonic() - started, time.process_time() - cpu
        summary = client.summary.to_dict()
    finally:
        await client.close()
    client.finish()
    return {
        "session": client.session_id,
        "frames": summary["frames_decoded"],
        "window_s": round(window, 3),
        "cpu_s": round(cpu, 3),  # this client's process (or Ray worker) in the window
        "busy_retries": busy,
        # Frames delivered per second of the window (a stall counts against it).
        "fps": round(summary["frames_decoded"] / window, 2) if window > 0 else 0.0,
        "frame_latency_ms": summary["frame_latency_ms"],
    }


async def _main(args: argparse.Namespace) -> int:
    options = ClientOptions(url=args.url, game=args.game, resolution=args.resolution,
                            fps=args.fps, codec=args.codec, bitrate=args.bitrate,
                            input_interval=args.input_interval, input_seed=args.seed,
                            connect_timeout=CONNECT_TIMEOUT)
    try:
        result = await measure_session(options, warmup=args.warmup, duration=args.duration,
                                       go=_stdin_line, on_event=say)
    except (ClientError, OSError) as exc:
        say("error", error=f"{type(exc).__name__}: {exc}")
        return 1
    say("result", **result)
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudarcade.bench.capacity_client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--game", default="pong")
    parser.add_argument("--resolution", default="640x360")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--codec", default="h264")
    parser.add_argument("--bitrate", default="2M")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--input-interval", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        return runtime.run(_main(args))
    except asyncio.CancelledError:
        return 130


if __name__ == "__main__":
    sys.exit(cli())
