"""The annotation state file (``annotate_state.json``): reading it and checking it against the options.

A session's ``--out`` holds the state; :meth:`~segmentation.annotate.session.AnnotationSession.read`
resumes from it. The functions here read it and reconcile it with what the command was given: the
photo folder (``--images`` or the stored one), the category, the classes (a resume may append),
the stored entries merged with the folder's photos, and the checks that a resumed folder holds the
photos annotated, not others of the same names. Nothing here writes or prints (a saved name Windows
cannot hold gets a ``warning:`` line, :func:`saved_name_warnings`, which the command prints).
"""

from __future__ import annotations

import filecmp
import json
import os
import shlex
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from common.errors import UserError, one_line
from common.folders import is_empty_folder, windows_problem
from common.image_files import IMAGE_SUFFIXES
from common.images import displayed_size
from common.io import expand_user
from common.photo_sources import check_not_ground_truth
from segmentation.annotate import export
from segmentation.annotate.errors import AnnotationError
from segmentation.annotate.files import check_relative, list_images
from segmentation.annotate.records import (
    DEFAULT_CLASSES,
    STATE_FILE,
    ImageEntry,
    beside_category,
    check_classes,
    check_name,
    default_category,
    entry_from_json,
    unique_stem,
)

STATE_FORMAT = "mvtec-finetune/annotate-state"
STATE_VERSION = 1


def images_dir_of(stored: dict, images: str | Path | None, out: Path) -> Path:
    """The photo folder: ``images`` or the stored one on a resume; never inside ``out``, nor holding it
    (a new session's)."""
    if images is None:
        if not stored:
            raise AnnotationError(f"no annotation state in {out}: give the image folder (--images)")
        images_dir = stored_folder(stored["images_dir"])
        if not images_dir.is_dir():  # 'image folder does not exist' named a folder the user never typed here
            raise AnnotationError(
                f"the photos annotated in {out} were in {images_dir}, which is not a folder now: "
                "give their folder as --images (photos moved elsewhere keep their labels)"
            )
    else:
        images_dir = absolute_as_typed(images)
    if images_dir.resolve() == out.resolve() or out.resolve() in images_dir.resolve().parents:
        raise AnnotationError(f"the image folder {images_dir} is inside the output folder {out}")
    if not stored and images_dir.resolve() in out.resolve().parents:
        # a session begun so before this check resumes: the page itself skips its output when listing
        raise AnnotationError(
            f"the output folder {out} is inside the image folder {images_dir}: later runs over the photos "
            "(detection.predict, inspection.predict) would read its copies of them; choose an --out outside"
        )
    return images_dir


def absolute_as_typed(typed: str | Path) -> Path:
    """``typed`` (``~`` expanded) made absolute, the ``..`` it begins with taken off the working folder:
    ``--images ../photos`` from /home/me/lot is /home/me/photos in the state file and every line naming
    it, not /home/me/lot/../photos; ``--out ../x`` is /home/me/x (the session's, the lock's). The same
    folder: the working folder's path holds no link (the system gives its real path), so its parent is
    what ``..`` opens. A ``..`` after a folder the user typed stays as typed (that folder may be a link,
    whose ``..`` is its target's parent), as does an absolute path."""
    path = expand_user(typed)
    if path.is_absolute():
        return path
    base, parts = Path.cwd(), path.parts
    while parts and parts[0] == "..":
        base, parts = base.parent, parts[1:]
    return base.joinpath(*parts)


