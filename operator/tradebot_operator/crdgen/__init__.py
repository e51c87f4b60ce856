"""CRD generator: ``python -m tradebot_operator.crdgen [--out crds/] [--chart DIR] [--check]``.

The CRDs are generated from the pydantic models in tradebot_operator.api, never edited by
hand; ``--check`` fails (with a diff) when the committed files drift from the models.
"""

from tradebot_operator.crdgen.crd import build_crd, build_crds, openapi_schema
from tradebot_operator.crdgen.render import (
    diff_files,
    file_name,
    render_chart,
    render_plain,
    rendered_files,
    to_yaml,
    write_files,
)
from tradebot_operator.crdgen.structural import SchemaError, to_structural

__all__ = [
    "SchemaError",
    "build_crd",
    "build_crds",
    "diff_files",
    "file_name",
    "openapi_schema",
    "render_chart",
    "render_plain",
    "rendered_files",
    "to_structural",
    "to_yaml",
    "write_files",
]
