"""``python -m converters.mvtec2yolo``: any MVTec-family layout to a YOLO data set (``--coco`` adds COCO)."""

from __future__ import annotations

from common.cli import command_name
from converters.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(argv, prog=command_name("converters.mvtec2yolo"), primary="yolo")


if __name__ == "__main__":
    raise SystemExit(main())
