"""TradingBot: the work-queue controller (controller.py), one reconcile pass
(reconcile.py, reading inputs.py), deletion (finalize.py) and the status aggregation
(status.py)."""
