"""``log_drain``: the wait before a trigger's event follows what the reader of a Unix socket has read."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from airflow_kpo_deferrable.triggers.log_drain import logs_read, unread_bytes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIOCOUTQ is Linux's")


async def test_it_waits_while_bytes_are_unread_and_returns_once_the_reader_read_them() -> None:
    writer, reader = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with writer, reader:
        baseline = unread_bytes()
        writer.sendall(b"x" * 5000)
        assert unread_bytes() >= (baseline or 0) + 5000
        assert await logs_read(timeout=0.2) is False  # nobody read: the bound ends the wait

        async def read_later() -> None:
            await asyncio.sleep(0.1)
            received = 0
            while received < 5000:
                received += len(reader.recv(65536))

        reading = asyncio.create_task(read_later())
        assert await logs_read(timeout=30) is True
        await reading
        assert unread_bytes() == (baseline or 0)


async def test_datagram_sockets_do_not_count() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        baseline = unread_bytes()
        a.send(b"y" * 100)
        assert unread_bytes() == baseline
