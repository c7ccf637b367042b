"""The record of one source image, and the stem pairing every layout reader shares.

Every data set layout (:mod:`converters.layouts`) is read into :class:`ImageRecord` s, so
the writers, the split and every package downstream see one shape whatever the tree
looked like.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError
from common.folders import check_one_line_names
from common.image_files import IMAGE_SUFFIXES, is_image_file
from common.io import link_loop_text

GOOD = "good"
MASK_SUFFIX = "_mask"
#: Defect name of images without ground truth (MVTec AD 2's ``test_private*``): never good.
UNLABELLED = "unlabelled"
#: What ``layout_split`` may say.
LAYOUT_SPLITS = ("train", "val", "test")
#: Longest output stem, in UTF-8 bytes: a file name takes at most 255 (ext4, NTFS, APFS), and the
#: writers add a suffix (``.jpeg``, ``.txt``) and tiling ``_x<left>_y<top>`` to it.
MAX_STEM_BYTES = 200
_STEM_HASH_DIGITS = 12


@dataclass(frozen=True)
class ImageRecord:
    """One source image of a category.

    Attributes:
        image: path of the image file.
        category: category name (``metal_nut``).
        subset: the layout's folder it came from (``train``, ``test``, ``validation``,
            ``test_public``, ...).
        defect: defect type, ``good`` for defect-free images, ``unlabelled`` for
            images without ground truth.
        mask: path of the ground-truth mask (the first one where there are several),
            None for good and unlabelled images.
        layout: name of the layout that read it (:data:`converters.layouts.LAYOUTS`).
        masks: every mask file of the image where it has one per defect region (MVTec
            LOCO): each file is one instance when converted, and the files are merged into
            one value-coded mask where a mask is read; empty means just ``mask``.
        value_names: ``(pixel value, class name)`` pairs of a value map that came with
            the data (LOCO's ``defects_config.json``, a 3D-AD ``class_ids.json``);
            empty means the class is the defect folder.
        value_map: the file ``value_names`` was read from, named when a mask holds a value it lacks.
        unlabelled: an image without ground truth, neither good nor defect.
        layout_split: ``train``, ``val`` or ``test`` as the layout itself places the
            image (its folders or split file), None where it says nothing.
        empty_mask_is_good: the layout marks good images by an all-zero mask (KolektorSDD,
            SDD2): ``defect`` holds until the mask is read.
        mask_missing: a defect image (its folder says so) without a ground-truth mask, read only where
            the scan was asked to keep such images (``scan_category(..., allow_missing_masks=True)``: the
            anomaly package, whose fit needs no mask); ``mask`` is None.
    """

    image: Path
    category: str
    subset: str
    defect: str
    mask: Path | None = None
    layout: str = "mvtec_ad"
    masks: tuple[Path, ...] = ()
    value_names: tuple[tuple[int, str], ...] = ()
    value_map: Path | None = None
    unlabelled: bool = False
    layout_split: str | None = None
    empty_mask_is_good: bool = False
    mask_missing: bool = False

    @property
    def is_good(self) -> bool:
        return self.defect == GOOD

    @property
    def mask_files(self) -> tuple[Path, ...]:
        """Every mask file of the image: ``masks``, else ``(mask,)``, else ``()``."""
        if self.masks:
            return self.masks
        return (self.mask,) if self.mask is not None else ()

    @property
    def key(self) -> str:
        """Stable id used in ``splits.json``: ``category/subset/defect/stem``."""
        return f"{self.category}/{self.subset}/{self.defect}/{self.image.stem}"

    @property
    def output_stem(self) -> str:
        """File stem in the converted data set: ``category_subset_defect_stem`` (:func:`output_stem`).

        Unique across categories and subsets, but not by construction: names that hold
        underscores can join to the same stem, which :func:`converters.mvtec.check_output_stems`
        refuses.
        """
        return output_stem(self.key)


def output_stem(key: str) -> str:
    """The file stem every writer gives the image of ``key`` (``category/subset/defect/stem``).

    The key with ``/`` as ``_``, cut to :data:`MAX_STEM_BYTES` where it is longer: its first and last
    bytes (at character boundaries: the category and the photo's own name stay readable) around the
    first 12 hex digits of the sha256 of the whole name, so two long names that differ anywhere stay
    two files, and a rerun names them alike. A category, a defect folder and a photo name of up to 255
    bytes each joined to more than a file system takes (``File name too long``: the annotation page's
    export of long photo names).

    >>> output_stem("nut/test/crack/000")
    'nut_test_crack_000'
    >>> stem = output_stem("nut/test/crack/" + "x" * 300 + "_001")
    >>> len(stem.encode()), stem[:15], stem.endswith("x_001")
    (200, 'nut_test_crack_', True)
    """
    name = key.replace("/", "_")
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) <= MAX_STEM_BYTES:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:_STEM_HASH_DIGITS]
    kept = MAX_STEM_BYTES - _STEM_HASH_DIGITS - 2  # two '-' around the digest
    # a character cut in two is dropped
    head = encoded[: kept // 2].decode("utf-8", "ignore")
    tail = encoded[len(encoded) - (kept - kept // 2) :].decode("utf-8", "ignore")
    return f"{head}-{digest}-{tail}"


def stem_key(stem: str) -> str:
    """``stem`` in Unicode's composed form (NFC), the key images and masks pair by.

    macOS writes ``é`` as ``e`` + a combining accent (NFD) where Windows and Linux tools write one
    character: ``é000.png`` and ``é000_mask.png`` looked alike and did not pair.
    """
    return unicodedata.normalize("NFC", stem)


def _encoded_apart(first: Path, second: Path) -> str:
    """Where two files of one stem (:func:`stem_key`) have names that differ only in how an accent is
    encoded (``é`` as one character, and as ``e`` and a combining accent: macOS's), a hint saying so: the
    error named them as one name twice; else ""."""
    if first.name == second.name or stem_key(first.name) != stem_key(second.name):
        return ""
    return (
        " (one name in two encodings of its accents, composed and decomposed as macOS writes them: keep one)"
    )


def images_by_stem(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` by stem (:func:`stem_key`), sorted; two images with one stem are an error."""
    images: dict[str, Path] = {}
    if not folder.is_dir():
        return images
    for path in sorted(folder.iterdir()):
        if not is_image_file(path):
            continue
        check_one_line_names(path, below=folder)  # its name; the folders above: scan_category
        stem = stem_key(path.stem)
        if stem in images:
            twins = _encoded_apart(images[stem], path)
            raise UserError(f"two images share the stem '{stem}': {images[stem]} and {path}{twins}")
        images[stem] = path
    return images


def masks_by_stem(folder: Path, suffix: str = MASK_SUFFIX) -> dict[str, Path]:
    """Mask files of a ground-truth folder by image stem (``000_mask.png`` -> ``000``; :func:`stem_key`).

    A file without ``suffix`` pairs by its own stem (BTAD, 3D-AD name masks like images).
    """
    masks: dict[str, Path] = {}
    if not folder.is_dir():
        return masks
    for path in sorted(folder.iterdir()):
        if is_image_file(path):
            check_one_line_names(path, below=folder)  # its name; the folders above: scan_category
            stem = stem_key(path.stem[: -len(suffix)] if suffix and path.stem.endswith(suffix) else path.stem)
            if stem in masks:
                twins = _encoded_apart(masks[stem], path)
                raise UserError(f"two masks for one stem '{stem}': {masks[stem]} and {path}{twins}")
            masks[stem] = path
    return masks


def case_twin(path: Path) -> Path | None:
    """The file or folder that ``path`` names but for letter case, where ``path`` itself is missing.

    Masks copied from a case-insensitive file system (Windows, macOS) keep names such as
    ``000_MASK.png`` or ``ground_truth/Crack/``, which Linux does not pair with ``000.png`` of
    ``test/crack/``: naming the twin says what to rename. The first twin of a missing folder is named.
    """
    parent = path.parent
    if path.exists() or parent == path:
        return None
    if not parent.is_dir():
        return case_twin(parent)
    wanted = _folded(path.name)
    # the very name is no twin: a link loop or a broken link of that name, which does not exist either
    twins = (entry for entry in sorted(parent.iterdir()) if _folded(entry.name) == wanted)
    return next((entry for entry in twins if entry.name != path.name), None)


def _folded(name: str) -> str:
    """``name`` in NFC, case folded: ``fläck`` with one ``ä`` and with ``a`` and a combining mark (as macOS
    writes names) print alike, and were "no mask (expected .../fläck/000_mask.png)" beside it."""
    return unicodedata.normalize("NFC", name).casefold()


def twin_difference(twin: Path, path: Path) -> str:
    """How :func:`case_twin`'s ``twin`` of ``path`` differs from the name asked for: ``differs in case``,
    or, where the letters are the same, ``is coded in another Unicode form (NFD, not NFC)``."""
    asked = path.parts[len(twin.parts) - 1] if len(twin.parts) <= len(path.parts) else path.name
    if unicodedata.normalize("NFC", twin.name) != unicodedata.normalize("NFC", asked):
        return "differs in case"
    return f"is coded in another Unicode form ({unicode_form(twin.name)}, not {unicode_form(asked)})"


def unicode_form(name: str) -> str:
    """``NFC``, ``NFD`` or ``mixed``: how ``name``'s accented letters are coded."""
    return next((form for form in ("NFC", "NFD") if unicodedata.is_normalized(form, name)), "mixed")


def photo_folder_text(image_dir: Path, stem: str) -> str | None:
    """Where a mask of ``stem`` (:func:`stem_key`) has no photo in ``image_dir`` because a folder stands in
    the photo's place (``test/crack/000.png/``), "<folder> is a folder, not a photo"; None otherwise.
    "mask has no image (expected .../000.<ext>)" asked for what looked to be there."""
    if not image_dir.is_dir():
        return None
    for path in sorted(image_dir.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and stem_key(path.stem) == stem and path.is_dir():
            return f"{path} is a folder, not a photo"
    return None


def pair_by_stem(
    images: dict[str, Path],
    masks: dict[str, Path],
    *,
    mask_dir: Path,
    image_dir: Path,
    suffix: str = MASK_SUFFIX,
    mask_ext: str = ".png",
    masks_optional: bool = False,
) -> list[tuple[Path, Path | None]]:
    """``(image, mask)`` pairs; an image without a mask or a mask without an image is an error.

    Args:
        images: image files by stem (:func:`images_by_stem`).
        masks: mask files by stem (:func:`masks_by_stem`); consumed.
        mask_dir: where the masks were looked for (named in the error).
        image_dir: where the images were looked for (named in the error).
        suffix: mask name suffix, for the expected name in the error.
        mask_ext: the masks' file suffix, likewise (``.bmp`` in KolektorSDD), where ``masks`` do not
            share one of their own (BTAD's product 03 keeps ``.bmp`` masks, 01 and 02 ``.png``).
        masks_optional: an image without a mask pairs with None instead (a mask without an image
            stays an error: it names a photo that is not there).
    """
    mask_ext = shared_suffix(masks.values()) or mask_ext
    unpaired = _unpaired(images, masks, same_folder=mask_dir == image_dir)  # before ``masks`` is consumed
    pairs: list[tuple[Path, Path | None]] = []
    for stem, path in images.items():
        if stem not in masks and masks_optional:
            pairs.append((path, None))
            continue
        if stem not in masks and stem.lower().endswith(MASK_SUFFIX):
            # 00_mask.png beside 00.jpg: the folder layout, which reads 00_mask.png as 00's mask, named that
            # very file as the one expected
            raise UserError(
                f"defect image has no mask: {path}, whose name ends in {MASK_SUFFIX}: a mask put among the "
                f"images? (masks go in {mask_dir})"
            )
        if stem not in masks and mask_dir == image_dir and (word := _MASK_WORD.search(stem)):
            if (base := stem[: word.start()]) in images:  # Kolektor's 0-GT.png beside 0.png: read as a photo
                raise UserError(
                    f"{path} is read as a photo, but is named like the mask of {images[base].name}: "
                    f"rename it {base}{suffix}{mask_ext}"
                )
        if stem not in masks:
            expected = mask_dir / f"{stem}{suffix}{mask_ext}"
            raise _no_mask(path, stem, expected, masks, images, unpaired=unpaired)
        pairs.append((path, masks.pop(stem)))
    if masks:
        stem, orphan = next(iter(masks.items()))
        more = f" (and {len(masks) - 1} more)" if len(masks) > 1 else ""
        why = photo_folder_text(image_dir, stem) or f"expected {image_dir / stem}.<ext>"
        raise UserError(f"mask has no image: {orphan} ({why}){more}")
    return pairs


def _unpaired(images: dict[str, Path], masks: dict[str, Path], *, same_folder: bool) -> set[str]:
    """The stems of ``images`` without a mask among ``masks``, for "(and N more)": not an "image" named as a
    mask (``0_GT_1.png`` among Kolektor's photos, ``00_mask.png`` among the images), which the error names
    as the likely mask instead."""
    return {
        stem
        for stem in images
        if stem not in masks
        and not stem.lower().endswith(MASK_SUFFIX)
        and not (same_folder and _MASK_WORD.search(stem))
    }


def _no_mask(
    image: Path,
    stem: str,
    expected: Path,
    masks: dict[str, Path],
    images: dict[str, Path],
    *,
    unpaired: set[str],
) -> UserError:
    """The error for a defect ``image`` (key ``stem``) whose mask ``expected`` is missing, with how many
    more of the ``unpaired`` images have none, as a mask without an image is told.

    A folder of the mask's name (``ground_truth/colour/99_mask.png/``) is named as one:
    "expected .../99_mask.png" asked for what was there.
    """
    more = f" (and {len(others)} more)" if (others := unpaired - {stem}) else ""
    if expected.is_dir():
        return UserError(f"defect image has no mask: {image} ({expected} is a folder, not a mask file){more}")
    if loop := link_loop_text(expected):  # the mask or its folder a link loop: it was 'found <itself>'
        return UserError(f"defect image has no mask: {image} ({loop}){more}")
    hint = _misnamed(stem, expected, masks, images)
    return UserError(f"defect image has no mask: {image} (expected {expected}{hint}){more}")


def shared_suffix(paths: Iterable[Path]) -> str | None:
    """The file suffix all ``paths`` have, in its own case (``.bmp``); None for none or several."""
    suffixes = {path.suffix for path in paths}
    return suffixes.pop() if len(suffixes) == 1 else None


#: A stem's ending that names a mask (``-GT``, `` mask``, ``_label_1``), for :func:`_misnamed`.
_MASK_WORD = re.compile(r"[-_ ](mask|gt|label)([-_ ]?\d+)?$", re.IGNORECASE)


def _misnamed(stem: str, expected: Path, masks: dict[str, Path], images: dict[str, Path]) -> str:
    """Where image ``stem``'s mask ``expected`` is missing, a hint naming the file that is likely it under
    another name: the same in another case (``000_MASK.png``), one of ``masks`` whose stem is ``stem``
    and a suffix of its own (``000-mask.png``, ``000_gt.png``) that pairs with no image, or, where masks
    lie among the images (Kolektor's flat folders), an "image" named so (``0-GT.png``); "" where none is.
    """
    if twin := case_twin(expected):
        return f"; found {twin}, whose name {twin_difference(twin, expected)}: rename it"
    maskish = {key: path for key, path in images.items() if _MASK_WORD.search(key)}
    for key, mask in (*masks.items(), *maskish.items()):
        if (
            key.startswith(stem)
            and len(key) > len(stem)
            and not key[len(stem)].isalnum()
            and (key not in images or key in maskish)
        ):
            return f"; found {mask.name}: rename it {expected.name}"
    return ""


#: The folder a zip made on macOS unpacks beside its content elsewhere: ``._`` resource forks mirroring
#: the tree (``__MACOSX/widget/test/crack/._000.png``), no data.
MACOS_ZIP_FOLDER = "__MACOSX"


def is_skipped_folder(name: str) -> bool:
    """A folder name no data is read from: hidden (``.ipynb_checkpoints``, ``.Trash-1000``) or
    :data:`MACOS_ZIP_FOLDER`, which looked like a data set of categories beside the real one."""
    return name.startswith(".") or name == MACOS_ZIP_FOLDER


def _is_folder(entry: os.DirEntry) -> bool:
    """``entry.is_dir()``, False for a link loop (:func:`common.io.link_loop`), which leads to no folder, as a
    broken link does, and is passed over as the photo listing passes it (``os.walk``): a stray ``loop ->
    loop`` beside a category stopped every scan of its parent (``anomaly.train --root data/widget``)."""
    try:
        return entry.is_dir()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return False
        raise


def _is_file(entry: os.DirEntry) -> bool:
    """``entry.is_file()``, False for a link loop, as :func:`_is_folder`."""
    try:
        return entry.is_file()
    except OSError as error:
        if error.errno == errno.ELOOP:
            return False
        raise


def subfolders(folder: Path) -> list[Path]:
    """Sorted subfolders of ``folder`` (none when it is absent), less :func:`is_skipped_folder` ones; a link
    loop in it is no folder (:func:`_is_folder`)."""
    if not folder.is_dir():
        return []
    return sorted(
        Path(entry.path)
        for entry in os.scandir(folder)
        if _is_folder(entry) and not is_skipped_folder(entry.name)
    )


def has_subfolder(folder: Path) -> bool:
    """``folder`` holds at least one folder, skipped ones out as in :func:`subfolders`; stops at the first."""
    try:
        with os.scandir(folder) as entries:
            return any(_is_folder(entry) and not is_skipped_folder(entry.name) for entry in entries)
    except OSError:
        return False


def has_file_ending(folder: Path, ending: str) -> bool:
    """``folder`` holds a file whose name ends with ``ending`` (case-insensitive)."""
    ending = ending.lower()
    try:
        with os.scandir(folder) as entries:
            return any(entry.name.lower().endswith(ending) and _is_file(entry) for entry in entries)
    except OSError:
        return False
