"""The flags shared by ``mvtec2yolo`` and ``mvtec2coco``, and the run-and-report wrapper."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import exit_code
from converters.coco import SEGMENTATION_MODES
from converters.convert import LINK_MODES, TASKS, ConvertConfig, convert, format_report


def build_parser(prog: str, *, primary: str) -> argparse.ArgumentParser:
    """Parser for a converter whose main format is ``primary`` (``yolo`` or ``coco``)."""
    other = "coco" if primary == "yolo" else "yolo"
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Convert MVTec AD-style ground-truth masks to a {primary.upper()} data set "
        "(one seeded, stratified train/val/test split shared by all formats).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    io = parser.add_argument_group("input and output")
    io.add_argument("--root", type=Path, required=True, help="folder of categories, or one category folder")
    io.add_argument(
        "--category", nargs="+", default=[], help="categories to convert; empty = all under --root"
    )
    io.add_argument("--out", type=Path, required=True, help="data set folder to write")
    io.add_argument(
        f"--{other}", action="store_true", help=f"also write {other.upper()} into the same folder"
    )
    io.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    io.add_argument("--link", choices=LINK_MODES, default="symlink", help="how images are placed in images/")
    fmt = parser.add_argument_group("formats")
    fmt.add_argument(
        "--task", choices=TASKS, default="detect", help="YOLO labels: boxes or polygons (YOLO-seg)"
    )
    fmt.add_argument(
        "--coco-segmentation",
        choices=SEGMENTATION_MODES,
        default="polygon",
        help="COCO segmentation; polygon mode uses RLE for masks with holes",
    )
    cls = parser.add_argument_group("classes and instances")
    cls.add_argument("--single-class", action="store_true", help="one class 'defect' for every instance")
    cls.add_argument(
        "--names-template",
        default="{defect}",
        help="class name from {defect} {category} {defect_text} {category_text}, "
        "e.g. '{defect_text} on {category}'",
    )
    cls.add_argument(
        "--exclude-defect", nargs="+", default=[], metavar="DEFECT", help="defect types to leave out"
    )
    cls.add_argument(
        "--mask-values", type=Path, help='JSON mapping mask pixel values to classes, {"255": "cut"}'
    )
    cls.add_argument("--min-area", type=int, default=1, help="drop connected regions with fewer pixels")
    cls.add_argument("--strict", action="store_true", help="turn warnings (e.g. empty masks) into errors")
    split = parser.add_argument_group("split")
    split.add_argument(
        "--split",
        type=float,
        nargs=3,
        default=[0.6, 0.2, 0.2],
        metavar=("TRAIN", "VAL", "TEST"),
        help="fractions of the defect images per split (stratified by defect type)",
    )
    split.add_argument(
        "--background-ratio",
        type=float,
        default=0.5,
        help="good images added per defect image in each split (capped by how many exist)",
    )
    split.add_argument("--seed", type=int, default=0, help="seed of the split")
    split.add_argument("--splits", type=Path, help="reuse this splits.json instead of drawing a new split")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def run(argv: list[str] | None, *, prog: str, primary: str) -> int:
    """Parses ``argv``, converts, prints the summary; bad input is one ``error:`` line and exit code 2."""
    args = build_parser(prog, primary=primary).parse_args(argv)
    other = "coco" if primary == "yolo" else "yolo"
    config = ConvertConfig(
        root=args.root,
        out=args.out,
        categories=tuple(args.category),
        formats=(primary, other) if getattr(args, other) else (primary,),
        task=args.task,
        coco_segmentation=args.coco_segmentation,
        min_area=args.min_area,
        mask_values=args.mask_values,
        single_class=args.single_class,
        names_template=args.names_template,
        exclude_defects=tuple(args.exclude_defect),
        ratios=tuple(args.split),
        background_ratio=args.background_ratio,
        seed=args.seed,
        splits_file=args.splits,
        link=args.link,
        overwrite=args.overwrite,
        strict=args.strict,
        progress=not args.no_progress,
    )
    return exit_code(lambda: print(format_report(convert(config))))