def stored_folder(stored: str) -> Path:
    """The photo folder of a state file, each ``..`` that follows a folder which is a folder and no link
    now taken off: a file saved before :func:`absolute_as_typed` holds /home/me/lot/../photos, named so in
    every line of a resume. Such a ``..`` opens the folder's parent on the path (lot's parent /home/me,
    even where /home is a link), so /home/me/photos is the same folder. A ``..`` after a link (which opens
    the link's target's parent), after a missing folder or after the root stays as stored, as does all
    after it; a relative path (never written) is left as it is."""
    path = Path(stored)
    if not path.is_absolute():
        return path
    kept, parts = Path(path.anchor), path.parts[1:]
    for index, part in enumerate(parts):
        if part != "..":
            kept /= part
        elif kept == Path(kept.anchor) or kept.is_symlink() or not kept.is_dir():
            return kept.joinpath(*parts[index:])
        else:
            kept = kept.parent
    return kept


def category_of(stored: dict, category: str | None, out: Path) -> str:
    """The category folder name: the stored one on a resume (a different one is refused)."""
    stored_category = stored.get("category")
    if category is not None and stored_category and category != stored_category:
        raise AnnotationError(
            f"{out} holds category '{stored_category}', not '{category}': leave --category out to resume"
        )
    # --category "" (an unset shell variable) is a bad name, not the default one
    category = category if category is not None else stored_category or default_category(out)
    saved = bool(stored_category) and category == stored_category
    if saved:  # saved before the rules refused some names (saved_name_warnings warns of them)
        check_name(category, "category", windows=False)
    else:
        check_name(category, "category")
    check_not_beside(category, saved=saved)
    folder = out / category
    if not stored and (folder.exists() or folder.is_symlink()) and not is_empty_folder(folder):
        # another tool's (an MVTec data set's hazelnut/): its photos and masks of the same names were
        # overwritten, and a deleted instance removed them
        raise AnnotationError(
            f"{folder} exists and was not written by this tool ({out} holds no {STATE_FILE}): its files "
            "would be overwritten; give --out a new folder, or another --category"
        )
    return category


def check_not_beside(category: str, *, saved: bool = False) -> None:
    """Refuses a category named as what the tool writes beside it (``export``, ``replaced``,
    ``annotate_state.json``), in any case: macOS and Windows take ``Export`` for ``export``.

    ``saved``: the name of a saved session (or of a rename it records), taken where only its case differs
    (a session on Linux, before this rule; :func:`beside_warning` warns of it).
    """
    other = beside_category(category)
    if other is None or (saved and other != category):
        return
    what = "file" if other == STATE_FILE else "folder"
    same = "" if other == category else " (macOS and Windows ignore case)"
    raise AnnotationError(
        f"category '{category}' would clash with the {other} {what} beside it{same}; choose another"
    )


def beside_warning(category: str, out: Path) -> list[str]:
    """The ``warning:`` line, in a list (empty where none), where the saved ``category`` differs from what
    the tool writes beside it only in case (:func:`check_not_beside`): the tree cannot be copied whole to
    macOS or Windows."""
    if (other := beside_category(category)) is None or other == category:
        return []
    return [
        f"warning: category {category!r} of {out / STATE_FILE} was saved before such names were refused: "
        f"macOS and Windows take it for the {other} beside it (they ignore case); the tree cannot be "
        "copied whole to them: --rename-category NEW gives it another name"
    ]


def check_new_category(out: Path, category: str, new: str, *, was: str | None = None) -> None:
    """Checks ``new`` as the new name of the category ``category`` of the session in ``out``: the rule
    of ``--category``, and no other folder of that name under ``out`` (a case-only rename takes its own).

    ``was``: the old name of a rename the state records but that was cut short (:func:`tree_of`): the
    tree still under it is the session's own, not a folder in the way of a rename back to it.

    Raises:
        AnnotationError: a bad name, ``export`` or ``replaced``, a folder in the way.
    """
    check_name(new, "category")
    check_not_beside(new)
    target, current = out / new, tree_of(out, category, was)
    if new != category and (target.exists() or target.is_symlink()):
        if not (current.exists() and target.exists() and os.path.samefile(current, target)):
            raise AnnotationError(
                f"cannot rename category '{category}' to '{new}': {target} exists; move it away, or choose "
                "another name"
            )


