"""K-fold cross-validation over a data set's defect images: zero-shot vs fine-tuned SAM, mean +- std.

With a handful of test images one train/val/test split gives one noisy number.
Here every defect image of a converted data set (all three of its COCO splits
pooled) is dealt to one of K folds, stratified like the converters' split: the
images of each stratum (category/defect type) are shuffled by a generator
seeded with the seed and the stratum's name, then dealt round-robin, continuing
across strata so the folds stay balanced. Round ``k`` tests on fold ``k``,
selects the epoch on fold ``k + 1`` and trains on the rest, so each defect image
is a test image exactly once. Good (background) images carry no instances and
are left out.

Each round is written as an ordinary data folder (``fold<k>/annotations/
instances_{train,val,test}.json``, ``images`` linked to the data's own) so
``segmentation.train`` runs on it unchanged.

    python -m segmentation.evaluate --data runs/demo/synthetic_nut --folds 5
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.cli import signals_held
from common.errors import UserError, file_error
from common.io import atomic_write, is_stale, is_token, temporary_path, writer_pid
from converters.splits import SPLITS
from segmentation.data import category_difference, check_separate_splits, load_split
from segmentation.run_markers import live_marker

#: A K-fold run folder's record of how its rounds were dealt, written before its first round.
FOLDS_PLAN = "folds_plan.json"
#: A file :func:`drop_earlier_folds_run` puts into the hidden folder of the earlier run before it deletes
#: it: one a failed deletion left hidden is of a run that recorded its first round's training, not of one
#: killed before (:func:`show_killed_asides` said the latter of both).
FOLDS_DROPPED = ".dropped"


@dataclass(frozen=True)
class PooledImage:
    """A defect image of the pooled data set: its COCO image entry and annotations, renumbered.

    Attributes:
        key: ``<split>/<file_name>``, unique in the pool.
        stratum: its defect class (the first annotation's category name).
        image: COCO ``images`` entry with a pool-wide ``id``.
        annotations: its COCO annotations, ``image_id`` and ``id`` renumbered.
    """

    key: str
    stratum: str
    image: dict
    annotations: tuple[dict, ...]


@dataclass(frozen=True)
class Fold:
    """Round ``index`` of a K-fold: pool keys per split."""

    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def __getitem__(self, split: str) -> tuple[str, ...]:
        return getattr(self, split)


def pool_defect_images(data: str | Path) -> tuple[list[PooledImage], list[dict]]:
    """Every defect image of the data set's three COCO splits, renumbered; and the COCO categories of the
    first split with annotations (train's, as a rule).

    Each split is read with :func:`~segmentation.data.load_split` first, so a COCO file edited by hand
    into what the converters never write is refused naming that file, before any round: read raw, it
    failed with a traceback (ids of mixed types) or was refused inside round 0's training, naming the
    round's copy of the file, after an earlier run in the work folder had been removed. The pool copies
    the entries as ``load_split`` read them, so each file is read once.

    Raises:
        UserError: a split's COCO file is missing, unreadable or refused by ``load_split``, or the
            class names by id of the splits with annotations differ (naming the splits and what each
            lists); pooling takes those alone, so entries that differ only in supercategory or order pool,
            and a split without annotations pools nothing whatever it lists.
    """
    splits = [load_split(data, split) for split in SPLITS]
    check_separate_splits(splits)
    # a split without annotations gives the pool nothing: another tool's file of good photos that lists no
    # categories was refused as 'test lists none'
    annotated = [split for split in splits if split.n_instances] or splits
    if difference := category_difference(annotated):
        raise UserError(
            f"the COCO splits of {data} list different categories ({difference}): the pooled folds take "
            "one list, so give every split's COCO file the same categories"
        )
    names = annotated[0].categories
    pooled: list[PooledImage] = []
    next_annotation = 1
    for split in splits:
        by_image = defaultdict(list)
        for annotation in split.dataset["annotations"]:
            by_image[annotation["image_id"]].append(annotation)
        for image in sorted(split.dataset["images"], key=lambda im: im["id"]):
            annotations = by_image.get(image["id"], [])
            if not annotations:
                continue
            new_id = len(pooled) + 1
            renumbered = []
            for annotation in annotations:
                renumbered.append({**annotation, "image_id": new_id, "id": next_annotation})
                next_annotation += 1
            pooled.append(
                PooledImage(
                    key=f"{split.name}/{image['file_name']}",
                    # load_split refused a category_id its file does not list, and each annotated file lists
                    # the first annotated one's
                    stratum=names[annotations[0]["category_id"]],
                    image={**image, "id": new_id},
                    annotations=tuple(renumbered),
                )
            )
    return pooled, annotated[0].dataset["categories"]


def _stratum_rng(seed: int, stratum: str) -> np.random.Generator:
    # The converters' per-stratum generator (converters.splits): one stream per stratum name.
    return np.random.default_rng([seed, zlib.crc32(stratum.encode())])


def check_fold_count(k: int) -> None:
    """Refuses a K below 3 (test, val and train each need a fold), as ``--folds K`` is read.

    Raises:
        UserError: naming K.
    """
    if k < 3:
        raise UserError(f"--folds needs at least 3 folds (test, val and train), got {k}")


def kfold(keys: Sequence[tuple[str, str]], k: int, *, seed: int = 0) -> list[Fold]:
    """Stratified K-fold rounds over ``(key, stratum)`` items (see the module docstring).

    Args:
        keys: one ``(key, stratum)`` per defect image; keys unique.
        k: number of folds, at least 3 (test, val and train each need one).
        seed: the folds are a function of the keys and this seed.

    Returns:
        ``k`` :class:`Fold` s; round ``i`` tests on fold ``i`` and validates on fold ``i + 1``.

    Raises:
        UserError: ``k`` < 3 or more folds than images.

    >>> [f.test for f in kfold([("a", "x"), ("b", "x"), ("c", "y")], 3)]  # doctest: +SKIP
    """
    check_fold_count(k)
    if k > len(keys):
        raise UserError(f"--folds {k} is more folds than the {len(keys)} defect images")
    strata: dict[str, list[str]] = defaultdict(list)
    for key, stratum in keys:
        strata[stratum].append(key)
    folds: list[list[str]] = [[] for _ in range(k)]
    dealt = 0
    for stratum in sorted(strata):
        members = sorted(strata[stratum])
        for index in _stratum_rng(seed, stratum).permutation(len(members)):
            folds[dealt % k].append(members[index])
            dealt += 1
    rounds = []
    for i in range(k):
        val = (i + 1) % k
        train = [key for j in range(k) if j not in (i, val) for key in folds[j]]
        rounds.append(Fold(i, tuple(sorted(train)), tuple(sorted(folds[val])), tuple(sorted(folds[i]))))
    return rounds


def write_fold(
    data: str | Path, pool: list[PooledImage], categories: list[dict], fold: Fold, out: Path
) -> Path:
    """Writes round ``fold`` as a data folder the trainer reads; returns it.

    ``out/annotations/instances_{train,val,test}.json``, ``out/images`` linked to the data's
    image folder, and the data's ``splits.json`` copied (the augmentation policy reads the
    category from it).
    """
    by_key = {image.key: image for image in pool}
    for split in SPLITS:
        chosen = [by_key[key] for key in fold[split]]
        coco = {
            "images": [image.image for image in chosen],
            "annotations": [a for image in chosen for a in image.annotations],
            "categories": categories,
        }
        atomic_write(out / "annotations" / f"instances_{split}.json", json.dumps(coco))
    images = out / "images"
    if not images.exists():
        images.symlink_to((Path(data) / "images").absolute(), target_is_directory=True)
    splits = Path(data) / "splits.json"
    if splits.is_file():
        atomic_write(out / "splits.json", splits.read_text(encoding="utf-8"))
    return out


def deal_folds(
    data: str | Path, k: int, *, seed: int = 0
) -> tuple[list[PooledImage], list[dict], list[Fold]]:
    """The defect images of ``data`` and its categories (:func:`pool_defect_images`), dealt ``k`` folds.

    Raises:
        UserError: a bad data set, or a ``k`` it cannot be dealt (:func:`kfold`).
    """
    pool, categories = pool_defect_images(data)
    return pool, categories, kfold([(image.key, image.stratum) for image in pool], k, seed=seed)


def round_folders(work: Path) -> dict[int, Path]:
    """The ``fold<i>`` folders in a K-fold run folder ``work``, by round index (none if it is missing)."""
    if not work.is_dir():
        return {}
    found = (re.fullmatch(r"fold([0-9]+)", path.name) for path in work.iterdir() if path.is_dir())
    return {int(match[1]): work / match[0] for match in found if match}


#: What a K-fold run folder holds besides its ``fold<i>`` data folders (also a killed run's part).
FOLDS_FILES = frozenset({"folds.json", "folds.md", "folds.png", "runs", FOLDS_PLAN})


#: The marker a K-fold run keeps in its ``--out`` while it runs: ``.folds.<host>-<pid>-<random>.tmp``.
FOLDS_MARK = ".folds.*.tmp"


def check_no_live_folds_run(work: Path, *, own: Path | None = None) -> None:
    """Refuses a ``--out`` that another K-fold run is writing now; removes the marker of a killed one.

    A second ``--folds`` run into the same ``--out`` removed the first one's rounds while it trained
    (``note: replacing the earlier --folds run``), and the first then stopped on a missing COCO file.
    Its marker (:func:`mark_folds_run`) names a live process of this machine, or one of another machine
    (a shared disk) written less than a day ago (:func:`common.io.is_stale`). ``own``: this run's marker,
    the only one of this process: one process runs one ``--folds`` run, so another marker naming it is a
    killed run's whose process id this one was given since; it was skipped as this run's and never removed.

    Raises:
        UserError: naming ``work`` and the process; it says to run again once that run has ended (of two
            runs started at one instant, both may be refused), and which marker to delete where that run is
            known to have ended.
    """
    if not work.is_dir():
        return
    if (marker := live_marker(work, FOLDS_MARK, own=own)) is not None:
        raise UserError(
            f"--out {work} is being written by another --folds run (process {writer_pid(marker)}): wait "
            f"for it to end or stop it, then run this again, or choose another --out; if that run is "
            f"known to have ended, delete its marker {marker}"
        )


def mark_folds_run(work: Path) -> Path:
    """Puts this process's marker into ``work`` (see :func:`check_no_live_folds_run`); returns it."""
    work.mkdir(parents=True, exist_ok=True)
    marker = temporary_path(work / "folds")
    marker.write_text("", encoding="utf-8")
    return marker


def is_folds_run(work: Path) -> bool:
    """``work`` holds an earlier K-fold run (finished or killed) and nothing else."""
    names = {path.name for path in work.iterdir() if not path.match(FOLDS_MARK)}
    rounds = {name for name in names if re.fullmatch(r"fold[0-9]+", name)}
    started = (work / FOLDS_PLAN).is_file() or any((work / name / "annotations").is_dir() for name in rounds)
    return started and names - rounds <= FOLDS_FILES


def clear_folds_run(work: Path) -> None:
    """Removes an earlier K-fold run's files from ``work``: its rounds' data links and runs would be reused.

    Links are removed, never followed (a round's ``images`` links the data set's photos). The markers
    (:data:`FOLDS_MARK`) stay: this run's own is there already, a killed run's went with
    :func:`check_no_live_folds_run`.
    """
    if not (work.is_dir() and any(work.iterdir()) and is_folds_run(work)):
        return
    print(f"note: replacing the earlier --folds run in {work}", file=sys.stderr)
    _remove_run_files(work)


def _remove_run_files(work: Path) -> None:
    """Removes what ``work`` holds but the markers; links removed, never followed."""
    for path in work.iterdir():
        if path.match(FOLDS_MARK):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def set_folds_run_aside(work: Path, earlier: list[Path]) -> None:
    """Moves an earlier K-fold run's files out of ``work`` into a hidden folder beside it (beside the folder
    a link ``work`` points to), ``.<name>.earlier.<host>-<pid>-<random>``, appended to ``earlier``, and says
    where.

    They were deleted at once (:func:`clear_folds_run`): a re-run stopped before its first round's training
    was recorded (a Ctrl-C, a full disk, a setting refused by round 0's training) had lost every trained
    round. They wait there until this run's first round's training is recorded
    (:func:`drop_earlier_folds_run`), or go back when it stops before (:func:`put_back_folds_run`). Where
    they cannot be moved (a parent folder this user cannot write), they are removed as before, and a Ctrl-C
    stops that delete as before (held with the moves, it waited until the whole earlier run was gone). The
    markers (:data:`FOLDS_MARK`) stay.

    ``earlier`` holds the folder before the first move, and a Ctrl-C or ``kill`` during the moves is held
    until they end (:func:`common.cli.signals_held`): one that came after this returned and before the
    caller recorded the folder left the earlier run hidden, never put back, and one amid the moves split it.
    """
    if not (work.is_dir() and any(work.iterdir()) and is_folds_run(work)):
        return
    beside = _beside(work)  # a link to another disk: os.replace cannot move across, it was deleted at once
    aside = temporary_path(beside.with_name(f"{beside.name}.earlier")).with_suffix("")
    with signals_held():
        earlier.append(aside)
        try:
            aside.mkdir()
            for path in work.iterdir():
                if not path.match(FOLDS_MARK):
                    os.replace(path, aside / path.name)
        except OSError:
            _move_back(work, aside)
            earlier.remove(aside)
    if aside not in earlier:  # not held: a Ctrl-C stops this delete, as before
        _clear_unmoved_folds_run(work)
        return
    print(
        f"note: replacing the earlier --folds run in {work}: it is kept in {aside} until this run's "
        "first round's training is recorded, and put back if this run stops before",
        file=sys.stderr,
    )


def _clear_unmoved_folds_run(work: Path) -> None:
    """:func:`clear_folds_run` for an earlier run :func:`set_folds_run_aside` could not move; a stop amid it
    is marked for :func:`segmentation.crossval.earlier_run_back`: the earlier run is part deleted and this
    run trained nothing, so nothing is left to ``--resume`` (the Ctrl-C line told to)."""
    try:
        clear_folds_run(work)
    except BaseException as error:
        error.earlier_run_back = True  # type: ignore[attr-defined]
        raise


def _beside(work: Path) -> Path:
    """Where the hidden folders of ``work``'s earlier runs go: beside the folder it names, links followed."""
    try:
        return work.resolve()
    except (OSError, RuntimeError):  # a link loop: not a folder, nothing set aside there
        return work.absolute()


def _earlier_asides(work: Path) -> list[Path]:
    """The hidden folders beside ``work`` of :func:`set_folds_run_aside` (and their ``.tmp`` being deleted,
    :func:`drop_earlier_folds_run`), by name: ``.<name>.earlier.`` and a token alone, so those of an
    ``--out`` named ``<name>.earlier.x`` are not taken for ``work``'s."""
    beside = _beside(work)
    prefix = f".{beside.name}.earlier."
    found = beside.parent.glob(f"{glob.escape(prefix)}*")  # --out 'nut[1]'
    return sorted(path for path in found if is_token(path.name[len(prefix) :].removesuffix(".tmp")))


def show_killed_asides(work: Path) -> list[Path]:
    """Renames each hidden folder of :func:`set_folds_run_aside` beside ``work`` whose run was killed (its
    process is gone: :func:`common.io.is_stale`) to a visible ``<name>.earlier-<time>`` (``-2``... when
    taken), and says so in a ``note:``; returns them. Removes those a killed run was deleting
    (:func:`drop_earlier_folds_run`'s ``.tmp``), which stayed hidden for ever.

    A run killed before its first round's training was recorded left the earlier run hidden, where no later
    run looked; one holding :data:`FOLDS_DROPPED` was left by a run whose deletion of it failed. One that
    cannot be renamed is named, hidden, in a ``note:`` (once a process: ``evaluate --folds`` looks twice),
    and the run goes on (the rename's error went out as a traceback); a Ctrl-C or ``kill`` is held until
    each note is said (:func:`common.cli.signals_held`).
    """
    shown = []
    for aside in _earlier_asides(work):
        if not aside.is_dir() or aside.is_symlink() or not is_stale(aside):
            continue
        if aside.suffix == ".tmp":
            shutil.rmtree(aside, ignore_errors=True)  # links in it removed, never followed
            continue
        with signals_held():  # a stop right after the rename left a visible folder with no note
            if (target := _show_killed_aside(work, aside)) is not None:
                shown.append(target)
    return shown


#: The hidden folders :func:`_show_killed_aside` could not rename and named in a note, said once a process.
_UNSHOWN: set[Path] = set()


def _show_killed_aside(work: Path, aside: Path) -> Path | None:
    """:func:`show_killed_asides`' work for one hidden folder ``aside``: the visible folder it is renamed
    to, with its note; None where it cannot be (a note names it, hidden)."""
    beside = _beside(work)
    dropped = os.path.lexists(aside / FOLDS_DROPPED)
    how = (
        "a run that recorded its first round's training could not delete it and left it there"
        if dropped
        else "a run killed before its first round's training was recorded left it there"
    )
    try:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(aside.stat().st_mtime))
        target, number = beside.with_name(f"{beside.name}.earlier-{stamp}"), 1
        while os.path.lexists(target):
            number += 1
            target = beside.with_name(f"{beside.name}.earlier-{stamp}-{number}")
        aside.rename(target)
    except OSError as error:
        if aside not in _UNSHOWN:
            _UNSHOWN.add(aside)
            print(
                f"note: {aside} holds an earlier --folds run of {work} and could not be renamed to a visible "
                f"folder ({file_error(error)}): rename or move it by hand to keep it, or delete it; {how}",
                file=sys.stderr,
            )
        return None
    with contextlib.suppress(OSError):  # shown all the same: a hidden file left in it
        (target / FOLDS_DROPPED).unlink(missing_ok=True)
    print(f"note: {target} holds an earlier --folds run of {work}: {how}", file=sys.stderr)
    return target


