"""The records of an annotation session: one image's entry, its accepted instances, their names.

Pure data with its JSON form (``annotate_state.json``) and the naming rules of
the MVTec tree (class and category names, unique file stems); the session
(:mod:`segmentation.annotate.session`) changes them.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.folders import MAX_FOLDER_NAME, check_folder_name, windows_problem
from converters.masks import rle_to_mask
from converters.mvtec import GOOD
from segmentation.annotate import export
from segmentation.annotate.errors import AnnotationError
from segmentation.annotate.proposals import Proposal, masked_fields, masked_json

#: The state file under ``--out`` (:mod:`segmentation.annotate.state_file` reads it).
STATE_FILE = "annotate_state.json"
#: What the tool writes under ``--out`` beside the category folder, which no category may be named as.
BESIDE_CATEGORY = (STATE_FILE, export.EXPORT_DIR, export.REPLACED_DIR)

UNLABELLED, IN_PROGRESS, DONE = "unlabelled", "in_progress", "done"
STATUSES = (UNLABELLED, IN_PROGRESS, DONE, GOOD)
#: What a user may set: ``open`` returns to unlabelled / in progress by the instances.
STATUS_ACTIONS = (DONE, GOOD, "open")
#: Class used when none are given on the first run.
DEFAULT_CLASSES = ("defect",)
#: Folder names the layout uses itself, so no class may take them.
RESERVED_NAMES = (GOOD, export.MIXED)
_STEM = re.compile(r"[^\W_][\w.-]{0,199}")  # any script's letters and digits: a photo's name stays readable
_STEM_PART_UNSAFE = re.compile(r"[^\w.-]+")
#: Longest stem before a clash suffix, in UTF-8 bytes: leaves room for ``_mask.png`` and ``_NNN`` in 255.
_MAX_STEM = 180


@dataclass(frozen=True)
class Instance:
    """One accepted defect: its class and exact mask at the image's own resolution.

    Attributes:
        id: unique within its image, never reused.
        class_name: one of the session's classes.
        rle: COCO RLE of the ``(H, W)`` mask, ``counts`` as ``str``.
        area: mask pixels.
        box: xyxy in pixel edges (exclusive max), as the converters write boxes.
        score: SAM's predicted IoU of the mask, when it came from SAM.
        prompt: the prompt that made it (``points``, ``labels``, ``box`` in pixels), for the record.
    """

    id: int
    class_name: str
    rle: dict
    area: int
    box: tuple[float, float, float, float]
    score: float | None = None
    prompt: dict | None = None

    def mask(self) -> np.ndarray:
        """``(H, W)`` bool."""
        return rle_to_mask(self.rle)

    def to_json(self) -> dict:
        return {**masked_json(self), "prompt": self.prompt}

    @classmethod
    def from_json(cls, data: dict) -> Instance:
        return cls(**masked_fields(data), prompt=data.get("prompt"))


# What undo restores: the status, instances and undecided proposals of one image.
Snapshot = tuple[str, tuple[Instance, ...], tuple[Proposal, ...]]


@dataclass
class ImageEntry:
    """One image of ``--images`` and its annotations.

    Attributes:
        key: path relative to ``--images``, ``/``-separated: the image's id everywhere.
        stem: file stem of its copy and mask in the tree, unique in the category.
        status: one of :data:`STATUSES`.
        instances: accepted instances, in the order they were accepted (later ones
            win overlapping pixels in the mask).
        size: ``(H, W)`` once an instance fixed it.
        next_id: id of the next instance.
        present: whether the file is still in ``--images`` (entries of removed files
            are kept with their annotations, but not listed).
        proposals: undecided proposals, best first.
        next_proposal_id: id of the next proposal.
        proposed: the sources (a proposals file's, a detector's: their ``source``) whose proposals
            it has had: each only once.
        revision: the session's count of undoable changes, undo and redo, when the last of them changed
            this entry (0: none since the start); in memory only, as the undo history
            (:meth:`~segmentation.annotate.session.AnnotationSession.version`). Proposals added or
            dropped and labels set aside count too: a page that did not show them must not act on them.
        revised_by: why the revision moved (a phrase a refusal names) -> the last revision it moved for.
    """

    key: str
    stem: str
    status: str = UNLABELLED
    instances: list[Instance] = field(default_factory=list)
    size: tuple[int, int] | None = None
    next_id: int = 1
    present: bool = True
    proposals: list[Proposal] = field(default_factory=list)
    next_proposal_id: int = 1
    proposed: list[str] = field(default_factory=list)
    undo_stack: list[Snapshot] = field(default_factory=list, repr=False)
    redo_stack: list[Snapshot] = field(default_factory=list, repr=False)
    revision: int = field(default=0, repr=False, compare=False)
    revised_by: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def snapshot(self) -> Snapshot:
        return self.status, tuple(self.instances), tuple(self.proposals)

    def restore(self, snapshot: Snapshot) -> None:
        self.status, instances, proposals = snapshot
        self.instances, self.proposals = list(instances), list(proposals)

    @property
    def outlined_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of the photo its outlines were drawn on: its instances', else its proposals'."""
        if self.size is not None:
            return self.size
        return next(((int(p.rle["size"][0]), int(p.rle["size"][1])) for p in self.proposals), None)

    @property
    def has_labels(self) -> bool:
        """Whether it holds anything decided or proposed about its photo (not only a size)."""
        return bool(self.instances or self.proposals or self.status != UNLABELLED)

    @property
    def folder(self) -> str | None:
        """Its ``test/`` folder in the tree, None while it has no files."""
        if self.status == GOOD:
            return GOOD
        if not self.instances:
            return None
        return export.defect_folder(i.class_name for i in self.instances)

    def to_json(self) -> dict:
        return {
            "stem": self.stem,
            "status": self.status,
            "size": list(self.size) if self.size else None,
            "next_id": self.next_id,
            "instances": [instance.to_json() for instance in self.instances],
            "next_proposal_id": self.next_proposal_id,
            "proposed": self.proposed,
            "proposals": [proposal.to_json() for proposal in self.proposals],
        }


