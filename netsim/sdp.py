"""Putting the relay between WebRTC peers: rewrite ICE host candidates in SDP.

A peer's host candidate ``127.0.0.1 P`` becomes the relay's ``127.0.0.1 R``, so
the other peer sends to the relay, which forwards to P. The m-line port and
c-line address are rewritten too when they name a mapped address, because some
stacks use that default before ICE picks a pair.
"""

from __future__ import annotations

import itertools
import re

Address = tuple[str, int]

# a=candidate:<foundation> <component> <transport> <priority> <ip> <port> typ <type> ...
_CANDIDATE = re.compile(
    r"^(a=candidate:\S+ \d+ )(\S+)( \d+ )(\S+) (\d+)( typ )(\S+)(.*)$", re.IGNORECASE
)
_MLINE = re.compile(r"^(m=\S+ )(\d+)(.*)$")
_CLINE = re.compile(r"^(c=IN IP[46] )(\S+)(.*)$")


def _split_lines(sdp: str) -> tuple[list[str], str]:
    eol = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(eol)
    return lines, eol


def candidate_addresses(sdp: str) -> list[Address]:
    """The UDP host candidates' (ip, port), in order of appearance, without repeats."""
    seen: list[Address] = []
    for line in _split_lines(sdp)[0]:
        m = _CANDIDATE.match(line.strip())
        if m and m.group(2).lower() == "udp" and m.group(7).lower() == "host":
            addr = (m.group(4), int(m.group(5)))
            if addr not in seen:
                seen.append(addr)
    return seen


def rewrite_sdp_candidates(sdp: str, mapping: dict[Address, Address]) -> str:
    """Replace every UDP candidate (and default m/c address) found in ``mapping``.

    Lines not involved are returned byte for byte, line endings included.
    """
    lines, eol = _split_lines(sdp)
    out = list(lines)
    session_c: str | None = None
    # First pass: candidates; note where each media section starts.
    sections: list[int] = []
    for i, line in enumerate(lines):
        if line.startswith("m="):
            sections.append(i)
        elif line.startswith("c=") and not sections:
            cm = _CLINE.match(line)
            session_c = cm.group(2) if cm else None
        m = _CANDIDATE.match(line)
        if m and m.group(2).lower() == "udp":
            addr = (m.group(4), int(m.group(5)))
            if addr in mapping:
                ip, port = mapping[addr]
                g = m.groups()
                out[i] = f"{g[0]}{g[1]}{g[2]}{ip} {port}{g[5]}{g[6]}{g[7]}"
    # Second pass: each media section's default address.
    bounds = [*sections, len(lines)]
    inserts: list[tuple[int, str]] = []
    for s, e in itertools.pairwise(bounds):
        mm = _MLINE.match(lines[s])
        if not mm:
            continue
        c_idx = next((j for j in range(s + 1, e) if lines[j].startswith("c=")), None)
        c_ip = session_c
        if c_idx is not None:
            cm = _CLINE.match(lines[c_idx])
            c_ip = cm.group(2) if cm else None
        if c_ip is None:
            continue
        addr = (c_ip, int(mm.group(2)))
        if addr not in mapping:
            continue
        ip, port = mapping[addr]
        out[s] = f"{mm.group(1)}{port}{mm.group(3)}"
        if c_idx is not None:
            cm = _CLINE.match(lines[c_idx])
            assert cm is not None
            out[c_idx] = f"{cm.group(1)}{ip}{cm.group(3)}"
        elif ip != c_ip:
            inserts.append((s + 1, f"c=IN IP4 {ip}"))
    for idx, text in reversed(inserts):
        out.insert(idx, text)
    return eol.join(out)