def _move_back(work: Path, aside: Path, moved: list[str] | None = None) -> None:
    """Moves what ``aside`` holds back into ``work`` (their names appended to ``moved``) and removes
    ``aside`` (missing: nothing to do). A :data:`FOLDS_DROPPED` in it is removed, not moved: in ``work`` it
    is no file of a ``--folds`` run's, and the next run into ``work`` was refused (:func:`is_folds_run`;
    :func:`drop_earlier_folds_run` now empties ``earlier`` before it marks, so none should be there)."""
    if not aside.is_dir():
        return
    for path in sorted(aside.iterdir()):
        if path.name == FOLDS_DROPPED:
            path.unlink()
            continue
        os.replace(path, work / path.name)
        if moved is not None:
            moved.append(path.name)
    aside.rmdir()


def drop_earlier_folds_run(earlier: list[Path]) -> None:
    """Deletes the earlier run :func:`set_folds_run_aside` moved to the folder ``earlier`` holds (none:
    nothing to do), emptied first: this run's first round's training is recorded, so a stop amid the
    deletion puts nothing back over it (a note names the folder left hidden, which the next run shows).
    It was emptied after: a Ctrl-C before the rename put the earlier run back over the recorded round, with
    a note that this run had stopped before its first round's training was recorded. Renamed to a
    temporary first (``<folder>.tmp``), so a kill while it is deleted leaves no part of it to be taken for
    the earlier run (:func:`show_killed_asides` removes it); links in it are removed, never followed.

    Where that fails (a file of it this user cannot delete), a ``note:`` names what is left to delete and
    the run goes on: it stopped after its first round's training, which it had recorded. The temporary was
    named ``.<aside>.<token>.tmp``, too long for the file system with an ``--out`` name of some 200
    characters.
    """
    asides = list(earlier)
    earlier.clear()
    for aside in asides:
        _delete_earlier_run(aside)


