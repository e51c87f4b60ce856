"""Semantic validation the API server cannot do, as ordered chains of small pure checks.

Each check yields Problems (reason, field, message, severity); the controllers turn them
into conditions and events. One module per kind (exchange_account, strategy,
trading_bot); parse turns raw bodies into the API models, a body that does not parse
becomes problems too.
"""

from tradebot_operator.checks.chain import Check, Problem, Severity, errors, run_checks
from tradebot_operator.checks.exchange_account import known_exchange, validate_account
from tradebot_operator.checks.parse import parse, parse_resource
from tradebot_operator.checks.strategy import validate_strategy
from tradebot_operator.checks.trading_bot import validate_bot

__all__ = [
    "Check",
    "Problem",
    "Severity",
    "errors",
    "known_exchange",
    "parse",
    "parse_resource",
    "run_checks",
    "validate_account",
    "validate_bot",
    "validate_strategy",
]
