"""Kubernetes I/O for the operator: server-side apply, pruning, status and events."""
