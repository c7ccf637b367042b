"""Segmentation samples from a converted data set (``annotations/instances_{split}.json``).

The converters write one COCO file per split of the shared ``splits.json``;
SAM fine-tuning and evaluation read those, so the detector and the segmenter
are trained and tested on the same images. A sample is one image with its
ground-truth instances (one per connected defect region); masks are decoded
from the annotations on demand, never held for a whole split.
"""

from __future__ import annotations

import errno
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

import numpy as np

from common.coco import coco_index
from common.errors import UserError, one_line, read_advice
from common.exif import check_upright
from common.folders import path_exists
from common.images import header_size_and_orientation, raise_unread
from common.io import link_loop_text, read_coco_instances
from converters.splits import SPLITS, is_split_record, load_splits
from segmentation.coco_checks import FIX_COCO, check_entries, check_file_name, check_ids, check_masks


@dataclass(frozen=True)
class SegmentationImage:
    """One image of a split and its ground-truth instances.

    Attributes:
        image_id: COCO image id (unique within the split).
        path: image file (``<data>/images/<file_name>``).
        width, height: image size in pixels.
        annotations: the image's COCO annotations (``segmentation`` polygons or RLE).
    """

    image_id: int
    path: Path
    width: int
    height: int
    annotations: tuple[dict, ...] = field(default_factory=tuple)

    @property
    def is_background(self) -> bool:
        return not self.annotations

    def instance_masks(self) -> np.ndarray:
        """``(N, H, W)`` bool, one mask per annotation, in annotation order."""
        from converters.masks import segmentation_to_mask  # pycocotools, only when masks are wanted

        masks = np.zeros((len(self.annotations), self.height, self.width), dtype=bool)
        for index, annotation in enumerate(self.annotations):
            masks[index] = segmentation_to_mask(annotation["segmentation"], self.height, self.width)
        return masks

    def union_mask(self) -> np.ndarray:
        """``(H, W)`` bool: every defect pixel of the image."""
        return self.instance_masks().any(axis=0)

    def boxes(self) -> np.ndarray:
        """``(N, 4)`` float xyxy pixel edges, from the COCO ``bbox`` (x, y, w, h)."""
        boxes = np.array([a["bbox"] for a in self.annotations], dtype=float).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        return boxes


@dataclass(frozen=True)
class SegmentationSplit:
    """A split's images, the category names by COCO id, and the COCO file they came from."""

    name: str
    images: list[SegmentationImage]
    categories: dict[int, str]
    annotation_file: Path
    #: Photos that are missing or whose header does not read, with their one-line errors (``load_split``'s
    #: ``keep_unread``; else it raised).
    unread: dict[Path, str] = field(default_factory=dict)
    #: The COCO file's JSON object as ``load_split`` read and checked it, every entry as written (an
    #: ``area`` too, which ``images`` hold as their mask's pixels): for a caller that copies the entries
    #: whole without reading the file again (``segmentation.folds``). Empty for a split built in memory.
    dataset: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_instances(self) -> int:
        return sum(len(image.annotations) for image in self.images)


def annotation_file(data: str | Path, split: str) -> Path:
    """``<data>/annotations/instances_<split>.json``, checked to exist."""
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}' (expected one of: {', '.join(SPLITS)})")
    path = Path(data) / "annotations" / f"instances_{split}.json"
    # one that cannot be looked for is named as such, not as missing; a link loop as one (check_data_folder)
    if not (path_exists(path) and path.is_file()):
        check_data_folder(data)
        present = annotated_splits(data)
        if present and not (Path(data) / "splits.json").is_file():  # COCO files made by hand or another tool
            raise UserError(
                f"no COCO annotations at {path}: {path.parent} holds those of {' and '.join(present)} only "
                f"(instances_<split>.json, split one of {', '.join(SPLITS)})"
            )
        raise UserError(f"no COCO annotations at {path}: {reconvert_hint(Path(data))}")
    return path


def annotated_splits(data: str | Path) -> list[str]:
    """The splits that ``<data>/annotations/instances_<split>.json`` exists for, in :data:`SPLITS` order."""
    return [split for split in SPLITS if (Path(data) / "annotations" / f"instances_{split}.json").is_file()]


