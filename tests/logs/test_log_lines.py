"""Line splitting for streamed logs: nothing dropped, memory bounded, odd chunking survives."""

from __future__ import annotations

import random

from airflow_kpo_deferrable.logs import split_lines


def _join(pieces: list[tuple[bytes, bool]]) -> list[bytes]:
    lines, current = [], b""
    for piece, more in pieces:
        current += piece
        if not more:
            lines.append(current)
            current = b""
    return lines


def test_lines_survive_any_chunking() -> None:
    text = b"".join(f"line {i} {'x' * (i % 37)}\n".encode() for i in range(500))
    rng = random.Random(7)
    chunks, pos = [], 0
    while pos < len(text):
        size = rng.randint(1, 97)
        chunks.append(text[pos : pos + size])
        pos += size
    assert _join(list(split_lines(chunks))) == text.split(b"\n")[:-1]


def test_last_line_without_newline_is_kept() -> None:
    assert list(split_lines([b"a\nb", b"c"])) == [(b"a", False), (b"bc", False)]


def test_overlong_line_comes_out_in_bounded_pieces() -> None:
    line = b"y" * 1000
    pieces = list(split_lines([line[:300], line[300:], b"\nz\n"], max_line_bytes=128))
    assert all(len(p) <= 128 for p, _ in pieces)
    assert [more for _, more in pieces].count(False) == 2
    assert _join(pieces) == [line, b"z"]


def test_empty_lines_are_lines() -> None:
    assert _join(list(split_lines([b"\n\nx\n"]))) == [b"", b"", b"x"]
