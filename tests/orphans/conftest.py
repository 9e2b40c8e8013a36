"""Fixtures: an in-loop emulator (scripted runtime) and a ``ClusterTarget`` pointing at it."""

from tests.support.scripted_cluster import emulator, target  # noqa: F401  (fixtures)