def check_name(name: str, what: str, *, windows: bool = True) -> str:
    """A class or category name usable as a folder name on every OS (:func:`check_folder_name`);
    AnnotationError otherwise.

    A class name may also hold spaces between its words (``big scratch``), as the converters'
    ``--names-template '{defect_text}'`` names them (``broken large``) and YOLO-World reads them; a
    category name may not. ``windows`` False: a name only Windows cannot hold is taken (a stored one).
    """
    try:
        return check_folder_name(name, what, spaces=what == "class", windows=windows)
    except UserError as error:  # an option or request of the page: its 400
        raise AnnotationError(str(error)) from None


def beside_category(name: str) -> str | None:
    """The file or folder the tool writes beside the category folder (:data:`BESIDE_CATEGORY`) that a
    category ``name`` would be, ignoring case as macOS and Windows do; None when it would be none.

    >>> beside_category("Export"), beside_category("exports")
    ('export', None)
    """
    return next((other for other in BESIDE_CATEGORY if other.casefold() == name.casefold()), None)


def check_classes(classes: Sequence[str], *, stored: int = 0) -> list[str]:
    """Checks a class list: folder-safe, unique, not ``good``/``combined``, at most 255.

    The first ``stored`` are a saved session's: one only Windows cannot hold (``scratch.``, ``con``, taken
    before that rule) still resumes (:func:`check_name` with ``windows`` False).
    """
    names = [check_name(name, "class", windows=i >= stored) for i, name in enumerate(classes)]
    if not names:
        raise AnnotationError("give at least one class (--classes scratch dent ...)")
    reserved = [n for n in names if n.lower() in RESERVED_NAMES]
    if reserved:
        raise AnnotationError(f"class name '{reserved[0]}' is reserved by the MVTec layout; choose another")
    lowered = [n.lower() for n in names]
    duplicates = sorted({n for n in names if lowered.count(n.lower()) > 1})
    if duplicates:
        raise AnnotationError(f"classes listed twice (case-insensitively): {', '.join(duplicates)}")
    try:
        export.class_values(names)  # at most 255
    except UserError as error:  # the converters' error: here a bad option of the app
        raise AnnotationError(str(error)) from None
    return names