def _delete_earlier_run(aside: Path) -> None:
    """:func:`drop_earlier_folds_run`'s work for one hidden folder ``aside`` (missing: nothing to do). Where
    its :data:`FOLDS_DROPPED` cannot be written and it is left hidden, the note says the next run will call
    it a killed run's (the mark's error was suppressed with no word)."""
    if not aside.is_dir():
        return
    left, marked = aside, False
    try:
        marked = _mark_dropped(aside)
        doomed = aside.with_name(f"{aside.name}.tmp")
        aside.rename(doomed)
        left = doomed
        shutil.rmtree(doomed)
    except OSError as error:
        unmarked = (
            "; it could not be marked as this run's, so the next --folds run here will say a run killed "
            "before its first round's training was recorded left it"
            if left == aside and not marked
            else ""
        )
        print(
            f"note: the earlier --folds run this run replaces could not be deleted ({file_error(error)}): "
            f"delete {left} by hand{unmarked}",
            file=sys.stderr,
        )
    except KeyboardInterrupt:
        if left == aside:  # a stop amid the deletion of the .tmp: the next run removes it
            print(
                f"note: the earlier --folds run this run replaces was not deleted (stopped first): delete "
                f"{aside} by hand",
                file=sys.stderr,
            )
        raise


def _mark_dropped(aside: Path) -> bool:
    """Puts :data:`FOLDS_DROPPED` into ``aside`` (:func:`_delete_earlier_run`); False where it cannot."""
    try:
        (aside / FOLDS_DROPPED).touch()
    except OSError:  # left hidden without it, the next run says a killed run left it: the note says so
        return False
    return True