def reconvert_hint(data: Path) -> str:
    """How to add the COCO files to the converted data set ``data`` without moving an image between splits.

    The command it gave, ``--out DATA --coco --overwrite`` alone, drew the split again at the default
    ``--seed`` (and boxes without ``--task segment``): a data set converted with ``--seed 3`` came back
    with another test split, holding photos a model had trained on. ``--splits`` keeps the split;
    the other flags the folder does not record.
    """
    splits = data / "splits.json"
    command = f"python -m converters.mvtec2yolo --root ... --out {shlex.quote(str(data))} --coco --overwrite"
    if not splits.is_file():
        return f"convert with `{command}` (YOLO and COCO in one folder)"
    return (
        f"convert it again, its split kept: `{command} --splits {shlex.quote(str(splits))}` with the flags "
        "that made it but --seed, --split, --background-ratio and --split-from-layout (--task segment, "
        "--names-template, ...: the folder does not record them)"
    )


def defects_step(data: str | Path, split: str) -> str | None:
    """How a data set the converters wrote gets defect instances into its ``split``, by what its
    ``splits.json`` records: fractions for a drawn split; none for a split nobody drew (the layout's own,
    ``--split-from-layout``, or a ``--splits`` file's), which ``--split`` fractions do not shape. None for
    COCO files made elsewhere (no split record of the converters'), whose file wants the annotations.
    """
    path = Path(data) / "splits.json"
    if not path.is_file() or not is_split_record(path):
        return None
    try:
        drawn = load_splits(path).drawn
    except UserError:  # a damaged record: whether it was drawn cannot be told
        return f"convert it again with more defect images in its {split} split"
    if drawn:
        return f"convert with more defect images or a larger {split} fraction (--split TRAIN VAL TEST)"
    return (
        "convert it again drawing a split (--split TRAIN VAL TEST, not --split-from-layout or --splits: "
        f"{path} records a split nobody drew), or with defect images in its {split} split"
    )


def check_data_folder(data: str | Path, *, given: str | None = None) -> None:
    """Refuses a ``--data`` that is no converted data set: a file, nothing, a folder inside a data set,
    a run folder, or a raw MVTec category tree.

    Each would otherwise be told to convert into that very path with ``--overwrite`` (a raw tree
    would be replaced by its own conversion).

    Args:
        given: how the user named it, as the message begins (``data=PATH``); ``--data PATH`` by default.

    Raises:
        UserError: one line naming ``data`` and what to pass instead.
    """
    data = Path(data)
    given = given or f"--data {data}"
    enclosing = enclosing_data_set(data)
    if data.is_file():
        raise UserError(f"{given} is a file: pass the data set folder {enclosing or data.parent}")
    if not path_exists(data):
        raise UserError(link_loop_text(data, given=given) or f"{given} does not exist")
    if enclosing is not None and not (data / "annotations").is_dir():
        raise UserError(f"{given} is a folder inside the data set {enclosing}: pass {enclosing}")
    if (data / "args.yaml").is_file() and not (data / "annotations").is_dir():
        raise UserError(
            f"{given} is a training run's folder (args.yaml), not a data set: pass the data it names"
        )
    if is_mvtec_tree(data):
        raise UserError(
            f"{given} is a raw MVTec tree, not a converted data set: convert it to another folder "
            f"with `python -m converters.mvtec2yolo --root {data} --out OTHER_FOLDER --coco` and pass that"
        )


def enclosing_data_set(path: Path) -> Path | None:
    """The converted data set that ``path`` lies in, up to three levels up, or None.

    A data set's ``images/`` looks like a raw MVTec tree and its ``annotations/`` like a data set without
    annotations: both were told to convert into themselves, and ``annotations/instances_train.json`` to
    pass ``annotations/``. A data set is a folder with ``annotations/`` beside ``data.yaml`` or
    ``splits.json``.
    """
    for folder in list(path.parents)[:3]:
        marked = (folder / "data.yaml").is_file() or (folder / "splits.json").is_file()
        if marked and (folder / "annotations").is_dir():
            return folder
    return None


