"""Reading MVTec AD-style category trees.

A category folder holds::

    train/good/<stem>.<ext>
    test/good/<stem>.<ext>
    test/<defect>/<stem>.<ext>
    ground_truth/<defect>/<stem>_mask.png

Images and masks are paired by stem, not extension (real sets mix JPEG
images with PNG masks). ``root`` is either a folder of categories or one
category folder itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError
from common.images import IMAGE_SUFFIXES

GOOD = "good"
MASK_SUFFIX = "_mask"


@dataclass(frozen=True)
class ImageRecord:
    """One source image of a category.

    Attributes:
        image: path of the image file.
        category: category name (``metal_nut``).
        subset: ``train`` or ``test``, the MVTec folder it came from.
        defect: defect type folder, ``good`` for defect-free images.
        mask: path of the ground-truth mask, None for good images.
    """

    image: Path
    category: str
    subset: str
    defect: str
    mask: Path | None = None

    @property
    def is_good(self) -> bool:
        return self.defect == GOOD

    @property
    def key(self) -> str:
        """Stable id used in ``splits.json``: ``category/subset/defect/stem``."""
        return f"{self.category}/{self.subset}/{self.defect}/{self.image.stem}"

    @property
    def output_stem(self) -> str:
        """File stem in the converted data set: ``category_subset_defect_stem``.

        Unique across categories and subsets, but not by construction: names that hold
        underscores can join to the same stem, which :func:`check_output_stems` refuses.
        """
        return f"{self.category}_{self.subset}_{self.defect}_{self.image.stem}"


def is_category(folder: Path) -> bool:
    """A folder is a category when it has a ``test`` (or ``train``) subfolder."""
    return (folder / "test").is_dir() or (folder / "train").is_dir()


def list_categories(root: str | Path) -> list[str]:
    """Category names under ``root``; ``[root.name]`` when ``root`` is a category itself."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"data root does not exist or is not a folder: {root}")
    if is_category(root):
        return [root.name]
    return sorted(p.name for p in root.iterdir() if p.is_dir() and is_category(p))


def category_dir(root: str | Path, category: str) -> Path:
    """Folder of ``category``: ``root/category``, or ``root`` itself when it is that category."""
    root = Path(root)
    if is_category(root) and root.name == category:
        return root
    folder = root / category
    if not (folder.is_dir() and is_category(folder)):
        known = list_categories(root)
        hint = f"; categories under it: {', '.join(known)}" if known else "; it holds no category folders"
        raise UserError(f"unknown category '{category}' in {root}{hint}")
    return folder


def _images(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` by stem; two images with one stem are an error."""
    images: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES):
            continue
        if path.stem in images:
            raise UserError(f"two images share the stem '{path.stem}': {images[path.stem]} and {path}")
        images[path.stem] = path
    return images


def scan_category(
    root: str | Path, category: str, *, exclude_defects: Iterable[str] = ()
) -> list[ImageRecord]:
    """Lists and pairs the images and masks of one category.

    Args:
        root: folder of categories, or the category folder itself.
        category: category name.
        exclude_defects: defect types to leave out (e.g. ``combined``).

    Returns:
        Records sorted by subset, defect and stem.

    Raises:
        UserError: unknown or empty category, a defect image without a
            mask, or a mask without an image.
    """
    folder = category_dir(root, category)
    excluded = set(exclude_defects)
    records: list[ImageRecord] = []
    for subset in ("train", "test"):
        subset_dir = folder / subset
        if not subset_dir.is_dir():
            continue
        for defect_dir in sorted(p for p in subset_dir.iterdir() if p.is_dir()):
            defect = defect_dir.name
            if defect in excluded:
                continue
            images = _images(defect_dir)
            if defect == GOOD:
                records += [ImageRecord(path, category, subset, defect) for path in images.values()]
                continue
            if subset == "train":
                raise UserError(f"defect folder in train/: {defect_dir} (MVTec layout keeps only train/good)")
            masks = _masks(folder / "ground_truth" / defect)
            for stem, path in images.items():
                if stem not in masks:
                    expected = folder / "ground_truth" / defect / f"{stem}{MASK_SUFFIX}.png"
                    raise UserError(f"defect image has no mask: {path} (expected {expected})")
                records.append(ImageRecord(path, category, subset, defect, masks.pop(stem)))
            if masks:
                stem, orphan = next(iter(masks.items()))
                more = f" (and {len(masks) - 1} more)" if len(masks) > 1 else ""
                raise UserError(f"mask has no image: {orphan} (expected {defect_dir / stem}.<ext>){more}")
    _check_orphan_mask_folders(folder, {r.defect for r in records}, excluded)
    if not records:
        raise UserError(f"category '{category}' has no images: {folder}")
    return records


def _masks(folder: Path) -> dict[str, Path]:
    """Mask files of a ground-truth folder by image stem (``000_mask.png`` -> ``000``)."""
    if not folder.is_dir():
        return {}
    masks: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            stem = path.stem[: -len(MASK_SUFFIX)] if path.stem.endswith(MASK_SUFFIX) else path.stem
            if stem in masks:
                raise UserError(f"two masks for one stem '{stem}': {masks[stem]} and {path}")
            masks[stem] = path
    return masks


def _check_orphan_mask_folders(folder: Path, defects: set[str], excluded: set[str]) -> None:
    """A ground-truth folder with masks but no ``test/<defect>`` folder is an error."""
    truth = folder / "ground_truth"
    if not truth.is_dir():
        return
    for defect_dir in sorted(p for p in truth.iterdir() if p.is_dir()):
        if defect_dir.name in defects or defect_dir.name in excluded:
            continue
        masks = _masks(defect_dir)
        if masks:
            orphan = next(iter(masks.values()))
            raise UserError(f"mask has no image: {orphan} (no folder {folder / 'test' / defect_dir.name})")


def check_output_stems(records: Iterable[ImageRecord]) -> None:
    """Refuses two records that would be written under one file name in the data set.

    ``test/a_b/c.png`` and ``test/a/b_c.png`` both become ``<category>_test_a_b_c``: one
    image would silently replace the other. Names are compared ignoring case, as a
    case-insensitive file system (macOS, Windows) would.

    Raises:
        UserError: naming both source images.
    """
    seen: dict[str, ImageRecord] = {}
    for record in records:
        name = record.output_stem.casefold()
        if name in seen:
            raise UserError(
                f"two images map to one output name '{record.output_stem}': {seen[name].image} and "
                f"{record.image} (rename one of them)"
            )
        seen[name] = record


def scan(
    root: str | Path, categories: Sequence[str] | None = None, *, exclude_defects: Iterable[str] = ()
) -> list[ImageRecord]:
    """Records of several categories (all under ``root`` when ``categories`` is None or empty)."""
    names = list(categories) if categories else list_categories(root)
    if not names:
        raise UserError(f"no category folders (with test/ or train/) under {root}")
    excluded = tuple(exclude_defects)
    records: list[ImageRecord] = []
    for name in names:
        records += scan_category(root, name, exclude_defects=excluded)
    return records
