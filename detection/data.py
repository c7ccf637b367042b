"""What detection needs to know about a converted data set: class names, categories, split images, labels.

The converters write ``data.yaml`` (``path``, ``train``, ``val``, ``test``,
``names``) and, beside it, ``splits.json`` whose record keys are
``category/subset/defect/stem``; the categories come from those keys. Split
entries and label files follow ultralytics' conventions (a folder, a ``.txt``
list of images or a list of either; ``images/`` -> ``labels/``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from shlex import quote

from common.config import read_yaml
from common.errors import UserError, few, one_line
from common.io import expand_user, link_loop_text
from converters.splits import SPLITS, load_splits
from converters.yolo import DATA_YAML_HEADER, check_data_root


def read_data_yaml(path: str | Path) -> dict:
    """The mapping in a YOLO ``data.yaml``; a one-line :class:`UserError` if it is not one."""
    path = Path(path)
    if path.is_dir():
        inside = path / "data.yaml"
        hint = f"pass {inside}" if inside.is_file() else "it holds no data.yaml; pass the one"
        raise UserError(f"data file {path} is a folder: {hint} (written by converters.mvtec2yolo)")
    if not path.is_file():
        raise UserError(
            link_loop_text(path, what="data file")
            or f"data file not found: {path} (a data.yaml written by converters.mvtec2yolo)"
        )
    data = read_yaml(path, what="data file")
    if path.suffix.lower() == ".json" and "names" not in data and "nc" not in data:
        raise UserError(_json_data_file_text(path, data))  # it said 'has no class names ('names:')'
    return data


def _json_data_file_text(path: Path, data: Mapping) -> str:
    """The line refusing a JSON file without classes as the data file (the converters' COCO file or
    ``splits.json``), naming the ``data.yaml`` beside it or one folder up where there is one."""
    kind = "a COCO annotation file" if "images" in data and "annotations" in data else "a JSON file"
    near = [
        folder / "data.yaml"
        for folder in (path.parent, path.parent.parent)
        if (folder / "data.yaml").is_file()
    ]
    advice = f"pass {near[0]}" if near else "pass the data.yaml written by converters.mvtec2yolo"
    return f"data file {path} is {kind}, not a YOLO data.yaml: {advice}"


def data_names(path: str | Path) -> list[str]:
    """Class names of a ``data.yaml`` in id order (``names`` as a list or an ``{id: name}`` mapping).

    Raises:
        UserError: no names; a mapping whose keys are not class ids (``{colour: 0}``, a ``ValueError``
            traceback) or not the ids 0 to n-1 (``{0: a, 2: b}``: read as classes 0 and 1 here, refused by
            ultralytics' trainer with a traceback after the run folder was made); an ``nc:`` that is not
            their count, which ultralytics refuses likewise; a class without a name (``''``, ``null``,
            which became ``'None'``) or a name given to two classes (one name, one image-level call).
    """
    data = read_data_yaml(path)
    names = data.get("names")
    if names is None and data.get("nc") is not None:  # a class count alone, which stock 'yolo train' takes
        return _numbered_names(data["nc"], path)
    if isinstance(names, Mapping):
        try:
            keys = sorted(names, key=int)
        except (TypeError, ValueError):
            raise UserError(
                f"data file {path}: the keys of 'names:' must be class ids (0: name, 1: name, ...), got "
                f"{list(names)[:3]}"
            ) from None
        if [int(key) for key in keys] != list(range(len(keys))):
            raise UserError(
                f"data file {path}: the class ids of 'names:' must be 0 to {len(keys) - 1}, one each, got "
                f"{few(keys, 8)}"
            )
        names = [names[key] for key in keys]
    if names is not None and not isinstance(names, list):  # 'names: abc' was said to be no names at all
        raise UserError(
            f"data file {path}: 'names:' must list the class names (- name, or 0: name per line), got "
            f"{one_line(repr(names), limit=60)}"
        )
    if not names:
        raise UserError(f"data file {path} has no class names ('names:')")
    check_name_list(names, path)
    if "nc" in data:  # a valueless nc: too, which ultralytics refuses as not an integer
        try:
            count = float(data["nc"])
        except (TypeError, ValueError):
            count = None
        if count != len(names):
            raise UserError(
                f"data file {path} has nc: {data['nc']} but {len(names)} class name(s) in 'names:', which "
                "ultralytics refuses: make them agree, or remove nc: (the converters write none)"
            )
    return [str(n) for n in names]


def _numbered_names(nc: object, path: str | Path) -> list[str]:
    """``class_0``, ``class_1``, ...: ultralytics' names of the classes of a data file with ``nc:`` and no
    ``names:`` (it refused as having no class names, where stock ``yolo train`` trains).

    Raises:
        UserError: an ``nc:`` that is not a whole number of at least 1 (ultralytics refuses it likewise).
    """
    try:
        count = float(nc)  # ultralytics takes '3' and 3.0, not 1.5
    except (TypeError, ValueError):
        count = 0.5
    if not math.isfinite(count) or count != int(count) or count < 1:
        raise UserError(
            f"data file {path} has no class names ('names:') and nc: {nc}, which is no class count"
        )
    return [f"class_{i}" for i in range(int(count))]


def check_name_list(names: list, path: str | Path) -> None:
    """Refuses a class of ``names`` without a name, and a name that two classes share.

    ultralytics trains both, but every report here tells classes apart by name: two ``scratch`` classes
    were one in the image-level call, and a ``null`` name became a class called ``'None'``.
    """
    for class_id, name in enumerate(names):
        if name is None or not str(name).strip():
            raise UserError(f"data file {path}: class {class_id} in 'names:' has no name ({name!r})")
        first = [str(other) for other in names].index(str(name))
        if first != class_id:
            raise UserError(
                f"data file {path}: 'names:' gives classes {first} and {class_id} the one name "
                f"{str(name)!r}; each class needs its own"
            )


def splits_file(data_yaml: str | Path) -> Path | None:
    """The ``splits.json`` beside ``data_yaml`` (or in its ``path:`` folder), or None."""
    data_yaml = Path(data_yaml)
    candidates = [data_yaml.parent / "splits.json"]
    root = read_data_yaml(data_yaml).get("path")
    if root:
        candidates.append(Path(root) / "splits.json")
    return next((c for c in candidates if c.is_file()), None)


def dataset_categories(data_yaml: str | Path) -> list[str]:
    """Sorted MVTec categories of the images in a converted data set; empty when there is no splits.json."""
    found = splits_file(data_yaml)
    if found is None:
        return []
    splits = load_splits(found)
    return sorted({key.split("/", 1)[0] for split in SPLITS for key in splits[split]})


def dataset_root(data_yaml: str | Path) -> Path:
    """The folder a ``data.yaml``'s split paths are relative to: its ``path:``, else the file's folder.

    A relative ``path:`` is resolved as ultralytics resolves it: from the working folder where it
    exists there, else from ultralytics' ``datasets_dir``; never from the ``data.yaml``'s own folder.
    Taking it from there (as before) checked one folder's images while ultralytics trained on or
    scored another's: ``path: .`` run from a second data set's folder trained on that one, silently
    (the converters always write an absolute one).
    """
    data_yaml = Path(data_yaml)
    root = read_data_yaml(data_yaml).get("path")
    if not root:
        return data_yaml.parent.absolute()
    root = expand_user(root)
    if root.is_absolute() or root.exists():
        return root.absolute()
    from ultralytics.utils import DATASETS_DIR

    return (Path(DATASETS_DIR) / root).absolute()


def written_by_converters(data_yaml: str | Path) -> bool:
    """Whether ``data_yaml`` is one the converters wrote (their header line first), not a user's own
    (a Roboflow export, one written by hand): advice to re-convert is for the former only."""
    try:
        with open(data_yaml, encoding="utf-8", errors="replace") as file:
            return file.read(len(DATA_YAML_HEADER)) == DATA_YAML_HEADER
    except OSError:
        return False


def check_own_root(data_yaml: str | Path) -> Path:
    """The data set folder of a ``data.yaml``; a converters' one must name its own folder as ``path:``.

    A converted data set copied or moved elsewhere keeps the old absolute ``path:``, so ultralytics
    would train on (or score) the original instead, silently. A ``data.yaml`` written by hand may
    point anywhere, and so may a converters' one copied out of its data set alone (to rename a class,
    say: its folder holds no ``images/``), whose ``path:`` names the data set it reads; it was refused
    with the advice to point it at its own folder, which holds no data set.

    Raises:
        UserError: as :func:`converters.yolo.check_data_root` (the line ``converters.validate`` gives).
    """
    data_yaml = Path(data_yaml)
    root = dataset_root(data_yaml)
    copied_alone = not (data_yaml.parent / "images").is_dir()
    if written_by_converters(data_yaml) and not copied_alone:
        written = read_data_yaml(data_yaml).get("path")
        check_data_root(data_yaml, root, written=None if written is None else str(written))
    return root


class EmptySplitError(UserError):
    """A split the data file lacks or that holds no image (``--split`` ratios that left it empty)."""


def split_images(data_yaml: str | Path, split: str) -> list[Path]:
    """Image files of one split, resolved as ultralytics does: a folder (recursive), a ``.txt`` list, a file.

    Args:
        data_yaml: a YOLO ``data.yaml``.
        split: ``train``, ``val`` or ``test``; its entry may be one path or a list.

    Returns:
        Absolute paths, sorted, repeats kept (a repeated list is how :mod:`detection.sampling`
        oversamples).

    Raises:
        EmptySplitError: the split is missing or holds no image.
        UserError: it names nothing that exists (a moved data set), or goes through a link loop.
    """
    from ultralytics.data.utils import IMG_FORMATS

    entry = read_data_yaml(data_yaml).get(split)
    if not entry:
        raise EmptySplitError(f"data file {data_yaml} has no '{split}' split")
    root = dataset_root(data_yaml)
    images: list[Path] = []
    for item in entry if isinstance(entry, list) else [entry]:
        path = root / expand_user(item)
        if not path.exists() and isinstance(entry, str) and entry.startswith("../"):
            path = root / entry[3:]  # as ultralytics reads a Roboflow export's 'train: ../train/images'
        if path.is_dir():
            images += [p for p in path.rglob("*.*") if p.suffix[1:].lower() in IMG_FORMATS]
        elif path.is_file() and path.suffix == ".txt":
            for line in path.read_text(encoding="utf-8-sig").splitlines():
                line = line.strip()
                if line:
                    listed = Path(line[2:]) if line.startswith("./") else Path(line)
                    images.append(listed if listed.is_absolute() else path.parent / listed)
        elif path.is_file():
            images.append(path)
        else:  # nothing there, or a link loop (which exists() takes for nothing)
            given = f"'{split}: {item}' of {data_yaml}"
            loop = link_loop_text(path, given=f"{given} ({path})")
            raise UserError(loop or f"{given} does not exist ({path})")
    if not images:
        raise EmptySplitError(f"no images in the '{split}' split of {data_yaml}")
    return sorted(p.absolute() for p in images)


def check_photo_type(path: Path) -> None:
    """Refuses a HEIC/HEIF photo, which ultralytics' ``IMG_FORMATS`` takes into a split (:func:`split_images`)
    and PIL here does not read: the up-front checks called a phone's good photo 'corrupt or not an image', and
    ultralytics' loader would try to install ``pi-heif`` for it.

    Raises:
        UserError: one line naming the photo and what to save it as.
    """
    if path.suffix.lower() in (".heic", ".heif"):
        raise UserError(
            f"cannot read image {path}: a HEIC/HEIF photo, which this toolkit does not read (ultralytics "
            "would try to install pi-heif for it): save it as JPEG or PNG"
        )


def present_split_images(data_yaml: str | Path, split: str) -> list[Path]:
    """:func:`split_images`, each of which is there: a split to score.

    A ``.txt`` list names its images without them being looked at; ultralytics' validator, given one
    whose images are gone, stopped with a ``RuntimeError: No valid images found`` traceback.

    Raises:
        UserError: as :func:`split_images`, or a listed image that is not there (named).
    """
    images = split_images(data_yaml, split)
    if missing := [path for path in images if not path.is_file()]:
        raise UserError(
            f"{len(missing)} of the {len(images)} images the '{split}' split of {data_yaml} lists do not "
            f"exist ({missing[0]})"
        )
    return images


def check_split_labelled(data: Path, split: str, *, needs: str) -> None:
    """Refuses a split none of whose images has a label file where ultralytics looks for one.

    Training stopped with ultralytics' ``No labels found`` traceback; an evaluation scored every image
    of the split as good (no defect, mAP 0) after ultralytics' warnings: the labels lie elsewhere than
    ``images/`` -> ``labels/`` (or were deleted). An image without defects has an empty ``.txt``.

    A split of good images alone without a single label file (an export that writes none for an image
    without boxes) is refused too: ultralytics reads a split without label files as unlabelled (its
    validator warns ``No labels found``, as for COCO's test-dev), and a labels folder misspelt or moved
    looks the same; only empty ``.txt`` files say that the images were looked at and hold no defect. The
    message tells the two apart: the folder ultralytics looks in is missing, or holds none of theirs.

    Args:
        needs: who needs them, for the message (``training``, ``scoring``).
    """
    images = split_images(data, split)
    if not any(label_path(image).is_file() for image in images):
        label = label_path(images[0])
        where, fix = (
            (f"{label.parent} holds none of theirs", ", in a split of good images alone too")
            if label.parent.is_dir()
            else (f"there is no folder {label.parent}: moved or misspelt?", "")
        )
        raise UserError(
            f"none of the {len(images)} images of the '{split}' split of {data} has a label file "
            f"(ultralytics reads {images[0].name}'s from {label}; {where}): {needs} needs them, an "
            f"empty .txt for each image without defects{fix}"
        )


def label_path(image: str | Path) -> Path:
    """The YOLO label file of an image: the last ``/images/`` folder becomes ``/labels/``, suffix ``.txt``."""
    from ultralytics.data.utils import img2label_paths

    return Path(img2label_paths([str(image)])[0])


def label_classes(image: str | Path) -> list[int]:
    """Class ids of an image's YOLO label lines, in file order (empty: a background or no label file)."""
    path = label_path(image)
    if not path.is_file():
        return []
    # utf-8-sig: a BOM first (a Windows tool's file), as ultralytics reads labels; it stopped int() here
    lines = [line.split() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    try:
        return [int(float(words[0])) for words in lines]
    except ValueError as error:
        raise UserError(f"label file {path}: a class id that is no number ({one_line(error)})") from None


def has_polygon_labels(data_yaml: str | Path, split: str = "train") -> bool:
    """Whether any label line of ``split`` is a polygon (YOLO-seg, more than 4 coordinates), not a box.

    ultralytics' detect task reads polygon labels as their boxes, but rotates (``degrees``, ``shear``,
    ``perspective``) the polygon point by point, so the box stays tight; a box label is rotated as its four
    corners and its box grows (up to 2x the area at 45 degrees).
    """
    for image in split_images(data_yaml, split):
        path = label_path(image)
        if path.is_file() and any(len(line.split()) > 5 for line in path.read_text().splitlines()):
            return True
    return False


def check_nothing_dropped(
    kept: Iterable[str | Path], data_yaml: Path, split: str, reasons: Mapping[str, str] | None = None
) -> None:
    """Refuses a split of which ultralytics' loader kept only part (``kept``: the files it kept); ``reasons``
    as :func:`check_splits_read`'s.

    ultralytics skips an image it cannot read or whose label is corrupt (a class id the data set
    lacks) with a warning among its scan lines: an evaluation then counts it as a clean ``good``
    image, and a training run trains (or picks ``best.pt``) without it.

    Raises:
        UserError: naming the files left out and the command that says why.
    """
    check_splits_read({split: kept}, data_yaml, reasons)


def check_splits_read(
    kept: Mapping[str, Iterable[str | Path]], data_yaml: Path, reasons: Mapping[str, str] | None = None
) -> None:
    """:func:`check_nothing_dropped` of several splits (``kept``: split -> the files ultralytics kept), the
    images left out of each named in one line: one split's alone, they took a run each to find. ``reasons``
    (an image's name -> why ultralytics' scan left it out: :func:`dropped_reasons`) follow each name."""
    reasons = reasons or {}
    dropped = {}
    for split, files in kept.items():
        names = {Path(file).name for file in files}
        if missing := [path.name for path in split_images(data_yaml, split) if path.name not in names]:
            dropped[split] = [f"{name} ({reasons[name]})" if name in reasons else name for name in missing]
    if not dropped:
        return
    (first, missing), *others = dropped.items()
    more = "".join(f", and {len(left)} of the '{split}' split: {few(left)}" for split, left in others)
    raise UserError(
        f"ultralytics could not read {len(missing)} image(s) of the '{first}' split of {data_yaml}: "
        f"{few(missing)}{more} (python -m converters.validate {quote(str(data_yaml.parent))} says why)"
    )


#: What ultralytics' scan logs for an image it leaves out (``verify_image_label``), before its reason.
DROPPED_LINE = ": ignoring corrupt image/label: "


@contextlib.contextmanager
def dropped_reasons(reasons: dict[str, str]) -> Iterator[None]:
    """Keeps in ``reasons`` (an image's name -> why) the reasons ultralytics' scan logs, while this is held,
    for the images it leaves out (``{prefix}{image}: ignoring corrupt image/label: Truncated File Read``), for
    :func:`check_splits_read`: its line named them without a reason, which was in ultralytics' log."""
    from ultralytics.utils import LOGGER

    kept = _DroppedReasons(reasons)
    LOGGER.addFilter(kept)
    try:
        yield
    finally:
        LOGGER.removeFilter(kept)


class _DroppedReasons(logging.Filter):
    """:func:`dropped_reasons`' filter; it drops nothing."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__()
        self.reasons = reasons

    def filter(self, record: logging.LogRecord) -> bool:
        for line in record.getMessage().split("\n"):
            if DROPPED_LINE in line:
                image, reason = line.split(DROPPED_LINE, 1)
                self.reasons[re.split(r"[\\/]", image)[-1]] = one_line(reason)
        return True


def unloadable_image(error: FileNotFoundError, where: str) -> Exception:
    """A :class:`UserError` naming the image ultralytics' loader could not decode, or ``error`` itself.

    The data set's images are checked with PIL when their labels are read; OpenCV, which loads them
    for the model, can still fail on one (a TIFF variant it does not decode, a file replaced since).
    ultralytics then raises a FileNotFoundError without a file name (``Image Not Found <file>``), from a
    loader worker with the worker's whole traceback as its text. One that names its file is a real
    file system error and is returned as it is.

    Args:
        where: what the image belongs to, as the message names it (``the val split of x/data.yaml``).
    """
    if error.filename is not None:
        return error
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[-1].removeprefix("FileNotFoundError: ") if lines else "FileNotFoundError"
    return UserError(f"ultralytics cannot load an image of {where}: {reason}")
