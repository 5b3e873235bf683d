"""OutgoingRtp rewrites only the extension block, and only when a step sets one:
the same bytes as parsing and serialising the whole packet (what it did before)."""

from __future__ import annotations

import struct

import pytest
from aiortc.rtp import pack_header_extensions, unpack_header_extensions
from hypothesis import given
from hypothesis import strategies as st

from cloudarcade.rtc.packet import OutgoingRtp


def _full_rewrite(data: bytes, edits: dict[int, bytes]) -> bytes:
    """Parse every field, set ``edits``, serialise every field, extensions in id order."""
    first = data[0]
    pos = csrc_end = 12 + 4 * (first & 0x0F)
    extensions: dict[int, bytes] = {}
    if first & 0x10:
        profile, words = struct.unpack_from("!HH", data, pos)
        extensions = dict(unpack_header_extensions(profile, data[pos + 4 : pos + 4 + 4 * words]))
        pos += 4 + 4 * words
    extensions.update(edits)
    profile, value = pack_header_extensions(sorted(extensions.items()))
    out = bytes([first & ~0x10 | (0x10 if extensions else 0)]) + data[1:csrc_end]
    if extensions:
        out += struct.pack("!HH", profile, len(value) // 4) + value
    return out + data[pos:]


# Mostly ids and sizes of the one-byte form; some that force the two-byte form.
_ids = st.one_of(st.integers(1, 14), st.integers(1, 255))
_values = st.one_of(st.binary(min_size=1, max_size=16), st.binary(max_size=40))


@st.composite
def _packets(draw: st.DrawFn) -> bytes:
    csrc = draw(st.integers(0, 3))
    own = draw(st.lists(st.tuples(_ids, _values), max_size=4))
    first = 0x80 | draw(st.integers(0, 1)) << 5 | (0x10 if own else 0) | csrc
    header = struct.pack("!BBHLL", first, draw(st.integers(0, 255)), draw(st.integers(0, 65535)),
                         draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)))
    header += draw(st.binary(min_size=4 * csrc, max_size=4 * csrc))
    if own:
        profile, value = pack_header_extensions(own)
        header += struct.pack("!HH", profile, len(value) // 4) + value
    return header + draw(st.binary(max_size=64))


@given(_packets(), st.dictionaries(_ids, _values, max_size=3))
def test_in_place_rewrite_matches_the_full_parse_and_serialise(
    data: bytes, edits: dict[int, bytes]
) -> None:
    packet = OutgoingRtp.parse(data)
    for extension_id, value in edits.items():
        packet.set_extension(extension_id, value)
    out = bytes(packet)
    if not edits:
        assert out is data  # untouched: no rewrite at all
    else:
        assert out == _full_rewrite(data, edits)
    assert dict(OutgoingRtp.parse(out).extensions) == dict(packet.extensions)
    assert (packet.sequence_number, packet.payload) == (
        struct.unpack_from("!H", data, 2)[0], OutgoingRtp.parse(out).payload)


def test_bad_packets_and_extensions_are_named() -> None:
    with pytest.raises(ValueError, match="expected at least 12"):
        OutgoingRtp.parse(b"\x80" * 11)
    with pytest.raises(ValueError, match="RTP version 1"):
        OutgoingRtp.parse(b"\x40" + bytes(11))
    with pytest.raises(ValueError, match="header extension truncated"):
        OutgoingRtp.parse(b"\x90" + bytes(11) + b"\xbe\xde\x00\x02" + bytes(4))
    packet = OutgoingRtp.parse(b"\x80" + bytes(11))
    with pytest.raises(ValueError, match=r"expected an id in 1\.\.255"):
        packet.set_extension(0, b"x")
    with pytest.raises(TypeError):
        packet.extensions[3] = b"x"  # type: ignore[index]
