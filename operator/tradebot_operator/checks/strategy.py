"""Checks of one Strategy: its parameters, by the same rules the runtime applies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tradebot_contracts.strategies import StrategyParametersError, validate_parameters
from tradebot_operator.api.strategy import Strategy
from tradebot_operator.checks.chain import Problem, check, gate, run_checks
from tradebot_operator.checks.tenancy import Tenant, strategy_tenancy_problems


def _python(strategy: Strategy) -> dict[str, Any] | None:
    python = strategy.spec.python
    return python.model_dump(by_alias=True) if python is not None else None


@gate  # the parameter rules of a built-in type know no python section
def python_only_for_python_type(strategy: Strategy) -> Iterator[Problem]:
    if strategy.spec.type != "python" and _python(strategy) is not None:
        yield Problem("PythonNotAllowed", "spec.python", "only allowed when type is python")


@check
def parameters_valid(strategy: Strategy) -> Iterator[Problem]:
    spec = strategy.spec
    try:
        validate_parameters(spec.type, spec.parameters, python=_python(strategy))
    except StrategyParametersError as exc:
        for problem in exc.problems:
            yield Problem("InvalidParameters", problem.field, problem.message)


STRATEGY_CHECKS = (python_only_for_python_type, parameters_valid)


def validate_strategy(strategy: Strategy, tenant: Tenant | None = None) -> list[Problem]:
    problems = run_checks(STRATEGY_CHECKS, strategy)
    return problems + (strategy_tenancy_problems(strategy, tenant) if tenant else [])
