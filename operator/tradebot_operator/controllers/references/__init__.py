"""Strategy and ExchangeAccount: their status (status.py: validity, CredentialsReady,
usedBy) and the pass that writes it, posts events and wakes the bots using them
(reconcile.py)."""
