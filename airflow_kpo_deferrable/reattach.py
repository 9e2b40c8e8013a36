"""Reattach: what a new task try does with the pods earlier tries of the same task left behind (``reattach_on_restart``).

Why: a worker can die after its pod was created and before it deferred (SIGKILL, OOM, node loss). The pod keeps
running, watched by nobody; the next try must not simply create a second one. Before creating, the operator lists
the pods carrying this task's identity labels (``dag_id``, ``task_id``, ``run_id``, ``map_index``, any
``try_number``) and follows the plan decided here. Pure: pods in, plan out; the operator does the I/O.

The rules (the provider's where it has one; README "No orphan pods" lists the differences):

* A pod of an earlier try that is still running (not Succeeded/Failed, not being deleted) is **adopted** when
  ``durable=True`` (the default; ``reattach_on_restart`` is its deprecated name): the new try waits on it instead
  of creating one, so the work runs once. With ``durable=False`` it is **deleted** before the new pod is created.
* More than one running match is an error naming them: which one holds the task's work cannot be known, and
  adopting one would leave the others orphaned. Nothing is created; they are not deleted (a person should look).
* A **finished** pod of an earlier try is never adopted: a retry exists to run the work again, and a cleared task
  must rerun, not replay an old success. (The provider adopts a finished pod not yet labelled ``already_checked``;
  we do not, so no label patching is needed.) Its earlier try never applied ``on_finish_action`` to it (its worker
  died), so the new try applies it now: deleted under ``delete_pod``, deleted under ``delete_succeeded_pod`` when it
  succeeded, kept under ``keep_pod``.
* Pods already being deleted (``deletionTimestamp``) are left to finish going away. A pod on a lost node is never
  adopted (it will not finish) and is deleted, with a force delete (``node_loss``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_kpo_deferrable.node_loss import node_lost_model
from airflow_kpo_deferrable.podspec import PodIdentity, identity_labels

FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


class ReattachError(Exception):
    """More than one running pod of earlier tries carries this task's identity: which one to adopt is unknowable."""


@dataclass(frozen=True)
class EarlierPod:
    """What the plan needs to know about a pod found by identity (read from a client model or a dict)."""

    name: str
    uid: str | None
    try_number: int | None
    phase: str | None
    deleting: bool
    lost: bool = False  # its node stopped reporting (phase Unknown, NodeLost): only a force delete removes it

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED_PHASES

    @classmethod
    def from_pod(cls, pod: Any) -> EarlierPod:
        """From a ``kubernetes`` ``V1Pod``."""
        labels = pod.metadata.labels or {}
        return cls(
            name=pod.metadata.name,
            uid=pod.metadata.uid,
            try_number=_int(labels.get("try_number")),
            phase=pod.status.phase if pod.status else None,
            deleting=pod.metadata.deletion_timestamp is not None,
            lost=node_lost_model(pod),
        )


@dataclass(frozen=True)
class ReattachPlan:
    """``adopt``: the pod to wait on instead of creating one (None: create). ``delete``: remove these first."""

    adopt: EarlierPod | None = None
    delete: tuple[EarlierPod, ...] = ()
    notes: tuple[str, ...] = field(default=())


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def identity_selector(identity: PodIdentity) -> str:
    """The label selector matching every try's pods of this task instance (and no other task's, mapped or not)."""
    labels = {k: v for k, v in identity_labels(identity).items() if k != "try_number"}
    terms = [f"{key}={value}" for key, value in sorted(labels.items())]
    if "map_index" not in labels:
        terms.append("!map_index")  # an unmapped task's pods only, not those of a mapped task with the same ids
    return ",".join(terms)


def plan_reattach(
    pods: Sequence[EarlierPod], *, try_number: int, reattach: bool, on_finish_action: str
) -> ReattachPlan:
    """The plan for a new try ``try_number`` given the pods found by ``identity_selector``."""
    running = [p for p in pods if not p.finished and not p.deleting and not p.lost]
    finished = [p for p in pods if p.finished and not p.deleting]
    notes: list[str] = []
    delete: list[EarlierPod] = []
    for pod in pods:
        if pod.lost and not pod.finished:
            delete.append(pod)
            notes.append(f"deleting pod {pod.name} of try {pod.try_number}: its node is lost")
    for pod in finished:
        succeeded = pod.phase == "Succeeded"
        if on_finish_action == "delete_pod" or (on_finish_action == "delete_succeeded_pod" and succeeded):
            delete.append(pod)
            notes.append(
                f"deleting finished pod {pod.name} of try {pod.try_number} ({pod.phase}; "
                f"on_finish_action={on_finish_action}): this try runs the work again"
            )
        else:
            notes.append(
                f"keeping finished pod {pod.name} of try {pod.try_number} (on_finish_action={on_finish_action})"
            )
    if not running:
        return ReattachPlan(None, tuple(delete), tuple(notes))
    if not reattach:
        for pod in running:
            notes.append(f"deleting running pod {pod.name} of try {pod.try_number} (durable=False)")
        return ReattachPlan(None, tuple(delete + running), tuple(notes))
    if len(running) > 1:
        names = ", ".join(sorted(f"{p.name} (try {p.try_number}, {p.phase})" for p in running))
        raise ReattachError(
            f"durable=True (reattach_on_restart) found {len(running)} running pods of earlier tries of this task: "
            f"{names}. Only one can be adopted; delete the extra ones (kubectl delete pod ...) or set durable=False "
            f"to replace them all"
        )
    [pod] = running
    notes.append(f"adopting running pod {pod.name} of try {pod.try_number} (durable=True)")
    return ReattachPlan(pod, tuple(delete), tuple(notes))

