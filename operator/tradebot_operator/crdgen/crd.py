"""Build the apiextensions.k8s.io/v1 CustomResourceDefinition of each kind from its models."""

from __future__ import annotations

from typing import Any

from tradebot_operator.api.kinds import KINDS, KindInfo, PrinterColumn
from tradebot_operator.crdgen.structural import JsonDict, to_structural


def _model_schema(model: Any) -> JsonDict:
    return to_structural(model.model_json_schema(by_alias=True, mode="validation"))


def _printer_column(column: PrinterColumn) -> JsonDict:
    out: JsonDict = {
        "name": column.name,
        "type": column.type,
        "jsonPath": column.json_path,
        "description": column.description,
    }
    if column.priority:
        out["priority"] = column.priority
    if column.format:
        out["format"] = column.format
    return out


def _description(model: Any) -> str:
    return " ".join((model.__doc__ or "").split())


def openapi_schema(info: KindInfo) -> JsonDict:
    """The openAPIV3Schema of one kind."""
    return {
        "type": "object",
        "description": _description(info.resource_model),
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "Versioned schema of this representation of an object.",
            },
            "kind": {
                "type": "string",
                "description": "REST resource this object represents.",
            },
            "metadata": {"type": "object"},
            "spec": _model_schema(info.spec_model),
            "status": _model_schema(info.status_model),
        },
    }


def build_crd(info: KindInfo) -> JsonDict:
    """The CustomResourceDefinition manifest of one kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": info.crd_name},
        "spec": {
            "group": info.group,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": list(info.categories),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": info.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        _printer_column(column) for column in info.printer_columns
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema(info)},
                }
            ],
        },
    }


def build_crds() -> list[JsonDict]:
    """Every CRD of the tradebot.io group, in a stable order."""
    return [build_crd(info) for info in KINDS]
