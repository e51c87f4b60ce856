"""``python -m devenv demo [options]`` — see devenv.demo."""

from __future__ import annotations

import sys

from devenv import demo


def run() -> None:
    argv = sys.argv[1:]
    if not argv or argv[0] != "demo":
        print("usage: python -m devenv demo [--help]", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(demo.main(argv[1:]))


if __name__ == "__main__":
    run()
