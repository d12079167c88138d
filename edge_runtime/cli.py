"""``edge-runtime``: the device-side command (grown by the runtime issue)."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="edge-runtime",
        description="Score a live camera with an exported bundle and publish anomaly events over MQTT. "
        "(The streaming runtime arrives with the runtime issue.)",
    )


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
