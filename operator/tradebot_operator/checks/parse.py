"""Turn raw object bodies into API models; a body that does not parse becomes Problems.

The CRD schema rejects most bad input at the API server, but objects written before a
CRD upgrade, or by a client bypassing validation, must still never crash the operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tradebot_operator.checks.chain import Problem

M = TypeVar("M", bound=BaseModel)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse(model: type[M], body: Mapping[str, Any]) -> tuple[M | None, list[Problem]]:
    """(model, []) or (None, problems naming each bad field)."""
    raw = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec", "status") if k in body}
    raw.pop("status", None)  # status is ours to write; never let it block parsing the spec
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        problems = [
            Problem("InvalidSpec", _field_path(tuple(err["loc"])), err["msg"])
            for err in exc.errors()[:10]
        ]
        return None, problems


def parse_resource(model: type[M], body: Mapping[str, Any]) -> tuple[M | None, list[Problem]]:
    """Parse a whole object from the API into its model. An object the model refuses (a
    field the CRD schema cannot express, or an object stored before a CRD upgrade) becomes
    problems with the field path instead of an exception."""
    try:
        return model.model_validate(body), []
    except ValidationError as exc:
        problems = [
            Problem(
                "InvalidSpec",
                _field_path(tuple(error["loc"])),
                str(error["msg"]).removeprefix("Value error, "),
            )
            for error in exc.errors()
        ]
        return None, problems