def renamed_classes(classes: Sequence[str], renames: Mapping[str, str]) -> list[str]:
    """``classes`` with each old name of ``renames`` replaced by its new one, in its place: the order,
    and so each class's mask value (:func:`export.class_values`), stays.

    A new name is held to the whole rule of a name typed now (:func:`check_name`), the names kept are
    not (a saved ``scratch.`` stays); renames take effect together, so two names may swap.

    >>> renamed_classes(["scrach", "dent"], {"scrach": "scratch"})
    ['scratch', 'dent']

    Raises:
        AnnotationError: an old name that is no class (naming the classes), a bad or reserved new name,
            one that another class has, but for case.
    """
    classes = list(classes)
    for old in renames:
        if old not in classes:
            raise AnnotationError(f"no class {old!r} to rename: the classes are {shlex.join(classes)}")
    for new in renames.values():
        check_name(new, "class")
    names = [renames.get(name, name) for name in classes]
    for old, new in renames.items():
        clash = [c for c, n in zip(classes, names, strict=True) if c != old and n.lower() == new.lower()]
        if clash:
            other = clash[0]
            has = f"the class {other!r} has it" if other not in renames else f"{other!r} is renamed to it too"
            raise AnnotationError(
                f"cannot rename class {old!r} to {new!r}: {has} (class names differ in more than case)"
            )
    return check_classes(names, stored=len(names))  # reserved names; the new ones checked in full above


def default_category(out: Path) -> str:
    """The category folder's name from ``--out``'s, as :func:`check_folder_name` takes it.

    Letters and digits of any script stay (NFC), each run of other characters but ``_``, ``.`` and
    ``-`` becomes ``_``; cut to leave room for ``_defects`` in :data:`MAX_FOLDER_NAME` characters and
    255 UTF-8 bytes, which a name Windows keeps for a device, or one of what the tool writes beside it in
    any case (:func:`beside_category`), gets.

    >>> default_category(Path("datasets/new_defects")), default_category(Path("検査/キズ 2026"))
    ('new_defects', 'キズ_2026')
    >>> default_category(Path("con")), default_category(Path("lot 7 (new)"))
    ('con_defects', 'lot_7_new')
    """
    name = _STEM_PART_UNSAFE.sub("_", unicodedata.normalize("NFC", out.resolve().name)).strip("._-")
    suffix = "_defects"
    name = name[: MAX_FOLDER_NAME - len(suffix)].encode()[: 255 - len(suffix)].decode(errors="ignore")
    name = name.rstrip("._-") or "new_defects"  # a cut character is dropped
    if beside_category(name) is not None or windows_problem(name) is not None:
        stem, dot, rest = name.partition(".")  # 'con.x' is the device 'con' too
        return f"{stem}{suffix}{dot}{rest}"
    return name


def unique_stem(key: str, taken: set[str]) -> str:
    """A file stem for image ``key`` that no other image of the category has.

    ``lot_3/0001.jpg`` -> ``lot_3__0001``, ``傷/割れ 1.png`` -> ``傷__割れ_1``: characters other
    than letters and digits (of any script, NFC), ``_``, ``.`` and ``-`` become ``_``; a clash
    (``a.png`` and ``a.jpg``) gets ``_2``, ``_3``, ...
    """
    path = Path(unicodedata.normalize("NFC", key))  # macOS names é as e + U+0301, which is no letter
    parts = [*path.parent.parts, path.stem] if str(path.parent) != "." else [path.stem]
    base = "__".join(_STEM_PART_UNSAFE.sub("_", part) for part in parts).lstrip("._-")
    base = base.encode()[:_MAX_STEM].decode(errors="ignore") or "image"  # a cut character is dropped
    stem, n = base, 1
    while stem.lower() in taken:
        n += 1
        stem = f"{base}_{n}"
    taken.add(stem.lower())
    return stem