def class_names_of(
    stored: dict,
    classes: Sequence[str] | None,
    default_classes: Sequence[str] | None,
    out: Path,
) -> list[str]:
    """The class names; on a resume they must start with the stored ones, in order."""
    stored_classes = list(stored.get("classes") or [])
    if classes is None:
        names = stored_classes or list(default_classes or DEFAULT_CLASSES)
    else:
        names = list(classes)
        if names[: len(stored_classes)] != stored_classes:
            raise AnnotationError(
                f"{out} was annotated with classes {shlex.join(stored_classes)}: --classes must start with "
                "them in that order (new classes may be appended), or be left out"
            )
    return check_classes(names, stored=len(stored_classes))


def saved_name_warnings(
    stored: dict, out: Path, *, category_renamed_to: str | None = None, renamed: Collection[str] = ()
) -> list[str]:
    """The ``warning:`` lines of a saved session's names that the rules refuse now: its category's
    (:func:`windows_name_warnings`, :func:`beside_warning`), then its classes' (Windows).

    Returned, not printed: the command prints those of the session it goes on with, once; a session read
    again (another page saved it meanwhile) printed each twice. Call once ``stored`` was checked
    (:func:`category_of`, :func:`class_names_of`).

    ``category_renamed_to`` and ``renamed``: the name ``--rename-category`` gives the category, and the
    stored classes ``--rename-class`` gives other names; such a name is not warned of, a warning that asked
    for that very rename.
    """
    lines = []
    category = stored.get("category")
    if category and category_renamed_to in (None, category):
        lines += windows_name_warnings([category], "category", out) + beside_warning(category, out)
    classes = [name for name in stored.get("classes") or [] if name not in renamed]
    return lines + windows_name_warnings(classes, "class", out)


def windows_name_warnings(names: Sequence[str], what: str, out: Path) -> list[str]:
    """One ``warning:`` line for each of a saved session's ``names`` that Windows cannot hold.

    A session saved before :func:`common.folders.check_folder_name` refused such names (``scratch.``,
    ``con``) resumes with them, its labels kept; but its tree cannot be copied whole to Windows until
    ``--rename-class`` or ``--rename-category`` gives it another name.
    """
    lines = []
    for name in names:
        if (problem := windows_problem(name)) is not None:
            option = (
                f"--rename-class {shlex.quote(f'{name}=NEW')}" if what == "class" else "--rename-category NEW"
            )
            lines.append(
                f"warning: {what} {name!r} of {out / STATE_FILE} was saved before such names were refused: "
                f"{problem}; the tree cannot be copied whole to Windows: {option} gives it another name"
            )
    return lines


def listed_entries(
    stored: dict, names: list[str], images_dir: Path, out: Path
) -> tuple[dict[str, ImageEntry], list[str], list[str]]:
    """The stored entries merged with the folder's images, the folder's image keys, and those of its
    files whose header reads as no image (:func:`common.images.displayed_size`).

    Listed images come first in folder order, then the annotated ones no longer on disk
    (``present`` False). Files that are no image stay listed (a photo replaced on disk by a broken
    one keeps its labels): the page names each when opened, the command at its start.
    """
    entries = stored_entries(stored, names, out)
    taken = {entry.stem.lower() for entry in entries.values()}
    keys = list_images(images_dir, exclude=out)
    # --images <an MVTec category>: its ground_truth/*_mask.png were listed among the photos to outline
    check_not_ground_truth([images_dir / key for key in keys], images_dir)
    if not keys:
        raise AnnotationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images_dir}")
    unreadable = [key for key in keys if not _is_image(images_dir / key)]
    for entry in entries.values():
        entry.present = False
    for key in keys:
        if key in entries:
            entries[key].present = True
        else:
            entries[key] = ImageEntry(key=key, stem=unique_stem(key, taken))
    ordered = {key: entries[key] for key in keys} | {k: e for k, e in entries.items() if not e.present}
    return ordered, keys, unreadable


