"""``python -m converters.validate datasets/metal_nut_yolo``: the command line of
:func:`converters.validation.validate`, which checks a converted data set with the tools that will
consume it (ultralytics for YOLO, pycocotools for COCO).
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.cli import OneLineParser, command_name, exit_code, user_path
from converters.validation import SplitCheck, format_checks, split_record_note, validate


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: 0 when every check passes, 1 when one fails, 2 for bad input."""
    parser = OneLineParser(
        prog=command_name("converters.validate"),
        description="Check a converted data set with ultralytics (YOLO) and pycocotools (COCO).",
    )
    parser.add_argument(
        "folder", type=user_path, help="data set folder written by mvtec2yolo / mvtec2coco, or its data.yaml"
    )
    parser.add_argument(
        "--task",
        choices=("detect", "segment"),
        help="what the YOLO set is trained for (default: segment where a label file is one of polygons, "
        "as ultralytics reads it)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    checked: dict[Path, dict[str, dict[str, SplitCheck]]] = {}

    def work() -> None:
        args = parser.parse_args(argv)
        checked[args.folder] = validate(args.folder, task=args.task, progress=not args.no_progress)

    code = exit_code(work)
    if code:
        return code
    [(folder, results)] = checked.items()
    print(format_checks(results))
    if note := split_record_note(folder):
        print(f"note: {note}", file=sys.stderr)
    failed = sum(bool(check.problems) for checks in results.values() for check in checks.values())
    if failed:
        print(f"error: {failed} check(s) failed for {folder}: see the status column", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
