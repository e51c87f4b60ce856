"""Base model for every API object and shared contract."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


def camel(name: str) -> str:
    """snake_case -> camelCase, leaving digits alone (``orders_per_10s`` -> ``ordersPer10s``;
    pydantic's to_camel would give ``ordersPer10S``)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class CamelModel(BaseModel):
    """snake_case in Python, camelCase on the wire; attribute docstrings become the field
    descriptions that ``kubectl explain`` shows.

    Unknown keys are ignored: the API server already prunes them from custom resources, and
    a runtime must tolerate fields added by a newer operator during an upgrade.
    """

    model_config = ConfigDict(
        alias_generator=camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )
