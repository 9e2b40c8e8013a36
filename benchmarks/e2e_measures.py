"""What ``benchmarks.e2e_slots`` computes from one run: worker time per pod task, pod end → task end, ratios.

Pure functions over what the run collected through the REST API and the emulator host (no Airflow imports), so the
arithmetic can be read and checked apart from the stack that produced it. Sources, and why each:

* **Running seconds per task** come from Airflow's event log (``GET /api/v2/eventLogs``). The execution API writes a
  ``running`` record each time a worker starts the task (``ti_run``, also on a resume) and a record named after the
  new state each time the worker reports one (``deferred``, ``success``, ``failed`` …). A worker stint is a
  ``running`` record to the next such record: exact to the database clock, and it counts a resume as a second stint.
  The task instance's ``start_date``/``end_date`` cannot give this: a resume keeps the first ``start_date``
  (``ti_run`` drops it when ``next_kwargs`` is set) and Airflow 3 adds no history entry for a deferral, so
  ``end - start`` counts the deferred time as well (it is in the JSON as ``ti_start_to_end_s`` for comparison).
* **Queued seconds per task** come from the 1 s samples of every task instance's state (each sampled state is
  charged the time to the next sample: ±1 interval per transition). ``queued`` holds no worker slot: Airflow 3.3's
  LocalExecutor takes every queued task into its own queue (the smoke run showed 8 queued on 2 slots) and a worker
  process picks one up when free. It is the wait for a slot, a start's or a resume's. What the running stints leave
  out is the pick-up itself (the supervisor's fork before it reports ``running``), well under a second.
  ``running_s_per_task_from_samples`` is the same sampling applied to ``running``, a check on the event-log figure.
* **Pod end** is the emulator host's stamp (``benchmarks.emulator_host``): the wall time at which the store committed
  the base container terminated, sub-millisecond, where ``finishedAt`` has one-second resolution. **Task end** is the
  task instance's ``end_date``. Both read the same system clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .common import percentile, rounded

WORKER_END_EVENTS = frozenset({"deferred", "success", "failed", "up_for_retry", "up_for_reschedule", "skipped"})
QUEUED = frozenset({"queued"})
# One character per task instance and sample (the JSON keeps every sample): index i is map index i's state.
STATE_CODES = {None: "-", "scheduled": "s", "queued": "q", "running": "r", "deferred": "d", "success": "S",
               "failed": "F", "up_for_retry": "u", "upstream_failed": "U", "skipped": "K", "removed": "x"}
STATES_BY_CODE = {code: state for state, code in STATE_CODES.items()}


def task_index(task_id: str | None, map_index: Any) -> int:
    """Which of the run's pod tasks a record is about: its map index (``--shape mapped``), else the ``N`` of its
    task id ``pod_N`` (``--shape tasks``: one unmapped task per pod); -1 for anything else."""
    if map_index is not None and int(map_index) >= 0:
        return int(map_index)
    head, _, number = (task_id or "").rpartition("_")
    return int(number) if head == "pod" and number.isdigit() else -1


def state_codes(states: Mapping[int, str | None], count: int) -> str:
    """Map index → state as a string of ``STATE_CODES`` (``?`` for a state not listed)."""
    return "".join(STATE_CODES.get(states.get(index), "?") for index in range(count))


def timestamp(value: str | None) -> float | None:
    """An API datetime (ISO 8601, UTC) as unix seconds."""
    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def worker_stints(events: Iterable[Mapping[str, Any]]) -> dict[int, list[tuple[float, float]]]:
    """Per map index, each (start, end) a worker ran the task: ``running`` to the next worker-reported state."""
    by_task: dict[int, list[tuple[float, str]]] = {}
    for event in events:
        if event.get("event") == "running" or event.get("event") in WORKER_END_EVENTS:
            when = timestamp(event["when"])
            assert when is not None
            by_task.setdefault(task_index(event.get("task_id"), event.get("map_index")), []).append(
                (when, event["event"])
            )
    stints: dict[int, list[tuple[float, float]]] = {}
    for index, records in by_task.items():
        started: float | None = None
        for when, name in sorted(records):
            if name == "running":
                started = when
            elif started is not None:
                stints.setdefault(index, []).append((started, when))
                started = None
    return stints


def sampled_seconds(samples: Sequence[Mapping[str, Any]], states: frozenset[str]) -> dict[int, float]:
    """Per map index, the seconds spent in ``states``: each sample's state is charged until the next sample."""
    seconds: dict[int, float] = {}
    for sample, following in zip(samples, samples[1:], strict=False):
        step = following["wall"] - sample["wall"]
        for index, code in enumerate(sample["tis"]):
            if STATES_BY_CODE.get(code) in states:
                seconds[index] = seconds.get(index, 0.0) + step
    return seconds


