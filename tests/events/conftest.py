"""Fixtures: the in-thread emulator (process runtime) and a client for it, one per module."""

from tests.support.e2e import emulator, kube  # noqa: F401  (fixtures)