def is_mvtec_tree(folder: Path) -> bool:
    """Whether ``folder`` looks like an MVTec category or a folder of them (and is no converted data set).

    A category holds ``train/`` and ``test/`` image folders, or ``ground_truth/``; a converted data set's
    ``images/`` holds split folders too, so a folder with a ``data.yaml`` or ``splits.json`` is none, nor is
    one with ``annotations/`` (a data set whose COCO files were made by hand or by another tool has neither
    mark, and was told to convert itself as a raw tree).
    """
    if (
        any((folder / name).is_file() for name in ("data.yaml", "splits.json"))
        or (folder / "annotations").is_dir()
    ):
        return False
    return _is_category(folder) or any(_is_category(child) for child in folder.iterdir() if child.is_dir())


def _is_category(folder: Path) -> bool:
    return (folder / "ground_truth").is_dir() or all((folder / name).is_dir() for name in ("train", "test"))


def load_split(data: str | Path, split: str, *, keep_unread: bool = False) -> SegmentationSplit:
    """Reads one split of a data set written by the converters (``mvtec2coco`` or ``mvtec2yolo --coco``).

    Photos that are missing or whose header does not read are named together once the split is read (one
    photo: its own line; more: the first three and how many more), not the first alone; a missing photo
    that the data set's layout explains (a broken link, a Windows path, photos beside ``annotations/``)
    stops the reading at once, its line saying how to fix them all. Any error that stops the reading (a
    COCO entry, a photo's size or EXIF tag, a mask) names the photos before it that do not read instead,
    as when the first of them stopped it; a photo is checked for being there, then its entry, then its
    header and size.

    Args:
        keep_unread: keep such photos in the split instead, their size unchecked, each named with its
            one-line error in its ``unread``: for a decode pass to name with those whose pixels do not
            decode (:func:`inspection.photos.check_photos`).

    Raises:
        UserError: no annotations for the split, unreadable JSON, or a missing or unreadable image file.
    """
    path = annotation_file(data, split)
    dataset = read_coco_instances(path)
    check_ids(dataset, source=path)
    coco = coco_index(dataset, path=path)
    categories = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    images = []
    # file name (normalised: 'test/./a.png' is 'test/a.png') -> its first image id
    listed: dict[str, int] = {}
    unread: dict[Path, str] = {}
    try:
        for image_id in sorted(coco.getImgIds()):
            info = coco.imgs[image_id]
            check_file_name(info, images=Path(data) / "images", source=path)
            if (first := listed.setdefault(os.path.normpath(info["file_name"]), image_id)) != image_id:
                # a hand-edited file: scored twice, and both got one output name ('rename one of them')
                raise UserError(
                    f"{path} lists {info.get('file_name')} twice (images {first} and {image_id}): {FIX_COCO}"
                )
            images.append(_read_image(data, coco, image_id, categories, unread, source=path))
    except UserError:
        # the photos before it that do not read are named first, as when the first one stopped the reading
        raise_unread(list(unread.items()))
        raise
    if not keep_unread:
        raise_unread(list(unread.items()))
    return SegmentationSplit(split, images, categories, path, unread, dataset)


def _read_image(
    data: str | Path,
    coco,  # pycocotools' COCO (common.coco.coco_index)
    image_id: int,
    categories: dict[int, str],
    unread: dict[Path, str],
    *,
    source: Path,
) -> SegmentationImage:
    """One image of a split, its entries, photo and masks checked in that order; a photo that is missing
    or whose header does not read goes into ``unread`` (path -> its line), its size unchecked.

    Raises:
        UserError: a bad entry (:func:`check_entries`) or mask (:func:`check_masks`), a photo of another
            size or turned (:func:`_check_size`), a missing photo the layout explains (:func:`_missing_line`).
    """
    info = coco.imgs[image_id]
    image_path = Path(data) / "images" / info["file_name"]
    # copies: check_masks sets each one's area to its mask's pixels, the file's entries kept as written
    annotations = tuple({**a} for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=None)))
    if missing := _missing_line(data, info["file_name"], source=source):
        unread[image_path] = missing  # named before a bad entry of its own (load_split)
    check_entries(info, annotations, categories, source=source)
    if not missing:
        try:
            header = header_size_and_orientation(image_path)
        except UserError as error:  # named with the others (load_split)
            unread[image_path] = str(error)
        else:
            _check_size(image_path, header, info, source=source, labelled=bool(annotations))
    check_masks(annotations, info, source=source)
    return SegmentationImage(image_id, image_path, int(info["width"]), int(info["height"]), annotations)


