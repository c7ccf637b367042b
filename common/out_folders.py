"""Where an ``--out`` may lie beside the photos of a ``--source``: not where a later run reads its images.

``detection.predict``, ``inspection.predict`` and ``anomaly.predict`` write images (overlays, masks,
anomaly maps) into ``--out``. An ``--out`` that holds the photos is replaced, photos and all, by
``--overwrite``; one inside a photo folder searched recursively, or where a pattern ``--source`` reaches
(``lots/*/*/*.jpg`` and ``--out lots/run``: ``lots/run/overlays/a.jpg``), has its images read as photos
by the next run. :func:`check_out_of_photos` refuses both before anything is written,
:func:`check_holds_no_photos` once the photos are listed.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from common.errors import UserError
from common.folders import path_exists
from common.globs import name_could_match
from common.photo_sources import check_source_given, glob_base, photo_root


def check_out_of_photos(
    out: str | Path,
    source: str | Path,
    *,
    later: str,
    images: Mapping[str, str],
    kept: Sequence[tuple[Path, str]] = (),
) -> Path:
    """``out`` resolved, once it holds neither a ``kept`` folder nor the photos of ``source`` (their
    folder, a pattern's leading one: :func:`common.photo_sources.photo_root`), and a later run over ``source``
    would read none of the images it will hold (:func:`check_not_read_as_photos`).

    ``--overwrite`` would delete a folder ``out`` holds; below a recursive photo folder, or where a
    pattern reaches (``lots/*/*/*.jpg`` and ``--out lots/run``: ``lots/run/overlays/a.jpg``), a later
    run would read ``out``'s files as photos.

    Args:
        out: the output folder.
        source: the ``--source`` (a photo, a folder or a glob pattern).
        later: what a later run would do with ``out``'s images there, ``{}`` for what they are
            (``inspect its {} too``): all of them inside the folder, the kind a pattern matches.
        images: every image file the command writes in ``out``, relative to it, a name that varies
            as ``*`` followed by what ends it, each with what it is (``{"overlays/*.jpg": "overlays"}``);
            its file name is a photo's output name (:func:`common.folders.output_name`).
        kept: more folders ``out`` may not hold, checked first, each with what it is for the message
            (``the run``).

    Raises:
        UserError: naming ``out`` and the folder it holds or lies in, or the pattern and the images
            of ``out`` it could match.
    """
    root = photo_root(source).resolve()
    given, out = out, Path(out).resolve()
    for folder, what in (*((Path(path).resolve(), what) for path, what in kept), (root, "the photos")):
        if out == folder or out in folder.parents:
            raise UserError(f"output folder {out} holds {what} ({folder}); choose another --out")
    check_not_read_as_photos(given, source, later=later, images=images)  # as given too: a link in its reach
    return out


def check_not_read_as_photos(
    out: str | Path, source: str | Path, *, later: str, images: Mapping[str, str]
) -> None:
    """Refuses an ``out`` where a later run over ``source`` would read the images written in it: one
    that is, or lies inside, the photo folder ``source`` (:func:`folder_inside`), resolved or as spelled,
    or holds images a pattern ``source`` could match (:func:`pattern_images`), said to be inside the
    folder its ``**`` searches where it lies there (:func:`searched_folder_inside`). With no ``images``
    (files that are not images alone, ``detection.predict --overlays 0``), any ``out`` passes.

    Args:
        out: the output folder.
        source: the ``--source``.
        later: what a later run would do with those images, ``{}`` for what they are
            (:func:`check_out_of_photos`).
        images: the image files the command writes in ``out``, each with what it is
            (:func:`check_out_of_photos`).

    Raises:
        UserError: naming ``out``, the photo folder or the pattern, and what a later run would read.
    """
    check_source_given(source)
    text = os.path.expanduser(source)  # as photo_files reads it
    if not images:
        return
    # path_exists: a photo or folder in one that cannot be searched is not a pattern's (Python 3.13)
    there = path_exists(text)
    if there and Path(text).is_file():
        return
    if there and Path(text).is_dir():
        inside, kinds = folder_inside(out, text), list(images.values())  # all are read there
    else:
        read = pattern_images(out, text, images)
        inside = searched_folder_inside(out, text) if read else None
        kinds = [what for _, _, what in read]
    if inside:  # as spelled too: a link in it
        place, above = inside
        listed = listed_kinds(kinds)
        where = "is the photo folder" if place == above else f"is inside the photo folder {above}"
        raise UserError(
            f"output folder {place} {where}, where a later run would {later.format(listed)}; "
            "choose another --out"
        )
    check_out_of_pattern(out, source, later=later, images=images)  # as given too: a link in its reach
    check_no_link_into(out, text, later=later, images=images)


def check_no_link_into(out: str | Path, source: str, *, later: str, images: Mapping[str, str]) -> None:
    """Refuses an ``out`` that a link the search of a folder or pattern ``source`` reaches leads to, or
    into, where a later run would read its images through the link (:func:`images_through_link`).

    ``--source lots --out runs/r1`` with ``lots/latest`` a link to ``runs/r1`` (or to ``runs``, or to
    ``runs/r1/overlays``) passed, the link not yet leading anywhere: the run wrote where the next one
    reads, and that one was refused (:func:`common.photo_sources.check_not_run_output`) or read the images as
    photos. Links to files are the photos' own (:func:`check_holds_no_photos`, a broken one refused).

    Args:
        out: the output folder.
        source: the ``--source``, ``~`` expanded: a folder or a pattern.
        later: what a later run would do with those images, ``{}`` for what they are
            (:func:`check_out_of_photos`).
        images: the image files the command writes in ``out``, each with what it is.

    Raises:
        UserError: naming ``out``, the link, where it leads and what a later run would read.
    """
    folder = path_exists(source) and Path(source).is_dir()  # path_exists: as in check_not_read_as_photos
    hidden = not folder and photo_names_hidden(source)
    for link in _links_below(Path(source)) if folder else _links_in_reach(source):
        read = []
        for image, what in images.items():
            written = images_through_link(out, link, image)
            if written is not None and hidden:
                written = written.with_name(f".{written.name}")
            if written is None:
                continue
            if pattern_could_match(source, written) if not folder else _searched_below(link, written):
                read.append(what)
        if read:
            raise UserError(
                f"output folder {Path(out).resolve()} is reached through the link {link} (to "
                f"{os.readlink(link)}) in '{source}', where a later run would "
                f"{later.format(listed_kinds(read))}; choose another --out"
            )


def images_through_link(out: str | Path, link: Path, image: str) -> Path | None:
    """Where ``image`` (a name written in ``out``, varying names as ``*`` and their end:
    :func:`check_out_of_photos`) lies spelled through ``link``, absolute; None where the link leads
    neither to ``out``, above it, nor to a folder of ``out`` that may hold ``image``: ``lots/latest``, a
    link to ``runs``, spells ``runs/r1``'s ``overlays/*.jpg`` as ``lots/latest/r1/overlays/*.jpg``; a
    link to ``runs/r1/masks`` its ``masks/*/*.png`` as ``lots/m/*/*.png``. The names of the folders
    between ``out`` and the target are taken as they are (``[o]verlays`` is no ``overlays``).
    """
    try:
        target = link.resolve()
    except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13): it leads nowhere
        return None
    out = Path(out).resolve()
    if target == out or target in out.parents:
        return link.absolute() / out.relative_to(target) / image
    if out not in target.parents:
        return None
    inside, parts = target.relative_to(out).parts, Path(image).parts
    if len(inside) >= len(parts) or not all(
        name_could_match(glob.escape(name), part) for name, part in zip(inside, parts, strict=False)
    ):
        return None
    return link.absolute().joinpath(*parts[len(inside) :])


def _searched_below(link: Path, written: Path) -> bool:
    """Whether a folder search that reaches ``link`` reads ``written`` (a path through it,
    :func:`images_through_link`): no folder on the way below the link is hidden (``runs/.r1`` through
    ``lots/latest``, a link to ``runs``, is not searched: :func:`common.photo_sources.image_files_below`)."""
    return not any(name.startswith(".") for name in written.relative_to(link.absolute()).parts)


def _links_below(folder: Path) -> list[Path]:
    """The links a search of ``folder`` finds (:func:`common.photo_sources.image_files_below`): visible names
    outside hidden folders, through linked folders, each folder once."""
    links, seen, todo = [], set(), [folder]
    while todo:
        place = todo.pop()
        try:
            stat = place.stat()
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) in seen:
            continue
        seen.add((stat.st_dev, stat.st_ino))
        try:
            entries = list(os.scandir(place))
        except OSError:  # a folder not read: the search (os.walk) passes it over too
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                links.append(Path(entry.path))
            try:
                is_folder = entry.is_dir()
            except OSError:  # a link loop, a target not allowed: os.walk (the search) takes it as no folder
                is_folder = False
            if is_folder:
                todo.append(Path(entry.path))
    return sorted(links)


def _links_in_reach(pattern: str) -> list[Path]:
    """The links a glob ``pattern`` passes through below its leading folder: those its parts before the
    last match (as :func:`glob.glob` reads them: ``**`` every visible folder below, through links)."""
    wild = Path(pattern).parts[len(glob_base(pattern).parts) :]
    links: set[Path] = set()
    for end in range(1, len(wild)):
        prefix = str(Path(glob_base(pattern), *wild[:end]))
        links.update(Path(path) for path in glob.glob(prefix, recursive=True) if os.path.islink(path))
    return sorted(links)


def searched_folder_inside(out: str | Path, pattern: str) -> tuple[Path, Path] | None:
    """``(out, the folder)`` where ``out`` is, or lies inside, a folder the ``**`` of a glob ``pattern``
    searches, resolved or as spelled (made absolute) as :func:`folder_inside` takes them; None elsewhere.

    ``**`` searches the folders the pattern's parts before it reach below its leading folder
    (:func:`common.photo_sources.glob_base`), matched name by name as glob does
    (:func:`common.globs.name_could_match`), and every visible folder below them: ``lots/l*/**/*.png``
    searches ``lots/line_1`` and ``lots/line_1/run``, not ``lots/run`` nor ``lots/line_1/.run``.
    """
    base = glob_base(pattern)
    wild = Path(pattern).parts[len(base.parts) :]  # Path(".").parts is ()
    for place in dict.fromkeys((Path(out).resolve(), Path(out).absolute())):
        for leading in dict.fromkeys((base.resolve().parts, base.absolute().parts)):  # as spelled too
            for ups, parts in _without_parents(wild):
                fixed = leading[: max(len(leading) - ups, 1)]  # '/..' is '/'
                if "**" in parts and (searched := _searched_by(place, fixed, parts)):
                    return place, searched
    return None


def _searched_by(place: Path, leading: Sequence[str], parts: Sequence[str]) -> Path | None:
    """The folder at or above ``place`` whose visible folders the ``**`` of ``parts`` (a pattern's parts
    below its ``leading`` folder, without ``..``) searches, ``place`` among them; None where it is not."""
    prefix = parts[: parts.index("**")]
    fixed = [os.path.normcase(name) for name in place.parts[: len(leading)]]
    rest = place.parts[len(leading) :]
    if fixed != [os.path.normcase(name) for name in leading] or len(rest) < len(prefix) or ".." in rest:
        return None
    if not all(name_could_match(part, name) for part, name in zip(prefix, rest, strict=False)):
        return None
    if any(name.startswith(".") for name in rest[len(prefix) :]):  # '**' goes into no hidden folder
        return None
    return Path(*leading, *rest[: len(prefix)])


def folder_inside(folder: str | Path, root: str | Path) -> tuple[Path, Path] | None:
    """``(folder, root)`` as they were found to be the same folder or one inside the other, resolved
    or as spelled (made absolute), resolved first; None where ``folder`` is not ``root`` nor lies below it.

    Both ways: a folder search follows linked folders under the link's name
    (:func:`common.photo_sources.image_files_below`), so ``lots/latest``, a link to ``runs/r1``, lies inside
    ``lots``. Spelled, a ``..`` below ``root`` leaves the place to the links on the way: taken as not
    inside (``lots/latest/../r2`` is ``runs/r2``).
    """
    for place in dict.fromkeys((Path(folder).resolve(), Path(folder).absolute())):
        for above in dict.fromkeys((Path(root).resolve(), Path(root).absolute())):
            if (place == above or above in place.parents) and ".." not in place.parts[len(above.parts) :]:
                return place, above
    return None


def check_out_of_pattern(
    out: str | Path, source: str | Path, *, later: str, images: Mapping[str, str]
) -> None:
    """Refuses an ``out`` whose images a pattern ``source`` could match (:func:`pattern_could_match`);
    a photo or folder ``source`` passes.

    ``out`` is taken resolved and as spelled (made absolute): glob reads a linked folder under the name
    of the link, so ``--out lots/latest``, a link to ``runs/r1``, is where ``lots/*/*/*.jpg`` reaches.
    An image's file name is a photo's output name, hidden where the pattern names a hidden folder
    (:func:`photo_names_hidden`: ``lots/.*/*/*.jpg`` and ``--out lots/.run`` pass, its overlays being
    ``.cam__a.jpg``, which no pattern matching a photo matches).

    Args:
        out: the output folder.
        source: the ``--source``.
        later: what a later run would do with those images, ``{}`` for what the matched ones are
            (``inspect its {} too``): a run without anomaly maps is not told they would be read.
        images: the image files the command writes in ``out``, each with what it is
            (:func:`check_out_of_photos`).

    Raises:
        UserError: naming ``out``, the pattern, and every image of ``out`` it could match with what
            each is (``overlays and anomaly maps``), not the first alone.
    """
    source = os.path.expanduser(source)  # as photo_files reads it
    if path_exists(source) and (Path(source).is_file() or Path(source).is_dir()):  # as photo_root
        return
    read = pattern_images(out, source, images)
    if read:  # every kind matched, in the first folder that has any (resolved, then as spelled)
        folder = read[0][0]
        matched = [(image, what) for place, image, what in read if place == folder]
        written = ", ".join(str(folder / image) for image, _ in matched)
        raise UserError(
            f"output folder {folder} would hold images ({written}) that the pattern '{source}' "
            f"matches, where a later run would {later.format(listed_kinds([w for _, w in matched]))}; "
            "choose another --out"
        )


def listed_kinds(kinds: Sequence[str]) -> str:
    """``kinds`` each once, in order, joined for a message: ``overlays, maps and masks``.

    >>> listed_kinds(["overlays"]), listed_kinds(["overlays", "masks", "masks", "anomaly maps"])
    ('overlays', 'overlays, masks and anomaly maps')
    """
    kinds = list(dict.fromkeys(kinds))
    return kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"


def pattern_images(out: str | Path, pattern: str, images: Mapping[str, str]) -> list[tuple[Path, str, str]]:
    """``(out, image, what it is)`` for each of ``images`` written in ``out`` that the glob ``pattern``
    could match (:func:`pattern_could_match`), ``out`` resolved, then as spelled (made absolute).

    An image's file name is a photo's output name, hidden where the pattern names a hidden folder
    (:func:`photo_names_hidden`).
    """
    hidden = photo_names_hidden(pattern)
    read = []
    for folder in dict.fromkeys((Path(out).resolve(), Path(out).absolute())):
        for image, what in images.items():
            written = folder / image
            if hidden:  # the file's name is a photo's, hidden as the photo's path below the pattern's folder
                written = written.with_name(f".{written.name}")
            if pattern_could_match(pattern, written):
                read.append((folder, image, what))
    return read


def photo_names_hidden(pattern: str) -> bool:
    """Whether the photos a glob ``pattern`` matches get hidden output names (``.cam__a``).

    A photo's output name is its path below the pattern's leading folder
    (:func:`common.photo_sources.glob_base`), folders joined (:func:`common.folders.output_name`): it starts
    with the name the part after that folder matched, hidden just where that part starts with a dot, as glob
    reads it, and is not the last (a hidden file is no photo: :func:`common.image_files.is_image_file`).

    >>> [photo_names_hidden(p) for p in ("lots/.*/*.jpg", "lots/.cam/*.jpg", "lots/*/*.jpg", "lots/.*")]
    [True, False, False, False]
    """
    wild = Path(pattern).parts[len(glob_base(pattern).parts) :]  # Path(".").parts is ()
    return len(wild) > 1 and wild[0].startswith(".")


def pattern_could_match(pattern: str, image: Path) -> bool:
    """Whether the glob ``pattern``, as :func:`common.photo_sources.photo_files` reads it, could match a file
    ``image`` whose names that vary are ``*`` followed by what ends them (``/lots/run/overlays/*.jpg``:
    any visible name ending in ``.jpg``), or ``.*`` and its end for a hidden one.

    The pattern's leading folder (:func:`common.photo_sources.glob_base`) is taken resolved and as spelled
    (made absolute), as ``image``'s folders are (:func:`check_out_of_pattern` asks of both); its other parts
    are matched name by name as ``glob`` would (:func:`common.globs.name_could_match`: hidden names, the
    platform's case), ``**`` taking any number of visible folders.

    >>> pattern_could_match("/lots/*/*/*.jpg", Path("/lots/run/overlays/*.jpg"))
    True
    >>> pattern_could_match("/lots/*/*/*.png", Path("/lots/run/overlays/*.jpg"))
    False
    >>> pattern_could_match("/lots/*/*.jpg", Path("/lots/run/overlays/*.jpg"))
    False
    """
    base = glob_base(pattern)
    wild = Path(pattern).parts[len(base.parts) :]  # Path(".").parts is ()
    names = Path(image).parts
    for leading in dict.fromkeys((base.resolve().parts, base.absolute().parts)):  # as spelled too
        for ups, parts in _without_parents(wild):
            fixed = leading[: max(len(leading) - ups, 1)]  # '/..' is '/'
            below = [os.path.normcase(name) for name in names[: len(fixed)]] == [
                os.path.normcase(n) for n in fixed
            ]
            if below and _could_match(parts, names[len(fixed) :]):
                return True
    return False


def _without_parents(pattern: Sequence[str]) -> list[tuple[int, tuple[str, ...]]]:
    """The parts of a pattern below its leading folder read without ``..``, as ``(folders up from the
    leading one, parts)``, one pair for each way glob could read them: ``*/..`` is the folder ``*`` was
    in (where a folder matches it: taken as one does), ``**/..`` that or its parent (``**`` took none).

    >>> _without_parents(["*", "..", "run", "*.jpg"]), _without_parents(["**", "..", "*.jpg"])
    ([(0, ('run', '*.jpg'))], [(0, ('**', '*.jpg')), (1, ('*.jpg',))])
    """
    pattern = tuple(pattern)
    if ".." not in pattern:
        return [(0, pattern)]
    i = pattern.index("..")
    if i == 0:  # above the leading folder
        return [(ups + 1, parts) for ups, parts in _without_parents(pattern[1:])]
    if pattern[i - 1] == "**":  # '**' took a folder or more, '..' one back: '**' still; or none, then up
        return [
            *_without_parents(pattern[:i] + pattern[i + 1 :]),
            *_without_parents(pattern[: i - 1] + pattern[i:]),
        ]
    return _without_parents(pattern[: i - 1] + pattern[i + 1 :])


def _could_match(pattern: Sequence[str], names: Sequence[str]) -> bool:
    """:func:`pattern_could_match` on the parts of a pattern and of a file below its leading folder."""
    if pattern and pattern[0] == "**":  # zero or more folders, hidden ones left out (last: files too)
        if _could_match(pattern[1:], names):
            return True
        return bool(names) and not names[0].startswith(".") and _could_match(pattern, names[1:])
    if not pattern or not names:
        return not pattern and not names
    return name_could_match(pattern[0], names[0]) and _could_match(pattern[1:], names[1:])


def check_holds_no_photos(out: str | Path, photos: Iterable[str | Path], *, why: str = "") -> None:
    """Refuses an output folder holding any of ``photos`` (``--overwrite`` would replace it, photos and all).

    A folder ``--source`` is caught by its own check; a pattern (``"lot/*/*.png"``) matches photos
    in folders below its leading one, and any of those may be named as ``--out``.

    Args:
        out: the output folder.
        photos: the photos of the run.
        why: why the folder may not hold one, for the message where it is not ``--overwrite``
            (``detection.predict``'s ``overlays/``: replaced by a run that draws overlays).

    Raises:
        UserError: naming the folder and the first photo in it.
    """
    out = Path(out).resolve()
    for photo in photos:
        if out in Path(photo).resolve().parents:
            reason = f" ({why})" if why else ""
            raise UserError(f"output folder {out} holds the photo {photo}{reason}; choose another --out")
