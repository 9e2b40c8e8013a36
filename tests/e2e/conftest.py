"""Fixtures: one in-thread emulator (process runtime), a client for it and a folder of pod gates per module."""

from tests.support.e2e import emulator, gates, kube  # noqa: F401  (fixtures)
