"""What is wrong with an operator's arguments, as data: one ``Problem`` per mistake, raised together.

Why: every check in this package (and the operator's checks of timing and behaviour arguments) reports into the same
list, so a user sees all mistakes of a task at once, and each mistake stays one item however many lines its text has
(a YAML error is one problem, not one per line of the parser's message).

Guarantees: ``PodSpecError`` is a ``ValueError``; ``.problems`` is a non-empty list of ``Problem``; ``str(problem)``
names the argument, the value and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One mistake: the argument (or path inside it) it is about and a message naming the value and the fix."""

    argument: str
    message: str

    def __str__(self) -> str:
        return self.message


class PodSpecError(ValueError):
    """One or more operator arguments are invalid; the message lists every problem with its fix."""

    def __init__(self, problems: Iterable[Problem | str]) -> None:
        self.problems = [p if isinstance(p, Problem) else Problem(_argument_of(p), p) for p in problems]
        if len(self.problems) == 1:
            text = f"Invalid argument: {self.problems[0]}"
        else:
            text = f"{len(self.problems)} invalid arguments:\n" + "\n".join(
                "- " + str(p).replace("\n", "\n  ") for p in self.problems
            )
        super().__init__(text)


def _argument_of(message: str) -> str:
    """The leading argument name of a message such as ``"labels['a'] = 1: ..."`` (best effort, for plain strings)."""
    head = message.split(":", 1)[0]
    for stop in "[.= ":
        head = head.split(stop, 1)[0]
    return head


def fail(*messages: str) -> PodSpecError:
    """A ``PodSpecError`` from plain messages (the argument is read from each message's start)."""
    return PodSpecError(list(messages))
