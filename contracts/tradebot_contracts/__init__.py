"""What the operator, the runtime and the development tools agree on: the runtime config
schema, the Lease heartbeat, shared scalar types, strategy parameter models, the
environment-variable names the operator sets on pods, the client-order-id format and the
ccxt endpoint mapping.

Only the standard library and pydantic may be imported here (import-linter holds this):
both sides import this package, never each other."""

__version__ = "0.1.0"
