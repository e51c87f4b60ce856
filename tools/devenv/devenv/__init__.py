"""devenv — start the tradebot system locally, one small module per service.

Used by `make demo` (``python -m devenv demo``) and by the end-to-end test fixtures, so
the demo and the tests run the very same code. Every ``running(...)`` is a context manager
that starts one service, waits until it answers, yields a small handle and stops the
service (and every process it started) on exit. A service that cannot start raises
DevenvError with the reason and the command that fixes it.
"""

from devenv.procs import DevenvError

__all__ = ["DevenvError"]