def pod_end_stamps(stamps: Mapping[str, float], labels: Mapping[str, Mapping[str, str]], dag_id: str) -> dict[int, float]:
    """Per map index, when the emulator committed the end of the pod of ``dag_id``'s task (by the pod's labels)."""
    ends: dict[int, float] = {}
    for name, when in stamps.items():
        pod_labels = labels.get(name) or {}
        index = task_index(pod_labels.get("task_id"), pod_labels.get("map_index"))
        if pod_labels.get("dag_id") == dag_id and index >= 0:
            ends[index] = min(when, ends.get(index, when))  # a retried task's first pod (none in a clean run)
    return ends


def _stats(values: Sequence[float], digits: int = 2) -> dict[str, float | None]:
    return {"mean": rounded(sum(values) / len(values), digits) if values else None,
            "p50": rounded(percentile(values, 50), digits), "p99": rounded(percentile(values, 99), digits),
            "max": rounded(max(values), digits) if values else None}


def summarise(run: dict[str, Any], events: list[dict[str, Any]], tis: list[dict[str, Any]],
              pod_ends: Mapping[int, float]) -> dict[str, Any]:
    """The per-run figures (added to ``run``): worker seconds per task, latencies, the ramp, saturation.

    ``saturated_share``: the share of samples up to the run's end in which every slot ran a task (pod or busy).
    """
    pods, started = run["pods"], run["triggered_wall"]
    stints = worker_stints(events)
    running = {index: sum(end - start for start, end in spans) for index, spans in stints.items()}
    queued = sampled_seconds(run["samples"], QUEUED)
    sampled_running = sampled_seconds(run["samples"], frozenset({"running"}))
    ends = {task_index(ti["task_id"], ti["map_index"]): timestamp(ti.get("end_date")) for ti in tis}
    starts = {task_index(ti["task_id"], ti["map_index"]): timestamp(ti.get("start_date")) for ti in tis}
    latencies = [ends[i] - pod_ends[i] for i in pod_ends if ends.get(i) is not None]
    first_deferrals = [spans[0][1] - started for spans in stints.values() if spans]
    window = [s for s in run["samples"] if s["t"] <= run["makespan_s"]]
    run.update({
        "running_s_per_task": rounded(sum(running.values()) / pods, 2),
        "running_s_per_task_from_samples": rounded(sum(sampled_running.values()) / pods, 2),
        "queued_s_per_task": rounded(sum(queued.values()) / pods, 2),
        "worker_stints_per_task": rounded(sum(len(spans) for spans in stints.values()) / pods, 2),
        "ti_start_to_end_s_per_task": rounded(
            sum(ends[i] - starts[i] for i in ends if ends[i] and starts.get(i)) / pods, 2),
        "running_s": _stats(list(running.values())),
        "pod_end_to_task_end_s": _stats(latencies, 3) | {"n": len(latencies)},
        "first_stint_end_s": _stats(first_deferrals, 1),  # when each task left its first worker slot
        "saturated_share": rounded(
            sum(1 for s in window if s["slots_in_use"] >= run["parallelism"]) / len(window), 3) if window else None,
        "per_task": [
            {"map_index": i, "stints": [[rounded(a - started, 3), rounded(b - started, 3)] for a, b in stints.get(i, [])],
             "queued_s": rounded(queued.get(i, 0.0), 2), "pod_end": rounded(pod_ends[i] - started, 3) if i in pod_ends else None,
             "end": rounded(ends[i] - started, 3) if ends.get(i) else None}
            for i in sorted(ends)
        ],
    })
    return run


RATIO_METRICS = {
    "running_s_per_task": lambda run: run.get("running_s_per_task"),
    "queued_s_per_task": lambda run: run.get("queued_s_per_task"),
    "makespan_s": lambda run: run.get("makespan_s"),
    "pod_end_to_task_end_p50": lambda run: (run.get("pod_end_to_task_end_s") or {}).get("p50"),
    "pod_end_to_task_end_p99": lambda run: (run.get("pod_end_to_task_end_s") or {}).get("p99"),
}


def ratios(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each run's figures divided by the provider's and by ours-resume's (``<impl>/<reference>``); below 1 is better."""
    by_impl = {run["impl"]: run for run in runs if run.get("state") == "success"}
    result: dict[str, dict[str, float | None]] = {}
    for reference in ("provider", "ours-resume"):
        if reference not in by_impl:
            continue
        for impl, run in by_impl.items():
            if impl == reference:
                continue
            row = {}
            for metric, read in RATIO_METRICS.items():
                a, b = read(run), read(by_impl[reference])
                row[metric] = round(a / b, 3) if a is not None and b else None
            result[f"{impl}/{reference}"] = row
    return result
