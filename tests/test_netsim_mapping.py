"""The relay's NAT table (sans-I/O, fake clock) and its control-line codec."""

from __future__ import annotations

import pytest

from cloudarcade.netsim import control, get_profile
from cloudarcade.netsim.mapping import REFUSED_FULL, REFUSED_SOURCE, Mappings

A, B, C = ("127.0.0.1", 1001), ("127.0.0.1", 1002), ("127.0.0.1", 1003)


def test_idle_mappings_expire_in_order_of_last_use() -> None:
    table: Mappings[str] = Mappings(idle_timeout=30.0, cap=10)
    table.add(A, "a", now=0.0)
    table.add(B, "b", now=5.0)
    assert table.get(A, now=20.0) == "a"  # used: A is now the fresher one
    assert table.next_expiry() == 35.0
    assert table.expire(34.9) == []
    assert table.expire(35.0) == [(B, "b")]
    assert table.peek(A) == "a" and B not in table
    assert table.expire(50.0) == [(A, "a")]
    assert len(table) == 0 and table.next_expiry() is None
    assert (table.opened, table.expired) == (2, 2)


def test_cap_and_allowed_sources_refuse_new_mappings() -> None:
    table: Mappings[str] = Mappings(idle_timeout=1.0, cap=2, allowed=[A, B])
    assert table.refusal(C) == REFUSED_SOURCE
    table.add(A, "a", now=0.0)
    table.add(B, "b", now=0.0)
    assert table.refusal(A) == REFUSED_FULL  # full, even for an allowed source
    table.expire(1.0)
    assert table.refusal(A) is None and table.refusal(C) == REFUSED_SOURCE
    table.add(A, "a", now=2.0)
    with pytest.raises(ValueError, match="mapped already"):
        table.add(A, "a", now=2.0)


@pytest.mark.parametrize(("options", "message"), [
    ({"idle_timeout": 0.0}, "idle_timeout must be > 0 s, got 0.0"),
    ({"cap": 0}, "mapping cap must be >= 1, got 0"),
])
def test_bad_table_settings_say_what_was_expected(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Mappings(**options)  # type: ignore[arg-type]


def test_control_lines_split_anywhere_and_bad_lines_are_named() -> None:
    reader = control.LineReader()
    line = control.encode({"id": 1, "op": "stats", "relay": 2})
    assert list(reader.feed(line[:5])) == []
    assert list(reader.feed(line[5:] + line)) == [{"id": 1, "op": "stats", "relay": 2}] * 2
    with pytest.raises(control.ControlError, match="not JSON"):
        list(reader.feed(b"{oops\n"))
    with pytest.raises(control.ControlError, match="expected a JSON object"):
        list(control.LineReader().feed(b"[1]\n"))
    with pytest.raises(control.ControlError, match=r"listen: expected \[host, port\]"):
        control.address(["127.0.0.1", 70000], "listen")
    profile = get_profile("5g-sa")
    assert control.unpack_profile(control.pack_profile(profile)) == profile