def stored_entries(stored: dict, names: list[str], out: Path) -> dict[str, ImageEntry]:
    """The entries of the state, each checked to hold instances of classes of ``names`` only.

    An undecided proposal may be of another class (a proposals file's ``anomaly``): it is accepted
    only as one of ``names``.
    """
    entries: dict[str, ImageEntry] = {}
    stems: dict[str, str] = {}
    for key, data in (stored.get("images") or {}).items():
        try:
            check_relative(key)  # an export with the photos gone copies images_dir / key into the tree
        except AnnotationError as error:
            where = f"{out / STATE_FILE}: image {key!r}"
            raise AnnotationError(f"{where} is no path below images_dir ({error})") from None
        entry = entry_from_json(key, data, source=out / STATE_FILE)
        other = stems.setdefault(entry.stem.lower(), key)
        if other != key:  # one copy and one mask in the tree for two photos
            raise AnnotationError(f"{out / STATE_FILE}: images {other} and {key} have one stem, {entry.stem}")
        unknown = {i.class_name for i in entry.instances} - set(names)
        if unknown:
            raise AnnotationError(f"{out / STATE_FILE}: image {key} has instances of unknown class {unknown}")
        entries[key] = entry
    return entries


def replaced_size(entry: ImageEntry, path: Path) -> tuple[int, int] | None:
    """``(H, W)`` of ``entry``'s photo on disk when it differs from the size its outlines were made at.

    None when they agree, when the entry has no outlined size, or when the file is no image now (a
    photo replaced by a broken file keeps its labels; the command names it as unreadable).
    """
    old = entry.outlined_size
    if old is None:
        return None
    try:
        size = export.upright_size(path)
    except AnnotationError:
        return None
    return size if size != old else None


def _is_image(path: Path) -> bool:
    """``path``'s header reads as an image (a text file, an empty or cut-off one's does not)."""
    try:
        displayed_size(path)
    except UserError:
        return False
    return True


def check_same_photos(
    entries: Mapping[str, ImageEntry], images_dir: Path, category_dir: Path, *, annotated_in: str
) -> None:
    """On a resume from another folder: each annotated photo in it must be the one annotated.

    Image keys are paths relative to ``--images``, so a moved folder resumes; but another folder
    whose photos have the same names (the next lot) resumed too, the first folder's masks shown
    and exported on its photos, and masks drawn on them saved beside the first folder's copies.
    The tree's copy of an annotated photo is the photo annotated (byte for byte, unless it was
    re-encoded upright).

    Raises:
        AnnotationError: naming the first photo that differs.
    """
    for entry in entries.values():
        folder = entry.folder
        if not entry.present or folder is None:
            continue
        source = images_dir / entry.key
        if export.needs_upright_copy(source):
            continue
        suffix = export.copy_suffix(source)
        copy = category_dir / "test" / folder / f"{entry.stem}{suffix}"
        if not copy.is_file():  # its class renamed, the rename cut short: the copy is in the old folder
            copy = next((p for p in export.stem_files(category_dir, entry.stem) if _is_copy(p, suffix)), copy)
        if copy.is_file() and not filecmp.cmp(source, copy, shallow=False):
            raise AnnotationError(
                f"--images {images_dir}: {entry.key} is not the photo annotated as {entry.key} in "
                f"{stored_folder(annotated_in)} (its copy: {copy}): give other photos an --out of their own"
            )


def _is_copy(path: Path, suffix: str) -> bool:
    """Whether ``path``, a file of a stem in the tree (:func:`export.stem_files`), is a photo's copy."""
    return path.parent.parent.name == "test" and path.suffix == suffix and path.is_file()


def tree_of(out: Path, category: str, category_was: str | None) -> Path:
    """The folder under ``out`` that holds the tree now: the old category's after a rename the state
    records but that was cut short before the folder was renamed (``category_was``), else ``category``'s.

    As :meth:`AnnotationSession.persist` finishes such a rename: a folder of the new name already there
    is the tree it writes.
    """
    if category_was and (out / category_was).is_dir() and not (out / category).exists():
        return out / category_was
    return out / category


