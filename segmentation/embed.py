"""``python -m segmentation.embed``: encodes a data set's images once into the shared embedding cache.

    python -m segmentation.embed --data runs/demo/synthetic_nut --model vit_t

Training, evaluation and the annotation page then read the cache instead of
running the image encoder (about 2 s per image for MobileSAM on a CPU). Safe
to interrupt and run again: finished images are kept, only the rest is
computed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common.cli import DefaultsHelpFormatter, OneLineParser, command_name, exit_code, user_path
from common.data_sets import data_set_folder
from common.errors import UserError
from common.folders import check_not_inside, check_output_folder
from common.io import embeddings_root
from converters.splits import SPLITS
from segmentation.data import SegmentationSplit, annotated_splits, check_image_sizes, load_split
from segmentation.embeddings import EmbeddingCache, noting_interrupts
from segmentation.evaluate import resolve_device
from segmentation.models import DEFAULT_MODEL, SAM_MODELS, load_sam


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=command_name("segmentation.embed"),
        description="Cache SAM image embeddings for the images of a converted data set.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=user_path,
        required=True,
        help="data set folder with annotations/ (converters), or its data.yaml",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(SAM_MODELS), help="registry model")
    parser.add_argument(
        "--checkpoint", type=user_path, help="base weights (default: official, cached/downloaded)"
    )
    parser.add_argument(  # --splits val --splits test is both, not test alone; none given: all
        "--splits",
        nargs="+",
        action="extend",
        choices=SPLITS,
        help=f"splits to embed (default: {' '.join(SPLITS)}, those of them the data set has COCO files for)",
    )
    parser.add_argument(
        "--cache-dir",
        type=user_path,
        help="embedding cache (default: $MVTEC_FINETUNE_CACHE/embeddings if that is set, "
        "else ~/.cache/mvtec-finetune/embeddings)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--batch-size", type=int, default=4, help="images per encoder batch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> None:
    """Embeds the images of the chosen splits; inputs are checked before the model loads."""
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.cache_dir is not None:
        check_output_folder(args.cache_dir, flag="--cache-dir")
    device = resolve_device(args.device)
    data = data_set_folder(args.data)
    if args.cache_dir is not None:  # a cache in the data set is in the way of its re-conversion
        check_not_inside(args.cache_dir, data, flag="--cache-dir")
    splits = [
        load_split(data, name) for name in dict.fromkeys(args.splits or default_splits(data))
    ]  # val val: once
    for split in splits:  # "0 images: 0 were cached" said nothing of why
        if not split.images:
            print(f"note: the {split.name} split of {data} holds no image", file=sys.stderr, flush=True)
    paths = [im.path for split in splits for im in split.images]
    if not paths:  # loading (or fetching) the weights would be for nothing, the cache left untouched
        print("0 images: nothing to embed (the model was not loaded)")
        return
    sam = load_sam(args.model, args.checkpoint, device=device)
    cache = EmbeddingCache(  # filling the cache is the point: an entry it refuses is an error
        args.cache_dir or embeddings_root(),
        sam,
        model_name=args.model,
        elsewhere="pass --cache-dir <another folder>",
        required=True,
    )
    before = sum(path in cache for path in paths)
    started = time.perf_counter()
    with noting_interrupts(cache, paths):  # 'interrupted' alone: whether the encoded images were lost
        entries = cache.embed(paths, batch_size=args.batch_size, device=device, progress=not args.no_progress)
    seconds = time.perf_counter() - started
    check_split_sizes(splits, [entry.original_size for entry in entries])
    print(
        f"{len(paths)} images: {before} were cached, {len(paths) - before} encoded in {seconds:.1f} s; "
        f"cache {cache.folder}"
    )


def default_splits(data: Path) -> list[str]:
    """The splits embedded without ``--splits``: all, or those ``data`` has COCO files for, with a note.

    A data set whose COCO files were made by hand or by another tool may hold a test split alone (to score
    SAM on): it was refused for lacking ``instances_train.json``, or as a raw MVTec tree.
    """
    present = annotated_splits(data)
    if not present or len(present) == len(SPLITS) or (data / "splits.json").is_file():
        return list(SPLITS)  # load_split says what is missing (a converted data set: how to convert again)
    missing = " and ".join(f"instances_{split}.json" for split in SPLITS if split not in present)
    print(
        f"note: {data / 'annotations'} holds no {missing}: embedding {' and '.join(present)}", file=sys.stderr
    )
    return present


def check_split_sizes(splits: list[SegmentationSplit], sizes: list[tuple[int, int]]) -> None:
    """Refuses an image whose size is not its COCO file's, as training and evaluation do.

    A photo replaced by one of another size after converting was embedded without a word here and
    refused only by the next ``segmentation.train`` or ``segmentation.evaluate``.

    Args:
        splits: the embedded splits, in the order their images were embedded.
        sizes: ``(H, W)`` of every image of ``splits``, in that order.
    """
    start = 0
    for split in splits:
        end = start + len(split.images)
        check_image_sizes(split.images, sizes[start:end], source=split.annotation_file)
        start = end


def main(argv: list[str] | None = None) -> int:
    return exit_code(lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
