"""Error responses exactly as kube-apiserver sends them, for tests of how the operator
reports them."""

from __future__ import annotations

# kube-apiserver v1.34's answer (HTTP 422) to a server-side apply of a ConfigMap over 1 MiB,
# byte for byte.
TOO_LONG = (
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
    b'"ConfigMap \\"btc-paper-e8909ee7\\" is invalid: []: Too long: may not be more than '
    b'1048576 bytes","reason":"Invalid","details":{"name":"btc-paper-e8909ee7","kind":'
    b'"ConfigMap","causes":[{"reason":"FieldValueTooLong","message":"Too long: may not be '
    b'more than 1048576 bytes","field":"[]"}]},"code":422}\n'
)
TOO_LONG_MESSAGE = (
    'ConfigMap "btc-paper-e8909ee7" is invalid: []: Too long: may not be more than 1048576 bytes'
)
"""The Status body's ``message``."""
