"""Progress output: numbered steps with their duration, so a person sees what happens."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

_BOLD, _GREEN, _RED, _DIM, _RESET = "\033[1m", "\033[32m", "\033[31m", "\033[2m", "\033[0m"


class Progress:
    def __init__(self, total: int, out: TextIO = sys.stderr) -> None:
        self.total = total
        self.n = 0
        self.out = out
        self.color = out.isatty()
        self.started = time.monotonic()

    def _c(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    def say(self, text: str) -> None:
        print(self._c(_BOLD, "[demo] ") + text, file=self.out, flush=True)

    def detail(self, text: str) -> None:
        print("       " + self._c(_DIM, text), file=self.out, flush=True)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.n += 1
        head = self._c(_BOLD, f"[{self.n}/{self.total}] ")
        print(f"{head}{title} ...", file=self.out, flush=True)
        t0 = time.monotonic()
        try:
            yield
        except BaseException as exc:
            what = (
                "failed"
                if isinstance(exc, Exception) and type(exc).__name__ != "_Stop"
                else "stopped"
            )
            print("       " + self._c(_RED, f"{what} after {time.monotonic() - t0:.1f}s"),
                  file=self.out, flush=True)  # fmt: skip
            raise
        print("       " + self._c(_GREEN, f"done in {time.monotonic() - t0:.1f}s"),
              file=self.out, flush=True)  # fmt: skip

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Quiet(Progress):
    """No output (tests)."""

    def say(self, text: str) -> None:
        pass

    def detail(self, text: str) -> None:
        pass

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        yield