#: The next step for a photo two splits' COCO files list: FIX_COCO's "the file" would not say which of them.
FIX_SHARED = (
    "remove it from one of the two files (or have the tool that wrote them put it in one split; a data set "
    "the converters wrote and since edited: convert it again)"
)


def check_separate_splits(splits: Sequence[SegmentationSplit]) -> None:
    """Refuses a photo that the COCO files of two ``splits`` both list (a file edited by hand or written by
    another tool; the converters split each photo into one): trained on and scored in val, or pooled twice
    by ``--folds``, where its two copies could land on either side of a round, without a word.

    Raises:
        UserError: one line naming the photo and both files.
    """
    seen: dict[str, SegmentationSplit] = {}  # the photo's path, normalised -> the first split listing it
    for split in splits:
        for image in split.images:
            if (first := seen.setdefault(os.path.normpath(image.path), split)) is not split:
                raise UserError(
                    f"photo {image.path} is listed in both {first.annotation_file} and "
                    f"{split.annotation_file}: the {first.name} and {split.name} splits must not share a "
                    f"photo: {FIX_SHARED}"
                )


def category_difference(splits: Sequence[SegmentationSplit]) -> str | None:
    """How the categories of splits differ, e.g. ``train lists color; val and test list colour``.

    Compared as :func:`load_split` reads them, class name by id: the entries' supercategories and order
    in the COCO file are no part of a split's categories, so files that differ only in those agree.

    Returns:
        The splits grouped by what they list, each group's class names in id order (each with its id
        where two groups list the same names under other ids); None when all agree.
    """
    groups: dict[tuple[tuple[int, str], ...], list[str]] = {}  # (id, name) pairs -> the splits listing them
    for split in splits:
        groups.setdefault(tuple(sorted(split.categories.items())), []).append(split.name)
    if len(groups) < 2:
        return None
    described = [", ".join(name for _, name in pairs) or "none" for pairs in groups]
    if len(set(described)) < len(described):
        described = [", ".join(f"{name} (id {number})" for number, name in pairs) for pairs in groups]
    return "; ".join(
        f"{' and '.join(names)} list{'s' if len(names) == 1 else ''} {what}"
        for names, what in zip(groups.values(), described, strict=True)
    )


def _missing_line(data: str | Path, file_name: str, *, source: Path) -> str | None:
    """The line naming the photo ``source`` lists as ``file_name`` when it is not in the data set's
    ``images/``; None when it is there.

    Raises:
        UserError: a missing photo that the data set's layout explains, for all its photos as a rule: a
            broken link (converted with ``--link symlink``, the originals since moved), a Windows path,
            photos beside ``annotations/`` (:func:`_missing_hint`); one line with the fix.
    """
    image_path = Path(data) / "images" / file_name
    try:
        if path_exists(image_path):
            return None
    except OSError as error:  # a file_name too long for the file system, a folder that cannot be searched
        return _lookup_line(image_path, error, source=source)
    if image_path.is_symlink():  # converted with --link symlink (the default), its photo since moved
        raise UserError(
            f"image listed in {source} is a broken link: {image_path} points to "
            f"{os.readlink(image_path)}, which does not exist: put the photos back there, or "
            "convert the data set again"
        )
    if hint := _missing_hint(data, file_name):
        raise UserError(f"image listed in {source} is missing: {image_path}{hint}")
    return f"image listed in {source} is missing: {image_path}"


def _lookup_line(image_path: Path, error: OSError, *, source: Path) -> str:
    """The line naming the photo ``image_path`` (listed in ``source``) whose lookup failed with ``error``:
    :func:`~common.folders.path_exists` raises all but "no such file" (a traceback)."""
    if error.errno == errno.ENAMETOOLONG:
        return (
            f"cannot read image {image_path}: its file_name in {source} is longer than the file system "
            f"allows: {FIX_COCO}"
        )
    # a folder of the path that may not be searched (the photo itself is not opened yet)
    blocked = _unsearchable_folder(image_path) if error.errno in (errno.EACCES, errno.EPERM) else None
    advice = read_advice(error, image_path.parent)
    if blocked is not None:
        advice = f"let {blocked} be searched (chmod a+x {shlex.quote(str(blocked))})"
    return f"cannot read image {image_path}: {error.strerror or one_line(error)}: {advice}"


