"""A fine-tuning's run folder: its name, ``results.csv``, ``curves.png`` and the resumable ``last.pt``.

Written by rank 0 of :mod:`segmentation.train`; every writer is atomic, so a run killed
mid-write leaves the previous file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import numbers
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from common.cli import signals_held
from common.config import save_config
from common.errors import UserError, file_error, one_line
from common.folders import check_not_inside, check_output_folder, check_run_name
from common.io import (
    FOREIGN_STALE_S,
    atomic_write,
    is_token,
    load_torch,
    remove_stale,
    temporary_path,
    writer_pid,
    written_here,
)
from common.trained_images import record_trained_images
from segmentation.distributed import Dist, from_main
from segmentation.run_markers import live_marker, names_this_process


def next_run_dir(out: Path, name: str) -> Path:
    """``out/name``, or ``out/name2``, ``name3``... when taken (ultralytics' convention)."""
    candidate, n = out / name, 2
    while candidate.exists():
        candidate, n = out / f"{name}{n}", n + 1
    return candidate


def make_run_dir(out: Path, name: str) -> Path:
    """Creates and returns :func:`next_run_dir`'s folder; one another run created first is passed over.

    Two runs started together both found ``out/name`` free and trained into it, each overwriting the
    other's ``last.pt``, ``decoder.pt`` and ``results.csv``.
    """
    out.mkdir(parents=True, exist_ok=True)
    while True:
        folder = next_run_dir(out, name)
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder


#: The marker a training keeps in its run folder while it runs: ``.training.<host>-<pid>-<random>.tmp``,
#: holding the name of its machine (the name's ``<host>`` is a hash of it).
TRAINING_MARK = "training"
#: How often a running training touches its marker (:func:`refresh_training_mark`), in seconds: far less
#: than :data:`common.io.FOREIGN_STALE_S` (24 h), the age at which another machine's marker counts as stale.
MARK_REFRESH_S = 600.0


def check_not_training(folder: Path, *, own: Path | None = None) -> None:
    """Refuses a run folder that another training is writing now (``exist_ok``, ``--resume``).

    Its marker names a process that is alive; a marker of a killed run is removed (:func:`common.io.is_stale`;
    one of another host, on a shared disk, counts as alive for a day after it was last touched, which a
    running training does every :data:`MARK_REFRESH_S`: :func:`refresh_training_mark`). Both runs wrote
    ``last.pt``, ``decoder.pt`` and ``results.csv`` in turn, and the folder held a mix of the two.

    ``own``: this training's marker (:func:`hold_run_folder`), the only one skipped. A process runs one
    training at a time and removes its marker when that ends (:func:`unmark_training`), so another marker
    of this machine naming this process is a killed training's whose process id this one was given since:
    removed. One of another machine naming the same id is judged as any other machine's. Every
    marker naming this process's id was skipped: such a marker was never removed, nor a live one of
    another machine refused.

    Raises:
        UserError: naming the folder, the process and its machine; it says to run again once that run has
            ended (of two trainings started at one instant, both may be refused: :func:`hold_run_folder`),
            and the marker to delete by hand when that run is known to have ended.
    """
    if (marker := live_marker(folder, f".{TRAINING_MARK}.*.tmp", own=own)) is not None:
        raise UserError(training_refusal(folder, marker, writer_pid(marker)))


def training_refusal(folder: Path, marker: Path, pid: int | None) -> str:
    """:func:`check_not_training`'s message for the live ``marker`` of process ``pid``.

    It said "process <pid>" alone: a run on another machine, or one whose marker outlived it there, held
    the folder for a day without a word on whose it was, why, or that deleting the marker frees it. It
    said "wait for it to end" and no more: of two trainings started at one instant both may be refused,
    and neither then trains; it says to run this again once that run has ended, as ``--folds`` does.
    """
    way = f"if that run is known to have ended, delete its marker {marker}"
    if written_here(marker):
        return (
            f"run folder {folder} is being written by another training (process {pid} on this machine): "
            f"wait for it to end or stop it, then run this again, or train into another name=; {way}"
        )
    try:  # an older version's marker is empty
        host = marker.read_text(encoding="utf-8").partition("\n")[0].strip() or "another machine"
        since = f", marker refreshed {(time.time() - marker.stat().st_mtime) / 3600:.1f} h ago"
    except (OSError, UnicodeDecodeError):  # gone meanwhile
        host, since = "another machine", ""
    return (
        f"run folder {folder} is being written by another training (process {pid} on {host}{since}; a "
        f"marker of another machine counts as alive until {FOREIGN_STALE_S / 3600:.0f} h without a refresh, "
        f"a running training refreshes it every {MARK_REFRESH_S / 60:.0f} min): wait for it to end, "
        f"then run this again, or train into another name=; {way}"
    )


def mark_training(folder: Path) -> Path:
    """Puts this process's marker into ``folder`` (see :func:`check_not_training`); returns it."""
    marker = temporary_path(folder / TRAINING_MARK)
    # atomic: a full disk was a traceback (an OSError naming no file) and left an empty marker
    atomic_write(marker, f"{socket.gethostname()}\n")
    return marker


def hold_run_folder(folder: Path) -> Path:
    """Puts this training's marker into ``folder``, then refuses the folder to another training writing
    there now (:func:`check_not_training`); returns the marker, removed again when refused.

    Marked before the check: of two trainings started at one instant into one folder (``exist_ok``,
    ``--resume``), each found no marker when it checked and then marked, and both trained into it; now the
    later of the two marks sees the other's, so one or both are refused.
    """
    marker = mark_training(folder)
    try:
        check_not_training(folder, own=marker)
    except UserError:
        marker.unlink(missing_ok=True)
        raise
    return marker


def refresh_training_mark(folder: Path, *, now: float | None = None) -> None:
    """Touches this process's markers in ``folder`` that are older than :data:`MARK_REFRESH_S`.

    A marker was written once: a training on another machine (whose process cannot be looked up) that
    ran past :data:`common.io.FOREIGN_STALE_S` looked stale, and a second training took its folder over.
    The training loop calls this between steps and after each epoch's validation, so a live run's marker
    is never older than ``MARK_REFRESH_S`` plus one step or one validation; 10 min against 24 h leaves a
    slow validation and clocks of the two machines that disagree by hours room. Cheap (a listing of
    the run folder and a ``stat``); a marker deleted by hand (to free the folder) is not made again.

    Args:
        folder: the run folder.
        now: the time to judge the markers' age by (tests); the clock when None.
    """
    now = time.time() if now is None else now
    for marker in folder.glob(f".{TRAINING_MARK}.*.tmp"):
        if not names_this_process(marker):  # another machine's with this id: refreshed, it never went stale
            continue
        with contextlib.suppress(FileNotFoundError):
            if now - marker.stat().st_mtime >= MARK_REFRESH_S:
                os.utime(marker)


#: What a training writes into its folder before epoch 0 is recorded in ``last.pt``.
UNSTARTED_NAMES = ("args.yaml", "trained_images.json")


def discard_unstarted(folder: Path) -> None:
    """Removes the run folder of a training stopped before epoch 0 was recorded, and says so on stderr.

    It held ``args.yaml`` alone (and ``trained_images.json``): it read as a run, with nothing to ``--resume``,
    and the same command again trained into the next name. A folder holding anything else (``last.pt``,
    another process's file) is left as it is.
    """
    if not folder.is_dir() or any(
        path.name not in UNSTARTED_NAMES and not path.name.startswith(".")  # its marker, a temporary
        for path in folder.iterdir()
    ):
        return
    shutil.rmtree(folder, ignore_errors=True)
    note = f"stopped before epoch 0 was recorded: removed its run folder {folder}"
    print(note, file=sys.stderr, flush=True)


def unmark_training(folder: Path) -> None:
    """Removes this process's markers from ``folder``: its training ended (finished, failed or stopped).

    Those of this machine alone: another machine's training with the same process id lost its marker.
    """
    for marker in folder.glob(f".{TRAINING_MARK}.*.tmp"):
        if names_this_process(marker):
            marker.unlink(missing_ok=True)


def plot_curves(rows: list[dict], path: Path) -> None:
    """Train loss and val IoU per epoch to a PNG (:func:`curves_figure`)."""
    import matplotlib.pyplot as plt

    fig = curves_figure(rows)
    atomic_write(path, lambda file: fig.savefig(file, format="png", dpi=100))
    plt.close(fig)


def curves_figure(rows: list[dict]):
    """The figure of :func:`plot_curves`: epochs on whole-number ticks (matplotlib's own put 0.25
    steps under a run of two epochs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, MaxNLocator

    epochs = [r["epoch"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [r["train_loss"] for r in rows], marker="o")
    left.set(title="train loss", xlabel="epoch")
    right.plot(epochs, [r["val_iou"] for r in rows], marker="o", color="tab:green", label="per-image IoU")
    right.plot(epochs, [r["val_mask_ap"] for r in rows], marker="s", color="tab:orange", label="mask AP")
    right.set(title="validation", xlabel="epoch", ylim=(0, 1))
    right.legend(loc="lower right")
    for axes in (left, right):  # a few epochs: each marked (one epoch alone had ticks at +-0.015)
        axes.xaxis.set_major_locator(FixedLocator(epochs) if len(epochs) <= 12 else MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def write_results(rows: list[dict], path: Path) -> None:
    """``results.csv``: one row per epoch, columns in the rows' key order."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, text.getvalue())


#: What ``last.pt`` must hold to resume (``prompt_encoder`` is optional: None unless trained).
RESUME_KEYS = ("mask_decoder", "optimizer", "scheduler", "epoch", "best_iou", "stale", "step", "rows")


def _is_whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)  # numpy's ints too


