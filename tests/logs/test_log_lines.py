"""The pure log rules: decoding timestamped output in any chunking, exact resume after a broken read, stamps."""

from __future__ import annotations

import random

from airflow_kpo_deferrable.logs.lines import MAX_LINE_BYTES, ContainerLogCopy, selected_containers
from airflow_kpo_deferrable.logs.stamps import MIN_RUNTIME_RECORD_BYTES, parse_stamp, since_time
from tests.support.log_reads import joined

BASE = 1_714_557_600 * 1_000_000_000  # 2024-05-01T10:00:00Z


def stamp(ns: int) -> bytes:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return since_time(seconds * 1_000_000_000).encode()[:-1] + b".%09dZ" % nanos


def served(lines: list[tuple[int, bytes]]) -> bytes:
    """What the kubelet sends for ``timestamps=true``: ``<stamp> <text>\\n`` per line."""
    return b"".join(stamp(ns) + b" " + text + b"\n" for ns, text in lines)


def chunked(data: bytes, rng: random.Random, most: int = 97) -> list[bytes]:
    chunks, position = [], 0
    while position < len(data):
        size = rng.randint(1, most)
        chunks.append(data[position : position + size])
        position += size
    return chunks


def read_all(copy: ContainerLogCopy, data: bytes, rng: random.Random) -> None:
    copy.restart()
    for chunk in chunked(data, rng):
        copy.feed(chunk)
    copy.finish()


def test_lines_survive_any_chunking_and_lose_their_stamps() -> None:
    lines = [(BASE + i * 1000, f"line {i} {'x' * (i % 37)}".encode()) for i in range(500)]
    out: list[str] = []
    read_all(ContainerLogCopy("base", out.append), served(lines), random.Random(7))
    assert out == [text.decode() for _, text in lines]


def test_last_line_without_newline_and_empty_lines_are_kept() -> None:
    out: list[str] = []
    copy = ContainerLogCopy("base", out.append)
    read_all(copy, stamp(BASE) + b" \n" + stamp(BASE) + b" \n" + stamp(BASE + 1) + b" last", random.Random(1))
    assert out == ["", "", "last"]
    assert copy.result.lines == 3


def test_an_overlong_line_comes_out_in_bounded_pieces() -> None:
    line = b"y" * 1000
    out: list[str] = []
    read_all(ContainerLogCopy("base", out.append, max_line_bytes=128), served([(BASE, line), (BASE, b"z")]),
             random.Random(3))
    assert all(len(piece) <= 128 + 2 for piece in out)
    assert joined(out) == [line.decode(), "z"]


