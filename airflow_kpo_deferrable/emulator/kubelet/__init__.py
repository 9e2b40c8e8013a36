"""The simulated scheduler + kubelet of the emulator's one node: moves each pod through real-looking states.

Why: the operator and its trigger judge a pod only by what the API shows (phase, conditions, container states,
events, logs), so this package writes what a real scheduler and kubelet (1.32) write, in the same order, for success
and for every failure the operator has to recognise. It reads and writes the store only; it knows nothing of HTTP.

Modules, lower ones first (imports go one way, down this list):
``status`` and ``scheduling`` (pure rules), ``images``, ``env``, ``launch`` (runtime types), ``volumes`` (which
directory backs each mount), ``scripted``, ``sandbox`` (container isolation; ``sandbox_init.py`` is its script,
never imported) and ``process`` (the runtimes), ``containers`` (a container's record), ``events``, ``context`` (what workers share with
the node, ``Timings``), ``podstate`` → ``lifecycle`` → ``worker`` (one pod), ``node`` (``Kubelet``).
"""

from .context import Timings
from .node import RUNTIMES, Kubelet

__all__ = ["RUNTIMES", "Kubelet", "Timings"]
