"""The netsim benchmark's own processes: a UDP echo, an echo probe and a load
generator, each independent of the relay under test.

The probe stamps each request with CLOCK_REALTIME just before ``sendto`` and
takes the reply's arrival from the kernel (``SO_TIMESTAMPNS``, also
CLOCK_REALTIME), so the RTT it reports does not include the probe's own
scheduling: only the path (and the echo, and the relay when there is one).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import select
import socket
import struct
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from cloudarcade.netsim import rxstamp

_CTX = mp.get_context("spawn")


def child(target: Any, *args: Any) -> tuple[Any, Connection]:
    """A child process running ``target(conn, *args)``; returns (process, our conn)."""
    ours, theirs = _CTX.Pipe()
    proc = _CTX.Process(target=target, args=(theirs, *args), daemon=True)
    proc.start()
    return proc, ours

Address = tuple[str, int]
#: seq, send time (CLOCK_REALTIME, ns)
PROBE = struct.Struct("!Iq")
#: seq, send time (perf_counter, s): the load generator's packets
HEADER = struct.Struct("!Id")


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, opt, 1 << 22)
    sock.bind(("127.0.0.1", 0))
    return sock


def _realtime(on: bool) -> None:
    """SCHED_FIFO for this process when asked (needs CAP_SYS_NICE)."""
    if on:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except OSError as exc:
            print(f"netsim bench: no real-time priority ({exc})", file=sys.stderr)


def echo_main(conn: Connection, realtime: bool = False) -> None:
    """Child process: send every datagram back to its source, until killed."""
    _realtime(realtime)
    sock = _socket()
    conn.send(sock.getsockname())
    while True:
        data, addr = sock.recvfrom(65535)
        sock.sendto(data, addr)


def _probe_run(sock: socket.socket, target: Address, rate: float, count: int,
               size: int) -> np.ndarray:
    """RTTs (s) of ``count`` requests at ``rate``/s to ``target``; NaN where lost."""
    rtts = np.full(count, np.nan)
    pad = b"\0" * (size - PROBE.size)
    start = time.monotonic() + 0.01
    sent = received = 0
    deadline = None
    while received < count:
        now = time.monotonic()
        if sent < count and now >= start + sent / rate:
            sock.sendto(PROBE.pack(sent, time.clock_gettime_ns(time.CLOCK_REALTIME)) + pad, target)
            sent += 1
            if sent == count:
                deadline = time.monotonic() + 1.0  # then wait at most 1 s for the rest
            continue
        if deadline is not None and now > deadline:
            break
        wait = (start + sent / rate - now) if sent < count else 0.05
        if not select.select([sock], [], [], max(wait, 0.0))[0]:
            continue
        while True:
            try:
                data, _, kernel_ns, _ = rxstamp.receive(sock)
            except BlockingIOError:
                break
            seq, sent_ns = PROBE.unpack_from(data)
            if kernel_ns is not None and 0 <= seq < count and np.isnan(rtts[seq]):
                rtts[seq] = (kernel_ns - sent_ns) / 1e9
                received += 1
    return rtts


def probe_main(conn: Connection, realtime: bool = False) -> None:
    """Child process: for each (target, rate, count, size) it gets, send back the RTTs."""
    _realtime(realtime)
    sock = _socket()
    sock.setblocking(False)
    rxstamp.enable(sock)
    conn.send(sock.getsockname())
    while (job := conn.recv()) is not None:
        target, rate, count, size = job
        conn.send(_probe_run(sock, tuple(target), rate, count, size))


def generator_main(conn: Connection, rate: float, duration: float, size: int,
                   frame_fps: float) -> None:
    """Child process: sink + paced sender; sends back one-way delays (s) via ``conn``.

    The sender sends a burst each tick (1 ms, or one frame at ``frame_fps``),
    so the relay sees the bursty arrivals a real sender produces.
    """
    sink = _socket()
    sink.settimeout(0.5)
    conn.send(sink.getsockname())
    relay_addr = conn.recv()
    delays: list[float] = []
    received = 0

    def drain() -> None:
        nonlocal received
        while True:
            try:
                data = sink.recv(65535)
            except OSError:  # the timeout too: the sender is done
                return
            now = time.perf_counter()
            received += len(data)
            delays.append(now - HEADER.unpack_from(data)[1])

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out = _socket()
    tick = 1.0 / frame_fps if frame_fps else 0.001
    per_tick = rate * tick
    start = time.perf_counter()
    sent = seq = 0
    pad = b"\0" * (size - HEADER.size)
    for k in range(int(duration / tick)):
        pause = start + k * tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        due = int((k + 1) * per_tick) - sent
        for _ in range(due):
            out.sendto(HEADER.pack(seq, time.perf_counter()) + pad, relay_addr)
            seq += 1
        sent += due
    reader.join()
    conn.send((seq, np.array(delays), received))