def put_back_folds_run(work: Path, aside: Path | None) -> bool:
    """Puts the earlier run :func:`set_folds_run_aside` moved to ``aside`` back into ``work`` in place of
    this run's files (it stopped before its first round's training was recorded) and says so; True when
    there was one to put back: nothing of this run is left to ``--resume``.

    Where that fails partway, the note says which of its parts are back in ``work`` and which still in
    ``aside`` (it said the whole run was in ``aside``, with part of it back in ``work``).
    """
    if aside is None or not aside.is_dir():
        return False
    moved: list[str] = []
    try:
        _remove_run_files(work)
        _move_back(work, aside, moved)
    except OSError as error:
        print(_put_back_failed_note(work, aside, moved, error), file=sys.stderr)
        return True
    print(
        f"note: this run stopped before its first round's training was recorded: {work} holds the earlier "
        "--folds run again",
        file=sys.stderr,
    )
    return True


def _put_back_failed_note(work: Path, aside: Path, moved: list[str], error: OSError) -> str:
    """The note of :func:`put_back_folds_run` stopped by ``error``, ``moved`` put back."""
    start = (
        "note: this run stopped before its first round's training was recorded; the earlier --folds run "
        "could not be"
    )
    if not moved:
        return f"{start} put back into {work} ({file_error(error)}): it is in {aside}"
    left = sorted(path.name for path in aside.iterdir()) if aside.is_dir() else []
    if not left:  # all back, its emptied folder not removed
        return (
            f"note: this run stopped before its first round's training was recorded: {work} holds the "
            f"earlier --folds run again (its emptied {aside} could not be removed: {file_error(error)})"
        )
    return (
        f"{start} put back whole into {work} ({file_error(error)}): its {', '.join(moved)} are back there, "
        f"its {', '.join(left)} still in {aside}; move those into {work} by hand"
    )