def entry_from_json(key: str, data: dict, *, source: str | Path = "annotation state") -> ImageEntry:
    """The entry of image ``key`` from its JSON form (:meth:`ImageEntry.to_json`).

    Raises:
        AnnotationError: one line naming ``source`` (the state file), the image and what is wrong: a
            field of the wrong type, a status its instances contradict (:func:`_status_contradiction`),
            an id two instances or two proposals share.
    """
    try:
        if not isinstance(data, dict):
            raise TypeError(f"an entry is a JSON object, got {type(data).__name__}")
        instances = [Instance.from_json(item) for item in data.get("instances", [])]
        proposals = [Proposal.from_json(item) for item in data.get("proposals", [])]
        status = data.get("status", UNLABELLED)
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        size = data.get("size")
        entry = ImageEntry(
            key=key,
            stem=_checked_stem(str(data["stem"])),
            status=status,
            instances=instances,
            size=(int(size[0]), int(size[1])) if size else None,
            next_id=max([int(data.get("next_id", 1))] + [i.id + 1 for i in instances]),
            proposals=proposals,
            next_proposal_id=max([int(data.get("next_proposal_id", 1))] + [p.id + 1 for p in proposals]),
            proposed=[str(source) for source in data.get("proposed", [])],
        )
        sizes = {tuple(i.rle["size"]) for i in instances}
        if instances and sizes != {entry.size}:  # the tree's mask is composed at entry.size
            raise ValueError(f"instances of size {sorted(sizes)} on an image of size {entry.size}")
        if (contradiction := _status_contradiction(entry)) is not None:
            raise ValueError(contradiction)
        for what, items in (("instance", instances), ("proposal", proposals)):
            if (repeated := _repeated_id(items)) is not None:
                raise ValueError(
                    f"two {what}s with id {repeated}, which the app never gives twice in a photo (a delete "
                    f"would take both): give each {what} of the photo an id of its own"
                )
    except (KeyError, TypeError, ValueError, AnnotationError) as error:
        raise AnnotationError(f"{source}: bad entry for image {key}: {error}") from None
    return entry


def _status_contradiction(entry: ImageEntry) -> str | None:
    """What ``entry``'s status says against its instances (a state edited by hand), or None.

    The app keeps them in step: a photo with an instance is in progress or done, one without is
    unlabelled or good. A ``good`` photo with instances went into ``test/good/`` without its defects (an
    export of it alone then failed with "no defect image left to convert"), an ``unlabelled`` one with
    instances was counted as work left and exported all the same, a ``done`` one without was counted as
    done and left out of every export.
    """
    count = len(entry.instances)
    if count and entry.status in (UNLABELLED, GOOD):
        return (
            f"status '{entry.status}' with {count} instance(s), which a photo marked {entry.status} never "
            f"has: set its 'status' to '{IN_PROGRESS}' or '{DONE}', or empty its 'instances'"
        )
    if not count and entry.status in (IN_PROGRESS, DONE):
        return (
            f"status '{entry.status}' with no instance, which a photo {entry.status.replace('_', ' ')} "
            f"always has: set its 'status' to '{UNLABELLED}' (or '{GOOD}' if it shows no defect)"
        )
    return None


def _repeated_id(items: Sequence[Instance | Proposal]) -> int | None:
    """The first id that two of ``items`` share, or None."""
    seen: set[int] = set()
    for item in items:
        if item.id in seen:
            return item.id
        seen.add(item.id)
    return None


def _checked_stem(stem: str) -> str:
    if not _STEM.fullmatch(stem):
        raise ValueError(f"bad stem {stem!r}")
    return stem
