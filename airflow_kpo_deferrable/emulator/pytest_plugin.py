"""pytest fixtures for testing your own KubernetesPodOperator code against the emulator (registered as ``kpo_emulator``).

``k8s_emulator``: a running emulator (process runtime) in a background thread; point your code at
``k8s_emulator.kubeconfig_path`` (or set ``KUBECONFIG``). ``k8s_emulator_factory(**kwargs)``: start more, or ones
with other options (``runtime="scripted"``, ``tls=True``); all are stopped after the test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .server import Emulator


@pytest.fixture
def k8s_emulator_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Emulator]]:
    with contextlib.ExitStack() as stack:

        def start(**kwargs: Any) -> Emulator:
            directory: Path = tmp_path_factory.mktemp("k8s-emulator")
            kwargs.setdefault("kubeconfig_path", directory / "kubeconfig")
            kwargs.setdefault("workdir", directory / "node")
            return stack.enter_context(Emulator.in_thread(**kwargs))

        yield start


@pytest.fixture
def k8s_emulator(k8s_emulator_factory: Callable[..., Emulator]) -> Emulator:
    return k8s_emulator_factory()
