"""Command line of the CRD generator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tradebot_operator.crdgen.render import diff_files, rendered_files, write_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tradebot_operator.crdgen",
        description="Generate the tradebot.io CRDs from the pydantic models.",
    )
    parser.add_argument("--out", type=Path, default=Path("crds"), help="plain YAML directory")
    parser.add_argument(
        "--chart",
        type=Path,
        default=None,
        help="also write Helm templates here (e.g. charts/tradebot/templates/crds)",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 with a diff on drift"
    )
    args = parser.parse_args(argv)

    targets = [(args.out, rendered_files())]
    if args.chart is not None:
        targets.append((args.chart, rendered_files(chart=True)))

    if args.check:
        diffs = [diff_files(directory, files) for directory, files in targets]
        drift = "".join(diffs)
        if drift:
            sys.stdout.write(drift)
            sys.stderr.write("CRDs are out of date: run `python -m tradebot_operator.crdgen`\n")
            return 1
        return 0

    for directory, files in targets:
        for path in write_files(directory, files):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
