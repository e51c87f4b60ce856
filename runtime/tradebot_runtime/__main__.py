"""``python -m tradebot_runtime``: one runtime pod (one bot x one exchange account)."""

from __future__ import annotations

import asyncio
import os
import sys

from tradebot_contracts import env
from tradebot_runtime.app import main
from tradebot_runtime.logsetup import setup_logging

if __name__ == "__main__":
    setup_logging(os.environ.get(env.LOG_LEVEL, "INFO"))
    sys.exit(asyncio.run(main()))
