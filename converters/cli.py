"""The flags shared by ``mvtec2yolo`` and ``mvtec2coco``, and the run-and-report wrapper."""

from __future__ import annotations

import argparse
import sys

from common.cli import DefaultsHelpFormatter, OneLineParser, exit_code, user_path
from common.errors import UserError
from converters.coco import SEGMENTATION_MODES
from converters.convert import LINK_MODES, TASKS, ConvertConfig, convert, format_report
from converters.layouts import LAYOUTS


def build_parser(prog: str, *, primary: str) -> argparse.ArgumentParser:
    """Parser for a converter whose main format is ``primary`` (``yolo`` or ``coco``).

    A bad flag (``--layout mvtec``) is one ``error:`` line and exit 2, like any bad input.
    """
    parser = OneLineParser(
        prog=prog,
        description=f"Convert the ground-truth masks of an MVTec-family data set (MVTec AD, AD 2, 3D-AD, "
        f"LOCO, VisA, BTAD, KolektorSDD, Kolektor SDD2 or a plain folder; layout detected per category) to a "
        f"{primary.upper()} data set (one seeded, stratified train/val/test split shared by all formats).",
        formatter_class=DefaultsHelpFormatter,
        allow_abbrev=False,  # `mvtec2coco --coco` was taken for --coco-segmentation ("expected one argument")
    )
    _add_input_output_flags(parser, other="coco" if primary == "yolo" else "yolo")
    _add_format_flags(parser)
    _add_class_flags(parser)
    _add_split_flags(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _add_input_output_flags(parser: argparse.ArgumentParser, *, other: str) -> None:
    """The ``input and output`` group: what is read, where it goes, and ``--{other}``."""
    io = parser.add_argument_group("input and output")
    io.add_argument(
        "--root", type=user_path, help="folder of categories, or one category folder (not with --images)"
    )
    io.add_argument(
        "--layout",
        choices=list(LAYOUTS),
        help="read every category as this layout; unset: detected per category",
    )
    io.add_argument(
        "--images", type=user_path, help="folder layout: a folder of defect images (instead of --root)"
    )
    io.add_argument(
        "--masks", type=user_path, help="folder layout: their masks, <stem>.png or <stem>_mask.png"
    )
    io.add_argument("--good", type=user_path, help="folder layout: a folder of good images")
    io.add_argument(
        "--category",
        nargs="+",
        action="extend",  # --category a --category b is both, not b alone
        default=[],
        help="categories to convert; empty = all under --root. With --images: the one category's name "
        "(default: the name of the folder holding --images)",
    )
    io.add_argument("--out", type=user_path, required=True, help="data set folder to write")
    io.add_argument(
        f"--{other}", action="store_true", help=f"also write {other.upper()} into the same folder"
    )
    io.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    io.add_argument("--link", choices=LINK_MODES, default="symlink", help="how images are placed in images/")


def _add_format_flags(parser: argparse.ArgumentParser) -> None:
    """The ``formats`` group: the shape of the YOLO labels and the COCO segmentations."""
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


def _add_class_flags(parser: argparse.ArgumentParser) -> None:
    """The ``classes and instances`` group: class names, left-out defects, mask values, filters."""
    cls = parser.add_argument_group("classes and instances")
    cls.add_argument("--single-class", action="store_true", help="one class 'defect' for every instance")
    cls.add_argument(
        "--names-template",
        default="{defect}",
        help="class name from {defect} {category} {defect_text} {category_text}, "
        "e.g. '{defect_text} on {category}'",
    )
    cls.add_argument(
        "--exclude-defect",
        nargs="+",
        action="extend",
        default=[],
        metavar="DEFECT",
        help="defect types (folders) to leave out, e.g. combined; not the classes a layout names by "
        "pixel value (LOCO's defects_config.json)",
    )
    cls.add_argument(
        "--mask-values", type=user_path, help='JSON mapping mask pixel values to classes, {"255": "cut"}'
    )
    cls.add_argument("--min-area", type=int, default=1, help="drop connected regions with fewer pixels")
    cls.add_argument("--strict", action="store_true", help="turn warnings (e.g. empty masks) into errors")


def _add_split_flags(parser: argparse.ArgumentParser) -> None:
    """The ``split`` group: a drawn, reused or layout-given train/val/test split."""
    split = parser.add_argument_group("split")
    split.add_argument(
        "--split",
        type=float,
        nargs=3,
        default=[0.6, 0.2, 0.2],
        metavar=("TRAIN", "VAL", "TEST"),
        help="fractions of the defect images per split (stratified by defect type); "
        "scaled to sum to 1 (3 1 1 = 0.6 0.2 0.2)",
    )
    split.add_argument(
        "--background-ratio",
        type=float,
        default=0.5,
        help="good images added per defect image in each split (capped by how many exist)",
    )
    split.add_argument("--seed", type=int, default=0, help="seed of the split")
    split.add_argument(
        "--splits", type=user_path, help="reuse this splits.json instead of drawing a new split"
    )
    split.add_argument(
        "--split-from-layout",
        action="store_true",
        help="put every image in the split its layout names (train/, validation/, test*/ folders, "
        "VisA's split_csv) instead of drawing one; all good images are used",
    )


def run(argv: list[str] | None, *, prog: str, primary: str) -> int:
    """Parses ``argv``, converts, prints the summary; bad input is one ``error:`` line and exit code 2."""
    parser = build_parser(prog, primary=primary)

    def work() -> None:
        args = parser.parse_args(argv)
        check_no_unused_flags(args, given_flags(sys.argv[1:] if argv is None else argv), primary=primary)
        print(format_report(convert(config_from_args(args, primary=primary))))

    return exit_code(work)


def given_flags(argv: list[str]) -> set[str]:
    """The ``--flags`` typed (``--seed 5`` and ``--seed=5`` alike): a default cannot tell them apart."""
    return {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}


def check_no_unused_flags(args: argparse.Namespace, given: set[str], *, primary: str) -> None:
    """Refuses a flag typed where it changes nothing; ``splits.json`` would record a ``--seed`` never used.

    Raises:
        UserError: ``--split``, ``--seed`` or ``--background-ratio`` with ``--split-from-layout`` or
            ``--splits``; ``--task`` without YOLO output; ``--coco-segmentation`` without COCO output;
            ``--names-template`` with ``--single-class``; ``--root`` with ``--images``.
    """
    if "--root" in given and args.images is not None:  # read nowhere; errors named it as the data read
        raise UserError(
            "--root does nothing with --images (the folder layout reads --images, --masks and --good); "
            "drop --root"
        )
    if "--names-template" in given and args.single_class:  # every class is 'defect' whatever the template
        raise UserError("--names-template does nothing with --single-class (one class, 'defect'); drop one")
    chosen = "--split-from-layout" if args.split_from_layout else "--splits" if args.splits else None
    for flag in ("--split", "--seed", "--background-ratio"):
        if chosen and flag in given:
            whose = "the layout's" if chosen == "--split-from-layout" else f"{args.splits}'s"
            raise UserError(f"{flag} does nothing with {chosen} (the split is {whose}); drop {flag}")
    for flag, fmt in (("--task", "yolo"), ("--coco-segmentation", "coco")):
        if flag in given and fmt != primary and not getattr(args, fmt):
            raise UserError(
                f"{flag} shapes the {fmt.upper()} output, which is not written: add --{fmt}, or drop {flag}"
            )


def config_from_args(args: argparse.Namespace, *, primary: str) -> ConvertConfig:
    """The :class:`ConvertConfig` of parsed flags.

    Raises:
        UserError: neither ``--root`` nor ``--images`` given.
    """
    if args.root is None and args.images is None:
        raise UserError("give --root (a data set folder) or --images (a folder of defect images)")
    other = "coco" if primary == "yolo" else "yolo"
    return ConvertConfig(
        root=args.root if args.root is not None else args.images.absolute().parent,
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
        layout=args.layout,
        split_from_layout=args.split_from_layout,
        images=args.images,
        masks=args.masks,
        good=args.good,
    )
