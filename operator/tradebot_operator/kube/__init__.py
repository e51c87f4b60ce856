"""Kubernetes I/O and bookkeeping for the operator: the client (server-side apply, patches,
deletes), status patches and conditions, Events, the children inventory, the kopf index
views, slim bodies for the indexes and the reconcile work queue."""