def _is_count(value: object) -> bool:
    return _is_whole(value) and value >= 0


#: What every ``results.csv`` row of a run holds and a resumed run reads (its curves, its kept epoch).
ROW_KEYS = frozenset({"epoch", "train_loss", "val_iou", "val_mask_ap"})


#: What each run-state entry of ``last.pt`` is (a test of it, and its kind for the message), read before
#: the data set: a foreign file's entry of another kind was a traceback (``int()`` of ``epoch``, the rows
#: or ``best_iou`` of a run whose ``decoder.pt`` is gone, an ``AttributeError`` on ``classes`` once the
#: data set was read). ``classes`` is None in a ``last.pt`` written before the class names were recorded.
RESUME_KINDS: dict[str, tuple[Callable[[object], bool], str]] = {
    # -1 in the last.pt of a run stopped during epoch 1; below it, the run went on from an epoch before 0
    "epoch": (lambda v: _is_whole(v) and v >= -1, "a whole number of -1 or more"),
    "stale": (_is_count, "a whole number of 0 or more"),
    "step": (_is_count, "a whole number of 0 or more"),
    "best_iou": (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"),
    "rows": (lambda v: isinstance(v, list), "a list of results.csv rows"),  # each row: _row_fault
    "classes": (
        lambda v: v is None or (isinstance(v, dict) and all(isinstance(names, dict) for names in v.values())),
        "the class names of each split",
    ),
}


def read_resume_state(folder: Path) -> dict:
    """``folder/last.pt``, checked to hold a whole training state.


    Raises:
        UserError: missing, unreadable (a run killed by a full disk, a foreign file), incomplete, or
            holding an entry of another kind (:data:`RESUME_KINDS`) or a row that is no results.csv row
            (:func:`_row_fault`).
    """
    path = folder / "last.pt"
    # Our own file with the optimiser state in it: loading it runs pickled code (weights_only=False).
    state = load_torch(path, what="resume state", weights_only=False)
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a training state written by segmentation.train")
    missing = [key for key in RESUME_KEYS if key not in state]
    if missing:
        raise UserError(f"{path} is not a whole training state: it lacks {', '.join(missing)}")
    for key, (fits, kind) in RESUME_KINDS.items():
        if not fits(value := state.get(key)):
            raise UserError(
                f"{path} is not a training state written by segmentation.train: its {key!r} is "
                f"{one_line(repr(value), limit=60)}, not {kind}: start a new run without --resume"
            )
    if fault := _row_fault(state["rows"]):
        raise UserError(
            f"{path} is not a training state written by segmentation.train: {fault}: start a new run "
            "without --resume"
        )
    return state


def _row_fault(rows: list) -> str | None:
    """What is wrong with the first of ``rows`` (``last.pt``'s results.csv rows) that is no such row,
    ``its row 2 of 'rows' lacks val_iou, val_mask_ap``; None when each is one."""
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            return f"its row {number} of 'rows' is {one_line(repr(row), limit=60)}, not a results.csv row"
        if missing := sorted(ROW_KEYS - row.keys()):
            return f"its row {number} of 'rows' lacks {', '.join(missing)}"
    return None


def run_name(config: dict) -> str:
    """The run folder's name under ``out``: ``name``, or ``<model>_<data folder name>``."""
    return config["name"] or f"{config['model']}_{Path(config['data']).name}"


def check_run_dir(config: dict, resume: Path | None) -> None:
    """Refuses, before any work, an ``out`` (or with ``exist_ok`` the run folder, or a ``cache_dir``) that
    a file blocks."""
    if config.get("cache_dir"):
        check_output_folder(config["cache_dir"], flag="cache_dir")
        if config.get("data"):  # a cache in the data set is in the way of its re-conversion
            check_not_inside(config["cache_dir"], config["data"], flag="cache_dir=")
    if resume is not None:  # it holds last.pt: a folder
        check_not_training(resume)
        return
    check_run_name(config["name"], inside="out")
    out = check_output_folder(config["out"], flag="out")
    if config.get("data"):
        check_not_inside(out, config["data"], flag="out=")
    if config["exist_ok"]:
        check_output_folder(out / run_name(config), flag="run folder")
        check_not_training(out / run_name(config))
        if config.get("data"):  # out=<its parent> name=<its name>: the run's files went into the data set
            check_not_inside(out / run_name(config), config["data"], flag="name= (exist_ok reuses out/name)")


#: What an earlier run in a folder reused with ``exist_ok`` wrote, set aside before this run starts
#: (:func:`set_earlier_aside`): a Ctrl-C in its epoch 1 left that run's ``sam_finetuned.pth`` and
#: ``curves.png`` beside this run's ``args.yaml`` and zero-shot ``decoder.pt`` (evaluating the one scored
#: the other run under this one's name).
EARLIER_RUN_FILES = (
    "last.pt",
    "decoder.pt",
    "sam_finetuned.pth",
    "colour_head.json",
    "results.csv",
    "curves.png",
)
#: The hidden folder of :func:`set_earlier_aside`: ``.earlier.<host>-<pid>-<random>``.
EARLIER_ASIDE = ".earlier.*"


#: A file in a hidden folder of :func:`set_earlier_aside` whose files :func:`drop_earlier` keeps.
EARLIER_KEPT = ".kept"
#: A file :func:`drop_earlier` puts into that hidden folder before it deletes (or shows) it: one left
#: hidden with it is of a run that saved its first epoch, not of a training killed before its first save
#: (:func:`show_earlier` said the latter of both).
EARLIER_DROPPED = ".dropped"

#: The hidden folder :func:`set_earlier_aside` made in each run folder, by run folder, until
#: :func:`drop_earlier` or :func:`put_back_earlier` takes it: those act on it alone. They took each hidden
#: folder named by this process's host and id: a killed run's, its id given again, was put back over the
#: run folder, and one that :func:`drop_earlier` could not rename at this run's first save was put back
#: over this run's saved files at a later stop.
_SET_ASIDE: dict[Path, Path] = {}


def _key(folder: Path) -> Path:
    """:data:`_SET_ASIDE`'s key for ``folder``: its resolved path (keyed as spelt, ``runs/x`` set aside was
    not found as ``/abs/runs/x`` or through a link, and the earlier run's files were never put back)."""
    try:
        return folder.resolve()
    except (OSError, RuntimeError):  # a link loop: keyed as spelt, made absolute
        return folder.absolute()


def set_earlier_aside(folder: Path, *, keep: bool = False) -> None:
    """Moves the earlier run's files (:data:`EARLIER_RUN_FILES`, ``args.yaml``, ``trained_images.json``) into
    a hidden folder of this process, where they wait until this run's first save (:func:`drop_earlier`) or
    go back when it stops before (:func:`put_back_earlier`).

    They were deleted at once: a re-run that failed before it saved anything (a full disk, a Ctrl-C) had
    lost the earlier run's trained decoder. ``keep`` (:func:`show_earlier` found a killed training's
    folder): they are shown at the first save, or at a stop before it, not deleted or put back
    (:data:`EARLIER_KEPT`); a kill during these moves left some of the earlier run's files in the run folder,
    among them at times its trained decoder. A Ctrl-C or ``kill`` during the moves is held until they end
    (:func:`common.cli.signals_held`): a second one while a stopped set-aside moved them back left some in
    the hidden folder and the rest in the run folder, with no note.
    """
    names = [name for name in (*EARLIER_RUN_FILES, *UNSTARTED_NAMES) if os.path.lexists(folder / name)]
    if not names:
        return
    aside = temporary_path(folder / "earlier").with_suffix("")  # no .tmp: remove_stale must not take it
    with signals_held():
        aside.mkdir()
        try:
            if keep:
                (aside / EARLIER_KEPT).touch()
            for name in names:
                os.replace(folder / name, aside / name)
            _SET_ASIDE[_key(folder)] = aside  # a stop held until here raises below: the caller puts them back
        except BaseException:
            try:
                _put_back(folder, aside, replaced=())
            except OSError as again:  # the caller's put-back removed what the hidden folder lacked
                _show_split(folder, aside, again)
            raise


def _show_split(folder: Path, aside: Path, error: OSError) -> None:
    """Shows ``aside`` (:func:`_show`), some of the earlier run's files, whose move back into ``folder``
    ``error`` stopped, and says where which are.

    It stayed hidden, and the stopped run's put-back (:func:`put_back_earlier`) removed from ``folder`` the
    earlier run's files ``aside`` lacked, taking them for this run's. Where it cannot be shown either, the
    note names it hidden; it is never put back (not in :data:`_SET_ASIDE`).
    """
    try:
        shown = _show(folder, aside)
    except OSError:  # left hidden: the put-back deleted the earlier files it lacked, as above
        shown = aside
    held = ", ".join(sorted(path.name for path in shown.iterdir() if path.name != EARLIER_KEPT))
    print(f"note: the earlier run's files could not be set aside whole nor put back ({file_error(error)}): "
          f"its {held} are in {shown}, the rest still in {folder}", file=sys.stderr, flush=True)  # fmt: skip


def _asides(folder: Path) -> list[Path]:
    """The hidden folders of :func:`set_earlier_aside` in ``folder``, by name: ``.earlier.`` and a token
    alone (a folder of the user's named ``.earlier.notes`` was shown as the earlier run's files)."""
    found = sorted(folder.glob(EARLIER_ASIDE))
    return [path for path in found if is_token(path.name.removeprefix(".earlier."))]


def show_earlier(folder: Path) -> bool:
    """Renames each hidden folder of :func:`set_earlier_aside` to a visible ``earlier-<time>`` (``-2``,
    ``-3``... when taken) and says so in a ``note:``; True when any was a killed training's.

    Called once this training holds ``folder``, before it sets anything aside: each is of a training killed
    before its first save (a live one holds the marker), whatever host and process id it names (this
    process's too: its id was given again), or, holding :data:`EARLIER_DROPPED`, of one whose first save was
    made and whose :func:`drop_earlier` failed (said as a killed one's, untruly). Never put back: a process
    id in use again, or another machine's name, kept it hidden under a later run, whose files it then
    replaced; and a killed run's ``last.pt`` beside the earlier run's ``args.yaml`` was resumed under the
    wrong config. One that cannot be renamed is named, hidden, in a ``note:`` on stderr, and the run goes on
    (the error went out with no word of whose files it holds). A Ctrl-C or ``kill`` is held until each note
    is said (:func:`common.cli.signals_held`): one right after a rename left a visible folder with no note.
    """
    asides = [aside for aside in _asides(folder) if aside.is_dir()]
    killed = False
    for aside in asides:
        dropped = os.path.lexists(aside / EARLIER_DROPPED)
        killed = killed or not dropped
        how = _hidden_how(dropped, kept=os.path.lexists(aside / EARLIER_KEPT))
        with signals_held():  # a stop right after the rename left a visible folder with no note
            try:
                shown = _show(folder, aside)
            except OSError as error:
                print(f"note: {aside} holds the earlier run's files and could not be renamed to a visible "
                      f"folder ({file_error(error)}): rename or move it by hand to keep them, or delete it; "
                      f"{how}", file=sys.stderr, flush=True)  # fmt: skip
                continue
            print(f"note: {shown} holds the earlier run's files: {how}", flush=True)
    return killed


def _hidden_how(dropped: bool, *, kept: bool = False) -> str:
    """How a hidden folder of :func:`set_earlier_aside` came to be left (:func:`show_earlier`): by a run
    that saved its first epoch (``dropped``, :data:`EARLIER_DROPPED`), or by one killed before. Its files
    ``kept`` (:data:`EARLIER_KEPT`) by a run that saved: that run tried to show them, not to remove them,
    and they may be the earlier run's trained decoder (said as removed ones, with no word of it).

    >>> _hidden_how(True)
    'a training saved its first epoch in their place but could not remove them and left them here'
    """
    if dropped and kept:
        return (
            "a training saved its first epoch in their place but could not show them and left them here; a "
            "killed training's folder was found, so they may be the earlier run's trained decoder.pt"
        )
    if dropped:
        return "a training saved its first epoch in their place but could not remove them and left them here"
    return (
        "a training killed before its first save left them here; the run folder's own files are the killed "
        "run's (its decoder.pt may be untuned)"
    )


def _show(folder: Path, aside: Path) -> Path:
    """Renames the hidden ``aside`` to a visible ``earlier-<time>`` (``-2``... when taken); returns it.

    Its :data:`EARLIER_KEPT` is deleted after the rename: deleted before, a failed rename (or a stop
    between) left a hidden folder of this process that a stop's put-back took for files to put back.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(aside.stat().st_mtime))
    shown, number = folder / f"earlier-{stamp}", 1
    while os.path.lexists(shown):
        number += 1
        shown = folder / f"earlier-{stamp}-{number}"
    aside.rename(shown)
    for marker in (EARLIER_KEPT, EARLIER_DROPPED):
        with contextlib.suppress(OSError):  # shown all the same: a hidden file left in it
            (shown / marker).unlink(missing_ok=True)
    return shown


def put_back_earlier(folder: Path) -> list[Path | str]:
    """Puts the earlier run's files this process set aside back into ``folder``, replacing this run's files
    of those names (its run stopped before its first save); returns where they are now (none: none were
    set aside), for :func:`earlier_files_note`: ``folder``, a visible folder, or where a put-back failed
    partway, what of them is where (:func:`_put_back_failed`).

    Those set aside with ``keep`` (:func:`set_earlier_aside`) are shown as at the first save
    (:func:`_show`, its visible folder returned), never put back: they went back among a killed training's
    leftovers, and the next ``exist_ok`` run set that mix aside as its earlier run's and deleted it at its
    first save. A Ctrl-C or ``kill`` during the moves is held until they end (:func:`common.cli.signals_held`)
    and raised after the note is said: a second one amid them split the earlier run between ``folder`` and
    its hidden folder, with no note. Only the hidden folder :func:`set_earlier_aside` made is put back
    (:data:`_SET_ASIDE`): none once :func:`drop_earlier` took it at this run's first save, whatever is
    left of it, for this run's saved files are the ones to keep.
    """
    where: list[Path | str] = []
    try:
        with signals_held():
            aside = _SET_ASIDE.pop(_key(folder), None)
            if aside is not None and aside.is_dir():
                where.append(_put_back_one(folder, aside))
    except KeyboardInterrupt:  # held until the moves ended: the caller's note is not reached
        if where:
            print(earlier_files_note(folder, where), file=sys.stderr, flush=True)
        raise
    return where


def _put_back_one(folder: Path, aside: Path) -> Path | str:
    """:func:`put_back_earlier`'s work for one hidden folder ``aside``; returns its entry (a kept one that
    cannot be shown: named, hidden; the rename's error went out of the stop, with no note)."""
    if (aside / EARLIER_KEPT).exists():
        try:
            return _show(folder, aside)
        except OSError as error:
            return _left_note(aside, error, kept=True).removeprefix("note: ")
    moved: list[str] = []
    try:
        _put_back(folder, aside, replaced=(*EARLIER_RUN_FILES, *UNSTARTED_NAMES), moved=moved)
    except OSError as error:
        with contextlib.suppress(OSError):  # shown: the next run took a hidden one for a killed run's
            aside = _show(folder, aside)
        return _put_back_failed(folder, aside, moved, error)
    return folder


def _put_back_failed(folder: Path, aside: Path, moved: list[str], error: OSError) -> str:
    """:func:`earlier_files_note`'s words on the earlier files in ``aside`` (shown where it could be) whose
    put-back into ``folder`` ``error`` stopped, ``moved`` back (it raised the error, with no word of which
    were where)."""
    left: list[str] = []
    with contextlib.suppress(OSError):  # gone or unreadable: named as holding none
        left = sorted(path.name for path in aside.iterdir() if path.name != EARLIER_KEPT)
    if not moved:
        return f"the files it found there could not be put back ({file_error(error)}): they are in {aside}"
    if not left:
        return (
            f"{folder} holds the files it found there again (its emptied {aside} could not be removed: "
            f"{file_error(error)})"
        )
    return (
        f"the files it found there could not be put back whole ({file_error(error)}): its {', '.join(moved)} "
        f"are back in {folder}, its {', '.join(left)} still in {aside}; move those into {folder} by hand"
    )


def earlier_files_note(folder: Path, where: list[Path | str]) -> str:
    """The ``note:`` of a run in ``folder`` stopped before its first save, whose earlier files are now in
    ``where`` (:func:`put_back_earlier`; its words where a put-back failed partway are said as they are).

    Files set aside with ``keep`` were shown with a note on stdout alone: ``segmentation.train``'s stop note
    on stderr was not said, nor where the earlier run's trained decoder had gone.

    >>> earlier_files_note(Path("runs/a"), [Path("runs/a")])
    'note: this run stopped before its first save: runs/a holds the files it found there again'
    """
    held = [
        place
        if isinstance(place, str)
        else f"{folder} holds the files it found there again"
        if place == folder
        else f"{place} holds the files it set aside, kept: a killed training's folder was found, so they may "
        "be the earlier run's trained decoder.pt"
        for place in where
    ]
    return f"note: this run stopped before its first save: {'; '.join(held)}"


def _put_back(
    folder: Path, aside: Path, *, replaced: tuple[str, ...], moved: list[str] | None = None
) -> None:
    """Moves ``aside``'s files back into ``folder`` (their names appended to ``moved``); removes there the
    files named in ``replaced`` that ``aside`` lacks (this run's, where the earlier run had none), then
    ``aside``."""
    for name in replaced:
        if not os.path.lexists(aside / name):
            (folder / name).unlink(missing_ok=True)
    (aside / EARLIER_KEPT).unlink(missing_ok=True)
    for path in sorted(aside.iterdir()):
        os.replace(path, folder / path.name)
        if moved is not None:
            moved.append(path.name)
    aside.rmdir()


def drop_earlier(folder: Path) -> None:
    """Deletes the earlier run's files this process set aside: its run has saved its first epoch.

    Renamed to a temporary first: a kill while it is deleted leaves no part of it to be put back (the
    next run's :func:`common.io.remove_stale` removes it). Those set aside with ``keep``
    (:func:`set_earlier_aside`) are renamed to a visible ``earlier-<time>`` instead. Where the deletion
    fails (a file of it this user cannot delete), a ``note:`` names what is left to delete and the run
    goes on: it was left, hidden, with no word (a ``sam_finetuned.pth`` of a ``vit_h`` is 2.5 GB). Where
    the rename fails, or a Ctrl-C comes before it, they stay in their hidden folder, named in a ``note:``,
    and are never put back (taken from :data:`_SET_ASIDE` before any move): the error went out of the run's
    first save and the put-back replaced this run's saved ``decoder.pt``, ``last.pt`` and ``results.csv``
    with the earlier run's. Marked :data:`EARLIER_DROPPED` first: one left hidden was shown by the next run
    as a training's killed before its first save; where the mark cannot be written, the note says the next
    run will say so all the same. A stop while it is written is noted as one during the deletion (it went
    out with no note).
    """
    aside = _SET_ASIDE.pop(_key(folder), None)
    if aside is None or not aside.is_dir():
        return
    kept, marked = (aside / EARLIER_KEPT).exists(), False
    try:  # the mark inside: a stop while it was written went out with no note
        marked = _mark_dropped(aside)
        if kept:
            _show_kept(folder, aside)
        else:
            _delete_aside(aside)
    except (OSError, KeyboardInterrupt) as error:
        if os.path.lexists(aside):  # a stop amid the deletion of the renamed one: remove_stale's
            note = _left_note(aside, error, kept=kept)
            if not marked:  # the next run's show_earlier cannot tell them from a killed training's
                note += (
                    "; they could not be marked as this run's, so the next run here will say a training "
                    "killed before its first save left them"
                )
            print(note, file=sys.stderr, flush=True)
        if not isinstance(error, OSError):
            raise


def _mark_dropped(aside: Path) -> bool:
    """Puts :data:`EARLIER_DROPPED` into ``aside`` (:func:`drop_earlier`); False where it cannot."""
    try:
        (aside / EARLIER_DROPPED).touch()
    except OSError:  # left hidden without it, it is said as a killed run's (drop_earlier's note says so)
        return False
    return True


def _left_note(aside: Path, error: BaseException, *, kept: bool) -> str:
    """The note that :func:`drop_earlier` left the earlier run's files in ``aside``, ``error`` (an
    ``OSError``, or a stop) before it deleted them (or showed them: ``kept``).

    >>> _left_note(Path("a/.e"), KeyboardInterrupt(), kept=False)
    "note: the earlier run's files this run replaces were not deleted (stopped first): delete a/.e by hand"
    """
    why = file_error(error) if isinstance(error, OSError) else "stopped first"
    if kept:
        return (
            f"note: the files this run set aside, kept, could not be shown ({why}): they are in {aside}; "
            "a killed training's folder was found, so they may be the earlier run's trained decoder.pt"
        )
    done = "could not be deleted" if isinstance(error, OSError) else "were not deleted"
    return f"note: the earlier run's files this run replaces {done} ({why}): delete {aside} by hand"


def _delete_aside(aside: Path) -> None:
    """Deletes the hidden folder ``aside`` (:func:`drop_earlier`), renamed to a temporary first; a note
    names what is left where the deletion fails."""
    doomed = temporary_path(aside)
    aside.rename(doomed)
    try:
        shutil.rmtree(doomed)  # links in it removed, never followed
    except OSError as error:
        why = file_error(error)
        print(f"note: the earlier run's files this run replaces could not be deleted ({why}): delete "
              f"{doomed} by hand", file=sys.stderr, flush=True)  # fmt: skip


def _show_kept(folder: Path, aside: Path) -> None:
    """Shows ``aside``, set aside with ``keep``, as a visible ``earlier-<time>`` (:func:`_show`); notes it.
    A Ctrl-C or ``kill`` is held until the note is said (:func:`common.cli.signals_held`)."""
    with signals_held():
        shown = _show(folder, aside)
        print(f"note: {shown} holds the files this run set aside, kept: a killed training's folder was "
              "found, so they may be the earlier run's trained decoder.pt", flush=True)  # fmt: skip


def renumbered_note(asked: Path, folder: Path) -> str:
    """The note that a run trains into ``folder`` because ``asked`` (``out/name``) is taken.

    >>> renumbered_note(Path("runs/sam/nut"), Path("runs/sam/nut2"))
    'note: runs/sam/nut is taken: this run trains into runs/sam/nut2 (exist_ok=true reuses runs/sam/nut)'
    """
    return f"note: {asked} is taken: this run trains into {folder} (exist_ok=true reuses {asked})"


def prepare_run_dir(
    config: dict, world: Dist, resume: Path | None, *, train_images: list[Path] | None = None
) -> Path:
    """The run folder, created by rank 0 with the resolved config in ``args.yaml`` and ``train_images``
    (given) in ``trained_images.json`` (:func:`common.trained_images.record_trained_images`)."""
    if resume is not None:
        folder = resume
    else:
        name = run_name(config)
        if config["exist_ok"]:
            folder = Path(config["out"]) / name
        else:
            # Only rank 0 looks for a free name; the others must use the same folder.
            chosen = str(make_run_dir(Path(config["out"]), name)) if world.main else None
            folder = Path(from_main(chosen, world))
            if world.main and folder.name != name:  # said at the end alone, the user found it out there
                print(renumbered_note(Path(config["out"]) / name, folder), file=sys.stderr, flush=True)
    if world.main:
        folder.mkdir(parents=True, exist_ok=True)
        hold_run_folder(folder)
        try:
            _take_run_dir(folder, config, fresh=resume is None)
            if train_images is not None:  # what a later evaluation of its decoder is checked against
                record_trained_images(folder, train_images, keep=resume is not None)
        except BaseException:  # a full disk at args.yaml: the earlier run's files back, the folder free
            try:
                if where := put_back_earlier(folder):
                    print(earlier_files_note(folder, where), file=sys.stderr, flush=True)
            finally:  # a second Ctrl-C, held until the put-back ended, is raised there
                unmark_training(folder)
            raise
    return folder


def _take_run_dir(folder: Path, config: dict, *, fresh: bool) -> None:
    """Clears ``folder`` (held by this training) for a run, ``fresh`` or resumed; writes its ``args.yaml``."""
    # what a killed training was writing (a last.pt, a sam_finetuned.pth: a vit_h's 2.5 GB) stayed hidden
    remove_stale(folder, ".*.tmp")
    # a killed training's, before this run sets the folder's files aside: a kill amid its moves left some
    # of the earlier run's files here, so those this run sets aside are kept at its first save too
    killed = show_earlier(folder)
    if fresh:  # a reused folder's old state must not be resumed, nor its results kept
        set_earlier_aside(folder, keep=killed)
        if old := sorted(p.name for p in folder.glob("eval_*") if p.is_dir()):
            # kept (they are the user's), but they score the earlier run's decoder, not this one's
            print(f"note: {folder} keeps {', '.join(old)} of the earlier run (exist_ok): they score its "
                  "decoder; evaluate this run again", flush=True)  # fmt: skip
    save_config(config, folder / "args.yaml")