#: One photo's entry on one line: json's C encoder (``indent`` takes its pure-Python one instead).
_ONE_LINE = json.JSONEncoder(separators=(",", ":"))


def state_text(state: Mapping[str, object], *, image_lines: str | None = None) -> str:
    """The text of the state file: a field a line, and under ``images`` each photo's entry on one line.

    Every change on the page rewrites the whole file, whose size grows with the photos of the folder;
    ``json.dumps(state, indent=1)`` encodes all of it in pure Python, the entries compact on a line in C
    (and ``grep lot_3/0007.jpg annotate_state.json`` shows a photo's whole entry).

    ``image_lines``: the lines of ``images`` as :func:`entry_lines` wrote them for the file written last,
    taken in place of encoding ``state["images"]`` again (moving to another photo changes no entry).

    >>> print(state_text({"classes": ["dent"], "images": {"a.png": {"status": "good", "instances": []}}}))
    {
     "classes": ["dent"],
     "images": {
      "a.png": {"status":"good","instances":[]}
     }
    }
    <BLANKLINE>
    """
    fields = []
    for name, value in state.items():
        if name == "images" and isinstance(value, Mapping):
            lines = entry_lines(value) if image_lines is None else image_lines
            fields.append(f' "images": {{\n{lines}\n }}' if lines else ' "images": {}')
        else:
            fields.append(f" {json.dumps(name)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(fields) + "\n}\n"


def entry_lines(images: Mapping[str, object]) -> str:
    """The lines under the state's ``images``: each photo's entry on one line, ``""`` for none."""
    return ",\n".join(f"  {json.dumps(key)}: {_ONE_LINE.encode(entry)}" for key, entry in images.items())


def saved_classes(out: str | Path) -> list[str]:
    """The classes of the session saved in ``out``; none where it holds no state."""
    path = absolute_as_typed(out) / STATE_FILE
    return list(read_state(path).get("classes") or []) if path.is_file() else []


def read_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise AnnotationError(f"cannot read the annotation state {path}: {error}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise AnnotationError(f"{path} is not an annotation state written by segmentation.annotate")
    if state.get("version") != STATE_VERSION:
        raise AnnotationError(
            f"{path} has state version {state.get('version')}, this app reads {STATE_VERSION}"
        )
    check_state_fields(state, path)
    return state


#: The state's top-level fields read on a resume: their JSON types, and what the message calls them.
_FIELDS = {
    "images_dir": (str, "a string"),
    "category": (str | None, "a string"),
    "category_was": (str | None, "a string"),
    "classes": (list | None, "a list of class names"),
    "current": (str | None, "a string"),
    "images": (dict | None, "an object"),
}


def check_state_fields(state: dict, path: Path) -> None:
    """Refuses a state (edited by hand) whose top-level fields are not of the types the app writes.

    Raises:
        AnnotationError: naming the file and the field (an AttributeError or TypeError traceback
            stopped the command).
    """
    for name, (kind, text) in _FIELDS.items():
        value = state.get(name)
        names = value if name == "classes" and value else []
        if not isinstance(value, kind) or not all(isinstance(item, str) for item in names):
            got = one_line(json.dumps(value), limit=40)
            raise AnnotationError(f"{path}: '{name}' must be {text}, got {got}")
    was = state.get("category_was")
    if was is not None:  # a folder the next start renames into the tree: '../x' moved one outside --out
        try:
            check_name(was, "category", windows=False)
            check_not_beside(was, saved=True)  # nor the export beside the tree
        except AnnotationError:
            got = one_line(json.dumps(was), limit=40)
            raise AnnotationError(f"{path}: 'category_was' must be a category name, got {got}") from None
