"""Which container a ``pods/log`` or ``pods/exec`` request means, with the API server's 400 messages.

Why: both handlers choose the same way. Facts: ``container`` may be omitted only when the pod has one container;
else 400 ``a container name must be specified for pod x, choose one of: [init a b]`` (init containers first, then
containers, then ephemeral containers, as ``VisitContainers`` orders them). An unknown name is 400 ``container x is
not valid for pod y``.
"""

from __future__ import annotations

from ..errors import ApiError


def choose_container(pod: dict, container: str) -> str:
    """The container a log or exec request means, with the API server's 400 messages."""
    spec = pod.get("spec", {})
    name = pod["metadata"]["name"]
    regular = [c["name"] for c in spec.get("containers", [])]
    every = [c["name"] for c in spec.get("initContainers", [])] + regular
    every += [c["name"] for c in spec.get("ephemeralContainers", [])]
    if not container:
        if len(regular) == 1:
            return regular[0]
        if not regular:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}")
        choices = "[" + " ".join(every) + "]"
        raise ApiError(
            400, "BadRequest", f"a container name must be specified for pod {name}, choose one of: {choices}"
        )
    if container not in every:
        raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
    return container


def container_status(pod: dict, container: str) -> dict | None:
    status = pod.get("status", {})
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or []:
            if entry.get("name") == container:
                return entry
    return None
