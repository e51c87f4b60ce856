"""Turn a pydantic JSON schema into a Kubernetes structural schema.

Kubernetes accepts a subset of OpenAPI v3.0: no ``$ref``, every node typed, ``anyOf`` only
for int-or-string, no ``title``/``const``/``additionalProperties: true``. This module
inlines references, folds ``Optional`` unions, and refuses any keyword it does not know so
that a new pydantic feature cannot slip an invalid schema into the CRDs unnoticed.
"""

from __future__ import annotations

import copy
from typing import Any, Final

JsonDict = dict[str, Any]

_COPIED_KEYS: Final = frozenset(
    {
        "type",
        "description",
        "enum",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "default",
        "required",
        "x-kubernetes-validations",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
    }
)
_DROPPED_KEYS: Final = frozenset({"title", "$defs"})
_NULL: Final = {"type": "null"}


class SchemaError(ValueError):
    """The model produces a schema Kubernetes would not accept."""


def to_structural(schema: JsonDict) -> JsonDict:
    """Structural copy of a pydantic ``model_json_schema(by_alias=True)`` result."""
    return _Converter(schema.get("$defs", {})).convert(schema, "")


class _Converter:
    def __init__(self, defs: JsonDict) -> None:
        self._defs = defs

    def convert(self, node: JsonDict, path: str) -> JsonDict:
        node = copy.deepcopy(node)
        if "$ref" in node:
            node = self._merge(self._resolve(node.pop("$ref"), path), node)
        if "anyOf" in node:
            node = self._fold_any_of(node, path)
        if "const" in node:
            node.setdefault("enum", [node.pop("const")])
        if node.get("default", 0) is None:
            del node["default"]
        out: JsonDict = {}
        for key, value in node.items():
            if key in _DROPPED_KEYS:
                continue
            if key == "properties":
                out[key] = {
                    name: self.convert(child, f"{path}.{name}") for name, child in value.items()
                }
            elif key == "items":
                out[key] = self.convert(value, f"{path}[]")
            elif key == "additionalProperties":
                if isinstance(value, dict) and value:
                    out[key] = self.convert(value, f"{path}{{}}")
                elif value is True or value == {}:
                    # free-form object: Kubernetes spells this preserve-unknown-fields
                    out["x-kubernetes-preserve-unknown-fields"] = True
                # False (extra="forbid") has no structural equivalent: pruning does the job
            elif key == "anyOf":
                out[key] = value  # int-or-string, already checked
            elif key == "description":
                out[key] = " ".join(str(value).split())
            elif key in _COPIED_KEYS:
                out[key] = value
            else:
                raise SchemaError(f"{path or '<root>'}: unsupported schema keyword {key!r}")
        if out.get("required") == []:
            del out["required"]
        if "type" not in out and not (
            out.get("x-kubernetes-int-or-string") or out.get("x-kubernetes-preserve-unknown-fields")
        ):
            raise SchemaError(f"{path or '<root>'}: schema node has no type")
        return out

    def _resolve(self, ref: str, path: str) -> JsonDict:
        prefix = "#/$defs/"
        if not ref.startswith(prefix) or ref[len(prefix) :] not in self._defs:
            raise SchemaError(f"{path}: cannot resolve {ref}")
        target: JsonDict = self._defs[ref[len(prefix) :]]
        return target

    @staticmethod
    def _merge(base: JsonDict, overrides: JsonDict) -> JsonDict:
        """Field-level keys win over the referenced model's, except that CEL rules of both
        apply."""
        merged = copy.deepcopy(base)
        for key, value in overrides.items():
            if key == "x-kubernetes-validations":
                merged[key] = [*merged.get(key, []), *value]
            else:
                merged[key] = value
        return merged

    def _fold_any_of(self, node: JsonDict, path: str) -> JsonDict:
        options = node.pop("anyOf")
        if node.get("x-kubernetes-int-or-string"):
            node["anyOf"] = options
            return node
        options = [option for option in options if option != _NULL]
        if len(options) == 1:
            return self._merge(self.convert(options[0], path), node)
        resolved = [self.convert(option, path) for option in options]
        if all(option.get("type") == "string" and "enum" in option for option in resolved):
            # a union of Literals is one enum
            enum: list[Any] = []
            for option in resolved:
                enum.extend(value for value in option["enum"] if value not in enum)
            return self._merge({"type": "string", "enum": enum}, node)
        raise SchemaError(
            f"{path}: unions other than Optional and int-or-string are not structural"
        )