def write_plan(work: Path, k: int, seed: int, settings: dict | None = None) -> None:
    """Records in ``work`` that its rounds are dealt ``k`` folds with ``seed`` and trained with ``settings``
    (:func:`segmentation.crossval.training_settings`; :data:`FOLDS_PLAN`)."""
    plan = {"folds": k, "fold_seed": seed} | ({} if settings is None else {"settings": settings})
    atomic_write(work / FOLDS_PLAN, json.dumps(plan, indent=1, default=str) + "\n")


def read_plan(work: Path) -> dict:
    """``work``'s :data:`FOLDS_PLAN`; ``{}`` when it is missing or unreadable (cut short, edited by hand)."""
    try:
        plan = json.loads((work / FOLDS_PLAN).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return plan if isinstance(plan, dict) else {}


def check_resumable(
    work: Path,
    k: int,
    *,
    seed: int | None = None,
    settings: dict | None = None,
    not_settings: frozenset[str] = frozenset(),
) -> None:
    """Refuses to go on from a run in ``work`` that was dealt another number of folds than ``k``, or
    (given) with another ``seed`` or trained with other ``settings`` than its :data:`FOLDS_PLAN` records.

    ``not_settings``: keys its plan may record that are not compared (recorded when they counted, as
    ``device`` did until 2026-12-07: :data:`segmentation.crossval.NOT_TRAINING_KEYS`).

    None of its rounds could be kept (each round's record is of its fold's keys, which another K
    deals differently), and a run of more folds would leave ``fold<i>`` folders, ``i >= k``, beside
    the new run's rounds and summary. The K is its :data:`FOLDS_PLAN`'s; a run folder from before that
    record is refused only when it holds such a ``fold<i>``. Another seed or other settings trained every
    round again without a word, as ``segmentation.train --resume`` refuses another model or trained parts:
    the rounds of one run are trained alike, so none could be kept (without ``--resume`` they are replaced).

    Raises:
        UserError: one line naming the K the folder holds (or its extra rounds), or the seed and settings
            its rounds were trained with beside those given, and how to go on.
    """
    plan = read_plan(work)
    held = plan.get("folds")
    if type(held) is not int:  # edited by hand ("3", true, 3.0): as unreadable, not "--folds 3, not 3"
        held = None
    how = "drop --resume to replace it, or choose another --out"
    if held is not None and held != k:
        raise UserError(
            f"--resume: {work} holds a run of --folds {held}, not {k}: "
            f"pass --folds {held} to go on from it, {how}"
        )
    extra = [f"fold{index}" for index in sorted(round_folders(work)) if index >= k]
    if held is None and extra:
        raise UserError(
            f"--resume: {work} holds {', '.join(extra)}, rounds of a run of more than --folds {k}: "
            f"pass its --folds to go on from it, {how}"
        )
    changed = []
    if seed is not None and type(plan.get("fold_seed")) is int and plan["fold_seed"] != seed:
        changed.append(f"--fold-seed {plan['fold_seed']} (given {seed})")
    if settings is not None and isinstance(plan.get("settings"), dict):
        recorded = {key: value for key, value in plan["settings"].items() if key not in not_settings}
        changed += changed_settings(recorded, settings)
    if changed:
        raise UserError(
            f"--resume: the rounds in {work} were trained with {', '.join(changed)}: pass the same to go on "
            "from them, drop --resume to train every round again, or choose another --out"
        )


def recorded_checkpoint(config: dict, recorded: object) -> dict:
    """``config`` with its ``checkpoint`` spelt as an earlier run's plan records it (``recorded``: the plan's
    settings) where the two name one file; ``config`` itself otherwise.

    ``--base-checkpoint`` is recorded absolute as typed, ``..`` kept (``segmentation.evaluate``): a relative
    one given from another working folder names the same file in another spelling, and
    :func:`check_resumable` refused it as other settings. The earlier spelling is taken, not a resolved
    one, because the rounds' fingerprints hash it (:func:`segmentation.crossval.round_fingerprint`): the
    rounds trained on that file stay kept. Not where the given spelling opens and the earlier one no longer
    does (``a/../base.pth``, ``a`` removed since: the system opens ``..`` through ``a``, ``resolve`` does
    not need it): the base model, loaded on every resume, would be named missing in a spelling not given,
    so it is refused naming both, as before.
    """
    given = config.get("checkpoint")
    earlier = recorded.get("checkpoint") if isinstance(recorded, dict) else None
    if not isinstance(given, str) or not isinstance(earlier, str) or given == earlier:
        return config
    try:
        same = Path(given).resolve() == Path(earlier).resolve()
    except (OSError, RuntimeError):  # a link loop: compared by spelling, as before
        return config
    if not same or (Path(given).is_file() and not Path(earlier).is_file()):
        return config
    return {**config, "checkpoint": earlier}


def changed_settings(recorded: dict, given: dict) -> list[str]:
    """``key=recorded (given value)`` for each setting, nested ones dotted, that differs; as JSON spells
    them (``null``, ``true``), as the command line takes them.

    >>> changed_settings({"lr": 1e-4, "loss": {"dice": 1}}, {"lr": 1e-4, "loss": {"dice": 2}, "seed": 0})
    ['loss.dice=1 (given 2)', 'seed=unset (given 0)']
    """
    before, after = _flat(recorded), _flat(json.loads(json.dumps(given, default=str)))
    keys = [*after, *(key for key in before if key not in after)]
    return [
        f"{key}={_spelt(before.get(key, UNSET))} (given {_spelt(after.get(key, UNSET))})"
        for key in keys
        if before.get(key, UNSET) != after.get(key, UNSET)
    ]


#: A setting one side does not hold (a key a later version added), spelt ``unset``.
UNSET = object()


def _flat(settings: dict, prefix: str = "") -> dict:
    """``settings``, nested dicts' keys dotted (``loss.resolution``), as ``key=value`` overrides name them."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _spelt(value) -> str:
    if value is UNSET:
        return "unset"
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)