def test_a_broken_read_resumes_without_loss_or_repeat_with_identical_stamps() -> None:
    """Many lines share one stamp (one runtime batch); the resumed read repeats the whole second; none is doubled."""
    lines = [(BASE + (i // 50) * 7_000_000, f"l{i}".encode()) for i in range(400)]  # 8 stamps, 50 lines each
    data = served(lines)
    rng = random.Random(11)
    for cut in sorted(rng.sample(range(1, len(data)), 25)):
        out: list[str] = []
        copy = ContainerLogCopy("base", out.append)
        copy.restart()
        for chunk in chunked(data[:cut], rng):
            copy.feed(chunk)  # the connection breaks here: no finish()
        query = copy.query()
        # The server resumes from the second (1-second resolution): here, from the start of the log again.
        assert query["sinceTime"] == "2024-05-01T10:00:00Z" or copy.result.lines == 0
        read_all(copy, data, rng)
        assert out == [text.decode() for _, text in lines], f"cut at byte {cut}"
        assert copy.result.lines == 400


def test_a_long_line_broken_in_the_middle_is_continued_not_repeated() -> None:
    long = b"".join(b"%06d" % i for i in range(5000))  # 30 000 bytes, every position distinct
    lines = [(BASE, b"before"), (BASE + 5, long), (BASE + 9, b"after")]
    data = served(lines)
    out: list[str] = []
    copy = ContainerLogCopy("base", out.append, max_line_bytes=4096)
    copy.restart()
    copy.feed(data[: len(data) // 2])
    read_all(copy, data, random.Random(5))
    assert joined(out) == [text.decode() for _, text in lines]
    assert copy.result.lines == 3


def test_kubelet_stamps_inside_a_long_line_are_removed() -> None:
    """The kubelet stamps every runtime record; a line longer than a record gets stamps in its middle (#77603)."""
    pieces = [b"a" * 16384, b"b" * 16384, b"c" * 100]
    data = b"".join(stamp(BASE + i) + b" " + piece for i, piece in enumerate(pieces)) + b"\n"
    data += stamp(BASE + 9) + b" short line with " + stamp(BASE + 9) + b" inside it\n"
    out: list[str] = []
    read_all(ContainerLogCopy("base", out.append), data, random.Random(2))
    assert joined(out) == [b"".join(pieces).decode(), f"short line with {stamp(BASE + 9).decode()} inside it"]
    assert MIN_RUNTIME_RECORD_BYTES < 16384


def test_stamps_parse_to_exact_nanoseconds() -> None:
    assert parse_stamp(b"2024-05-01T10:00:00.123456789Z") == BASE + 123_456_789
    assert parse_stamp(b"2024-05-01T10:00:00.1Z") == BASE + 100_000_000  # Go's RFC3339Nano trims zeros
    assert parse_stamp(b"2024-05-01T10:00:00Z") == BASE
    assert parse_stamp(b"2024-05-01T12:00:00.5+02:00") == BASE + 500_000_000
    assert parse_stamp(b"not a stamp") is None
    assert since_time(BASE + 999_999_999) == "2024-05-01T10:00:00Z"  # truncated: never after the last line


def test_container_selection() -> None:
    assert selected_containers(["a", "b"], True, ["a"]) == ["a", "b"]
    assert selected_containers(["a", "b"], None, ["a"]) == ["a"]
    assert selected_containers(["a", "b"], "b", ["a"]) == ["b"]
    assert selected_containers(["a", "b", "c"], ["c", "a"], []) == ["a", "c"]


def test_a_copy_started_after_an_earlier_ones_resume_point_writes_only_the_rest() -> None:
    """The hand-over the triggerer's live logs need: what one copy wrote, the next one does not write again."""
    lines = [(BASE + (i // 30) * 1_000, f"l{i}".encode()) for i in range(300)]  # 30 lines per stamp
    first: list[str] = []
    earlier = ContainerLogCopy("base", first.append)
    read_all(earlier, served(lines[:145]), random.Random(4))  # the log as it was when the first copy read it
    point = earlier.result.resume_point
    assert point is not None and point.lines_at_stamp == 145 - 120
    rest: list[str] = []
    later = ContainerLogCopy("base", rest.append, start_after=point)
    assert later.query()["sinceTime"] == since_time(point.stamp)
    read_all(later, served(lines), random.Random(6))
    assert first + rest == [text.decode() for _, text in lines]


def test_a_line_longer_than_the_buffer_streams_in_pieces_across_a_break() -> None:
    """Past LONG_LINE_BYTES a line is not buffered whole; its record stamps still go, and a break mid-way resumes."""
    records = [bytes([97 + i % 26]) * 16384 for i in range(25)]  # 400 KiB, one record stamp per 16 KiB
    long = b"".join(stamp(BASE + 3) + b" " + record for record in records) + b"\n"
    data = served([(BASE, b"first")]) + long + served([(BASE + 4, b"last")])
    rng = random.Random(9)
    for cut in (40, len(data) // 3, len(data) - 10):
        out: list[str] = []
        copy = ContainerLogCopy("base", out.append)
        copy.restart()
        for chunk in chunked(data[:cut], rng, most=70_000):
            copy.feed(chunk)
        read_all(copy, data, rng)
        assert joined(out) == ["first", b"".join(records).decode(), "last"], f"cut at byte {cut}"
        assert all(len(piece) <= MAX_LINE_BYTES + 2 for piece in out)