def _unsearchable_folder(image_path: Path) -> Path | None:
    """The outermost folder of ``image_path`` that its lookup may not search (no ``x`` permission), then of
    the path a link there points to (``--link symlink``: the original photos' folders); None when each
    may be searched. The outermost: a folder below one that may not be searched reads as one too.
    """
    target = Path(os.path.realpath(image_path))  # a link that cannot be read stays itself
    for folder in [*reversed(image_path.parents), *reversed(target.parents)]:
        if not os.access(folder, os.X_OK):
            return folder
    return None


def _missing_hint(data: str | Path, file_name: str) -> str:
    """What to say of a missing image that another tool's layout explains, else nothing: a ``file_name`` that
    is a Windows path (``test\\a.png``) naming a photo ``/`` finds, or photos beside ``annotations/``, not in
    ``images/`` (the converters' layout, which every command reads)."""
    posix = PureWindowsPath(file_name).as_posix() if "\\" in file_name else file_name
    if posix != file_name and (Path(data) / "images" / posix).is_file():
        return f" (its file_name {file_name!r} is a Windows path: write {posix!r}, as COCO's file names are)"
    if (Path(data) / posix).is_file():
        return (
            f" (it is at {Path(data) / posix}: the photos are read from {Path(data) / 'images'}, "
            "file_name relative to it: move them there)"
        )
    return ""


def _check_size(
    image_path: Path, header: tuple[int, int, int], info: dict, *, source: Path, labelled: bool
) -> None:
    """Refuses a photo whose size (its header's, as OpenCV turns it) is not its COCO entry's, and a
    ``labelled`` one (with annotations) that an EXIF orientation tag turns
    (:func:`common.exif.check_upright`).

    :func:`check_image_sizes` compares the embedded sizes, which every command has only once the whole
    split was through SAM's encoder: minutes of work before the one-line error on a CPU. A photo that
    gained an EXIF tag since it was converted (the original a symlinked split points to, re-saved by a
    phone app) is read turned while its masks are not: trained and scored on misplaced masks without a
    word when square, refused as a size mismatch otherwise; ``inspection.evaluate`` refused it.

    A background photo (no masks) that the tag turns is read turned all the same: its entry wants the size
    as read. One whose entry gives the size as stored (PIL's ``size``, what most tools write) was named
    with a size that neither ``file`` nor PIL shows and told to correct the file: the line says the tag
    turns it, and both ways on.
    """
    width, height, turn = header  # header_size_and_orientation's
    if labelled:
        check_upright(image_path, turn)
    turned = turn in (5, 6, 7, 8)  # OpenCV reads it turned
    if turned:
        width, height = height, width
    listed = (int(info["width"]), int(info["height"]))
    if (width, height) == listed:
        return
    read, fix = "", FIX_COCO
    if turned:
        read = f" as read, turned by its EXIF orientation tag ({height}x{width} as stored)"
    if turned and (height, width) == listed:
        fix = "save it upright (PIL.ImageOps.exif_transpose), or write "
        fix += f"{width}x{height}, its size as read, in the file"
    raise UserError(
        f"{image_path} is {width}x{height} px{read}, but {source} says {listed[0]}x{listed[1]}: {fix}"
    )


def check_image_sizes(
    images: Sequence[SegmentationImage], sizes: Sequence[tuple[int, int]], *, source: Path
) -> None:
    """Refuses images whose pixels disagree with the COCO file's ``width`` and ``height``.

    The masks are decoded at the COCO size and the predictions come back at the image's, so a
    mismatch would fail deep inside scoring (or train on misplaced masks).

    Args:
        images: images of one split.
        sizes: ``(H, W)`` of each, in its order (``ImageEmbedding.original_size``).
        source: the COCO file they come from, for the message.

    Raises:
        UserError: naming the first image whose size differs and the COCO file.
    """
    for image, (height, width) in zip(images, sizes, strict=True):
        if (height, width) != (image.height, image.width):
            raise UserError(
                f"{image.path} is {width}x{height} px, but {source} says "
                f"{image.width}x{image.height}: {FIX_COCO}"
            )
