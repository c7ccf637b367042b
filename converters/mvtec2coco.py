"""``python -m converters.mvtec2coco``: any MVTec-family layout to COCO instances (``--yolo`` adds YOLO)."""

from __future__ import annotations

from common.cli import command_name
from converters.cli import run


def main(argv: list[str] | None = None) -> int:
    return run(argv, prog=command_name("converters.mvtec2coco"), primary="coco")


if __name__ == "__main__":
    raise SystemExit(main())
