"""Kernel receive timestamps: which clock they are on, and the conversion."""

from __future__ import annotations

import socket
import time

from cloudarcade.netsim import rxstamp


def test_kernel_stamps_are_realtime_and_convert_to_the_relay_clock() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        rxstamp.enable(rx)
        clocks = rxstamp.ClockMap()
        stamps = []
        for _ in range(20):
            before_rt = time.clock_gettime_ns(time.CLOCK_REALTIME)
            before_mono = rxstamp.clock()
            tx.sendto(b"x", rx.getsockname())
            data, _, kernel_ns, _ = rxstamp.receive(rx)
            after_rt = time.clock_gettime_ns(time.CLOCK_REALTIME)
            after_mono = rxstamp.clock()
            assert data == b"x" and kernel_ns is not None
            stamps.append((before_rt, kernel_ns, after_rt, before_mono, after_mono))
    finally:
        rx.close()
        tx.close()
    for before_rt, kernel_ns, after_rt, before_mono, after_mono in stamps:
        # On CLOCK_REALTIME: between the realtime reads around send and receive
        # (CLOCK_MONOTONIC counts from boot and is decades away from these).
        assert before_rt <= kernel_ns <= after_rt
        # Converted, it lies between the monotonic reads (the offset is
        # measured to within a few microseconds).
        mono = clocks.to_monotonic(kernel_ns)
        assert before_mono - 50e-6 <= mono <= after_mono + 50e-6


def test_a_socket_without_stamps_says_so() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        tx.sendto(b"y", rx.getsockname())
        data, _, stamp, dropped = rxstamp.receive(rx)
        assert (data, stamp, dropped) == (b"y", None, None)
    finally:
        rx.close()
        tx.close()


def test_the_kernel_counts_what_a_full_socket_dropped() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a few datagrams
        rx.bind(("127.0.0.1", 0))
        rxstamp.enable(rx)
        for _ in range(200):
            tx.sendto(b"z" * 1000, rx.getsockname())
        rx.setblocking(False)
        kept = []
        while True:
            try:
                kept.append(rxstamp.receive(rx))
            except BlockingIOError:
                break
        # The count comes with the datagrams queued after the drops.
        tx.sendto(b"after", rx.getsockname())
        rx.setblocking(True)
        data, _, _, dropped = rxstamp.receive(rx)
    finally:
        rx.close()
        tx.close()
    assert 0 < len(kept) < 200 and data == b"after"
    assert dropped == 200 - len(kept)
