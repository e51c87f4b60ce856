"""The result of a check and how checks are chained.

A check is a small pure function of one subject that yields Problems: each names the
reason (a condition reason), the field (path from the object root) and a message. A chain
runs its checks in order and keeps every problem in that order: the first one becomes the
condition's reason, and the joined messages its message. A check marked as a gate stops
the chain when it finds an error, because the checks after it need what it verified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

Severity = Literal["Error", "Warning"]


@dataclass(frozen=True)
class Problem:
    """One reason an object cannot (or should not) be used as it is."""

    reason: str
    """CamelCase, usable as a condition reason."""
    field: str
    """Path from the object root, e.g. ``spec.exchanges[0].account``."""
    message: str
    severity: Severity = "Error"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def errors(problems: list[Problem]) -> list[Problem]:
    return [problem for problem in problems if problem.severity == "Error"]


S = TypeVar("S")
CheckFn = Callable[[S], Iterator[Problem]]


@dataclass(frozen=True)
class Check(Generic[S]):
    run: CheckFn[S]
    gate: bool = False
    """Later checks need this one to pass: the chain stops at its first error."""

    @property
    def name(self) -> str:
        return self.run.__name__


def check(fn: CheckFn[S]) -> Check[S]:
    return Check(fn)


def gate(fn: CheckFn[S]) -> Check[S]:
    return Check(fn, gate=True)


def run_checks(checks: Sequence[Check[S]], subject: S) -> list[Problem]:
    """Every problem the checks find in ``subject``, in check order."""
    problems: list[Problem] = []
    for step in checks:
        found = list(step.run(subject))
        problems.extend(found)
        if step.gate and errors(found):
            break
    return problems


def run_all(checks: Sequence[Check[S]], subjects: Iterable[S]) -> list[Problem]:
    """The chain on each subject in turn (e.g. each exchange of a bot)."""
    return [problem for subject in subjects for problem in run_checks(checks, subject)]
