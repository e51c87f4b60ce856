"""Exchange I/O: endpoint overrides (endpoint.py) and the order/account client (client.py)."""
