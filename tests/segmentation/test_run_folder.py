"""A fine-tuning's run folder: the training curves' figure."""

from __future__ import annotations

import builtins
import errno
import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

import segmentation.run_folder as run_folder
from common.cli import exit_code
from common.errors import UserError
from common.io import temporary_path
from segmentation.distributed import Dist
from segmentation.run_folder import check_run_dir, curves_figure, prepare_run_dir
from segmentation.train_config import DEFAULTS
from tests.segmentation.renames import refuse_rename, refuse_touch


@pytest.mark.parametrize("epochs", [1, 2, 3, 40])
def test_the_curves_mark_whole_epochs_only(epochs: int) -> None:
    row = {"train_loss": 0.3, "val_iou": 0.5, "val_mask_ap": 0.4}
    rows = [{"epoch": e, **row} for e in range(epochs)]
    fig = curves_figure(rows)
    try:
        for axes in fig.axes:
            ticks = [t for t in axes.get_xticks() if axes.get_xlim()[0] <= t <= axes.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
    finally:
        plt.close(fig)


def test_a_cache_dir_inside_the_data_set_is_refused(tmp_path):
    # cache_dir=<data>/cache was filled in the data set, in the way of its re-conversion (as out= there)
    data = tmp_path / "data"
    data.mkdir()
    config = {**DEFAULTS, "data": str(data), "out": str(tmp_path / "runs"), "cache_dir": str(data / "cache")}
    with pytest.raises(UserError, match=r"is inside the input tree .*; choose another cache_dir="):
        check_run_dir(config, None)


@pytest.fixture
def other_training():
    """A live process standing for another training: its pid for a marker's name."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


def _marker(folder, pid: int):
    """A training marker in ``folder`` as process ``pid`` would have written it."""
    ours = temporary_path(folder / "training")
    marker = ours.with_name(ours.name.replace(f"-{os.getpid()}-", f"-{pid}-"))
    marker.touch()
    return marker


def _config(tmp_path, **overrides):
    return {
        **DEFAULTS,
        "data": str(tmp_path / "data"),
        "out": str(tmp_path / "runs"),
        "name": "run",
        **overrides,
    }


def test_a_run_folder_another_training_is_writing_is_refused_for_exist_ok_and_resume(
    tmp_path, other_training
):
    # both trainings wrote last.pt, decoder.pt and results.csv in turn, into one folder
    folder = tmp_path / "runs" / "run"
    folder.mkdir(parents=True)
    (folder / "last.pt").write_bytes(b"the other run's")
    marker = _marker(folder, other_training)
    message = (
        rf"run folder {folder} is being written by another training \(process {other_training} on this "
        r"machine\)"
    )
    way = f"; if that run is known to have ended, delete its marker {marker}"
    refused = message + ": wait for it to end or stop it, then run this again, or train into another name="
    with pytest.raises(UserError, match=refused + way):
        check_run_dir(_config(tmp_path, exist_ok=True), None)
    with pytest.raises(UserError, match=message):
        check_run_dir(_config(tmp_path), folder)  # --resume
    with pytest.raises(UserError, match=message):  # the check again as the folder is taken
        prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["last.pt", marker.name])
    assert (folder / "last.pt").read_bytes() == b"the other run's"


def test_a_marker_of_a_training_that_was_killed_is_removed_and_the_folder_reused(tmp_path):
    folder = tmp_path / "runs" / "run"
    folder.mkdir(parents=True)
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    _marker(folder, process.pid)  # its process is gone (kill -9: no clean-up ran)
    check_run_dir(_config(tmp_path, exist_ok=True), None)
    assert prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None) == folder
    markers = list(folder.glob(".training.*.tmp"))
    assert len(markers) == 1 and f"-{os.getpid()}-" in markers[0].name  # this process's only
    assert markers[0].read_text(encoding="utf-8") == f"{socket.gethostname()}\n"
    run_folder.unmark_training(folder)
    assert not list(folder.glob(".training.*.tmp"))


def test_a_marker_of_a_killed_training_whose_process_id_this_process_has_now_is_removed(tmp_path):
    # every marker naming this process's id was skipped as this training's own: one a killed training
    # left (its id given to this process since) was never removed, and the folder held two markers
    folder = tmp_path / "runs" / "run"
    folder.mkdir(parents=True)
    killed = _marker(folder, os.getpid())
    check_run_dir(_config(tmp_path, exist_ok=True), None)
    assert not killed.exists()
    killed = _marker(folder, os.getpid())
    assert prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None) == folder
    markers = list(folder.glob(".training.*.tmp"))
    assert not killed.exists() and len(markers) == 1
    run_folder.unmark_training(folder)


def test_a_marker_of_another_machine_with_this_process_id_is_judged_as_another_machine_s(tmp_path):
    # it was skipped as this training's own: a live training there was not refused, and its marker was
    # removed when this training ended
    folder = tmp_path / "runs" / "run"
    folder.mkdir(parents=True)
    foreign = _foreign_marker(folder, os.getpid())
    with pytest.raises(
        UserError, match=rf"\(process {os.getpid()} on gpu-box-7, marker refreshed 0\.0 h ago; "
    ):
        check_run_dir(_config(tmp_path, exist_ok=True), None)
    with pytest.raises(UserError, match=rf"\(process {os.getpid()} on gpu-box-7, "):
        prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    run_folder.mark_training(folder)  # as if this process trained there (a marker deleted meanwhile)
    run_folder.unmark_training(folder)
    assert list(folder.glob(".training.*.tmp")) == [foreign]
    _age(foreign, 25 * 3600)  # a day without a refresh: that training is gone
    check_run_dir(_config(tmp_path, exist_ok=True), None)
    assert not foreign.exists()


@pytest.mark.parametrize("resume", [False, True])
def test_a_training_that_marks_the_folder_while_this_one_checks_it_is_seen(
    tmp_path, monkeypatch, other_training, resume
):
    # the check and this training's marker were two steps: another training that checked at the same
    # instant (no marker yet) and marked beside this one trained into the folder too; now one or both are
    # refused, so the refusal says to run again once that run has ended, not only to wait for it
    folder = tmp_path / "runs" / "run"
    folder.mkdir(parents=True)
    (folder / "last.pt").write_bytes(b"the other run's")
    mark = run_folder.mark_training
    others = []

    def at_one_instant(marked):
        others.append(_marker(marked, other_training))
        return mark(marked)

    monkeypatch.setattr(run_folder, "mark_training", at_one_instant)
    refused = rf"\(process {other_training} on this machine\): wait for it to end or stop it, then run this"
    with pytest.raises(UserError, match=refused):
        prepare_run_dir(_config(tmp_path, exist_ok=not resume), Dist(), folder if resume else None)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["last.pt", others[0].name])  # its marker gone


EARLIER = ("last.pt", "decoder.pt", "sam_finetuned.pth", "colour_head.json", "results.csv", "curves.png")


def _earlier_run(tmp_path):
    """A run folder of an earlier run: its results, args.yaml, an evaluation and a note of the user's."""
    folder = tmp_path / "runs" / "run"
    folder.mkdir(parents=True)
    for name in (*EARLIER, "args.yaml", "notes.txt"):
        (folder / name).write_bytes(b"earlier run")
    (folder / "eval_test").mkdir()
    return folder


def _visible(folder):
    return sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))


def test_a_folder_reused_with_exist_ok_keeps_no_results_of_the_earlier_run(tmp_path):
    # a Ctrl-C in the new run's epoch 1 left the earlier run's sam_finetuned.pth and curves.png beside
    # the new args.yaml and zero-shot decoder.pt
    folder = _earlier_run(tmp_path)
    assert prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None) == folder
    assert _visible(folder) == ["args.yaml", "eval_test", "notes.txt"]
    assert (folder / "args.yaml").read_bytes() != b"earlier run"
    run_folder.drop_earlier(folder)  # this run's first save
    run_folder.unmark_training(folder)
    assert sorted(path.name for path in folder.iterdir()) == ["args.yaml", "eval_test", "notes.txt"]


def test_a_reused_folder_gets_the_earlier_run_back_whole_when_the_run_stops_before_its_first_save(tmp_path):
    # the earlier run's files were deleted at the start: a re-run that failed at once had lost its decoder
    folder = _earlier_run(tmp_path)
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    (folder / "decoder.pt").write_bytes(b"this run's zero-shot")  # then last.pt failed
    (folder / "trained_images.json").write_bytes(b"this run's")  # the earlier run had none
    assert run_folder.put_back_earlier(folder) == [folder]
    run_folder.unmark_training(folder)
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        (*EARLIER, "args.yaml", "eval_test", "notes.txt")
    )
    assert all((folder / name).read_bytes() == b"earlier run" for name in (*EARLIER, "args.yaml"))
    assert not run_folder.put_back_earlier(folder)  # nothing aside any more


def test_a_full_disk_at_args_yaml_leaves_the_earlier_run_as_it_was(tmp_path, monkeypatch):
    folder = _earlier_run(tmp_path)

    def full(config, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(run_folder, "save_config", full)
    with pytest.raises(OSError, match="No space left on device"):
        prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        (*EARLIER, "args.yaml", "eval_test", "notes.txt")
    )
    assert all((folder / name).read_bytes() == b"earlier run" for name in (*EARLIER, "args.yaml"))


def _dead_aside(folder, names=("last.pt", "decoder.pt"), *, pid=None, host=None):
    """The earlier run's files as a training killed before its first save left them set aside (its process
    id ``pid``, one that ended unless given; ``host``, another machine's name, unless this one's)."""
    if pid is None:
        process = subprocess.Popen([sys.executable, "-c", "pass"])
        process.wait()
        pid = process.pid
    ours = temporary_path(folder / "earlier").with_suffix("")
    name = ours.name.replace(f"-{os.getpid()}-", f"-{pid}-")
    aside = ours.with_name(
        f".earlier.{host}-{name.rsplit('-', 2)[1]}-{name.rsplit('-', 1)[1]}" if host else name
    )
    aside.mkdir()
    for name in names:
        (folder / name).replace(aside / name)
    return aside


def _killed_run(folder, names=("last.pt", "decoder.pt", "args.yaml")):
    for name in names:  # what a training killed in its epoch 0, after its first files, left
        (folder / name).write_bytes(b"killed run")


def _shown(folder, capsys):
    """The visible folder a note names as holding the earlier run's files."""
    (shown,) = [path for path in folder.iterdir() if path.name.startswith("earlier-")]
    assert re.fullmatch(r"earlier-\d{8}-\d{6}", shown.name)
    assert (
        f"note: {shown} holds the earlier run's files: a training killed before its first save left them "
        "here; the run folder's own files are the killed run's (its decoder.pt may be untuned)\n"
    ) in capsys.readouterr().out
    return shown


def test_a_killed_trainings_hidden_folder_is_shown_by_the_next_run_never_put_back(tmp_path, capsys):
    # it was put back over the killed run's files; this run stopping too left the earlier run's args.yaml
    # beside the killed run's last.pt, which a --resume then trained under the earlier run's config
    folder = _earlier_run(tmp_path)
    aside = _dead_aside(folder, ("args.yaml", "last.pt", "decoder.pt"))
    _killed_run(folder)
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    shown = _shown(folder, capsys)
    assert not aside.exists()
    assert sorted(path.name for path in shown.iterdir()) == ["args.yaml", "decoder.pt", "last.pt"]
    assert all((shown / name).read_bytes() == b"earlier run" for name in ("args.yaml", "decoder.pt"))
    where = run_folder.put_back_earlier(folder)  # this run stopped too: the killed run's files kept
    run_folder.unmark_training(folder)
    (kept,) = [path for path in folder.iterdir() if path.name.startswith("earlier-") and path != shown]
    assert where == [kept]
    assert all((kept / name).read_bytes() == b"killed run" for name in ("args.yaml", "last.pt", "decoder.pt"))


@pytest.mark.parametrize(
    "whose", ["another machine's, a day old", "a process id in use again", "this process's id"]
)
def test_a_hidden_folder_that_looks_alive_is_never_put_back_over_a_finished_run(tmp_path, capsys, whose):
    # such a folder stayed hidden under a later finished run, then went back over its trained decoder
    folder = _earlier_run(tmp_path)
    if whose.startswith("another"):
        aside = _dead_aside(folder, host="deadbeef")
        os.utime(aside, (time.time() - 25 * 3600,) * 2)
    else:
        aside = _dead_aside(folder, pid=os.getppid() if whose.startswith("a process") else os.getpid())
    _killed_run(folder, ("last.pt", "decoder.pt", "args.yaml", "results.csv"))  # the later run, finished
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    shown = _shown(folder, capsys)
    assert not aside.exists()
    where = run_folder.put_back_earlier(folder)  # this run stopped: the finished run's files kept
    run_folder.unmark_training(folder)
    (kept,) = [path for path in folder.iterdir() if path.name.startswith("earlier-") and path != shown]
    assert where == [kept]
    assert all(
        (kept / name).read_bytes() == b"killed run" for name in ("last.pt", "decoder.pt", "results.csv")
    )
    assert all((shown / name).read_bytes() == b"earlier run" for name in ("last.pt", "decoder.pt"))


def test_a_kill_amid_setting_aside_loses_no_earlier_file_at_the_next_runs_first_save(tmp_path, capsys):
    # the kill left decoder.pt and args.yaml of the earlier run in the run folder; the next run set them
    # aside as its own earlier run's and deleted them at its first save: the trained decoder was lost
    folder = _earlier_run(tmp_path)
    partial = _dead_aside(folder, ("last.pt", "sam_finetuned.pth"))
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    first = _shown(folder, capsys)
    assert sorted(path.name for path in first.iterdir()) == ["last.pt", "sam_finetuned.pth"]
    assert not partial.exists()
    (folder / "decoder.pt").write_bytes(b"this run's epoch 0")
    run_folder.drop_earlier(folder)  # this run's first save
    run_folder.unmark_training(folder)
    (kept,) = [path for path in folder.iterdir() if path.name.startswith("earlier-") and path != first]
    assert re.fullmatch(r"earlier-\d{8}-\d{6}(-\d+)?", kept.name)
    assert f"note: {kept} holds the files this run set aside, kept: " in capsys.readouterr().out
    assert sorted(path.name for path in kept.iterdir()) == sorted(
        name for name in (*EARLIER, "args.yaml") if name not in ("last.pt", "sam_finetuned.pth")
    )
    assert all((kept / name).read_bytes() == b"earlier run" for name in ("decoder.pt", "args.yaml"))
    assert not list(folder.glob(".earlier.*"))
    assert (folder / "decoder.pt").read_bytes() == b"this run's epoch 0"


def test_kept_earlier_files_are_shown_not_put_back_when_the_run_stops_before_its_first_save(tmp_path, capsys):
    # they went back among the killed run's leftovers, which the next exist_ok run deleted at its first save
    folder = _earlier_run(tmp_path)
    _dead_aside(folder, ("last.pt",))
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    first = _shown(folder, capsys)
    (folder / "decoder.pt").write_bytes(b"this run's zero-shot")
    where = run_folder.put_back_earlier(folder)  # nothing put back: shown, for train.py's note to name
    run_folder.unmark_training(folder)
    (kept,) = [path for path in folder.iterdir() if path.name.startswith("earlier-") and path != first]
    assert where == [kept]
    assert (kept / "decoder.pt").read_bytes() == b"earlier run"
    assert not (kept / run_folder.EARLIER_KEPT).exists()
    assert (folder / "decoder.pt").read_bytes() == b"this run's zero-shot"
    assert not list(folder.glob(".earlier.*"))


def test_kept_earlier_decoder_survives_a_stopped_run_and_the_next_runs_first_save(tmp_path, capsys):
    # put back after a stop, the earlier decoder.pt was set aside by the next run as its own earlier run's
    # (no killed training's folder left to keep it) and deleted at that run's first save
    folder = _earlier_run(tmp_path)
    _dead_aside(folder, ("last.pt",))
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)  # run A
    run_folder.put_back_earlier(folder)  # run A stopped before its first save
    run_folder.unmark_training(folder)
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)  # run B
    run_folder.drop_earlier(folder)  # run B's first save
    run_folder.unmark_training(folder)
    capsys.readouterr()
    shown = [path for path in folder.iterdir() if path.name.startswith("earlier-")]
    assert any(
        (path / "decoder.pt").exists() and (path / "decoder.pt").read_bytes() == b"earlier run"
        for path in shown
    )


def test_a_resume_of_a_folder_with_a_killed_trainings_hidden_folder_shows_it_and_goes_on(tmp_path, capsys):
    # it was refused, telling the user to move the earlier run's files back over the folder's own
    folder = _earlier_run(tmp_path)
    (folder / "earlier-20260101-000000").mkdir()  # taken: never overwritten
    aside = _dead_aside(folder)
    _killed_run(folder)
    check_run_dir(_config(tmp_path), folder)
    prepare_run_dir(_config(tmp_path), Dist(), folder)
    run_folder.unmark_training(folder)
    assert (folder / "last.pt").read_bytes() == b"killed run"  # what it resumes from
    assert not aside.exists()
    assert len([path for path in folder.iterdir() if path.name.startswith("earlier-")]) == 2


def test_a_hidden_folder_is_shown_under_a_name_not_taken(tmp_path, capsys):
    folder = _earlier_run(tmp_path)
    aside = _dead_aside(folder)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(aside.stat().st_mtime))
    (folder / f"earlier-{stamp}").mkdir()
    (folder / f"earlier-{stamp}-2").write_bytes(b"the user's")
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    run_folder.unmark_training(folder)
    assert sorted((folder / f"earlier-{stamp}-3").iterdir()) == [
        folder / f"earlier-{stamp}-3" / "decoder.pt",
        folder / f"earlier-{stamp}-3" / "last.pt",
    ]
    assert (folder / f"earlier-{stamp}-2").read_bytes() == b"the user's"
    assert f"note: {folder / f'earlier-{stamp}-3'} holds the earlier run's files" in capsys.readouterr().out


def test_a_full_disk_at_the_training_marker_is_one_line_and_leaves_no_marker(tmp_path, monkeypatch, capsys):
    # the marker's write failed at its close with an OSError naming no file (a traceback), leaving it empty
    folder = tmp_path / "run"
    folder.mkdir()
    real = io.open

    def full_disk(path, mode="r", *args, **kwargs):  # created, then refused at the flush, as a real one does
        if Path(path).parent == folder and mode[0] in "wx":
            real(path, mode, *args, **kwargs).close()
            return real("/dev/full", mode.replace("x", "w"), *args, **kwargs)
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", full_disk)
    monkeypatch.setattr(builtins, "open", full_disk)
    assert exit_code(lambda: run_folder.hold_run_folder(folder)) == 1
    monkeypatch.undo()
    assert re.fullmatch(
        rf"error: No space left on device: {re.escape(str(folder))}/\.training\.\S+\.tmp\n",
        capsys.readouterr().err,
    )
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("resume", [False, True])
def test_the_half_written_files_of_a_killed_training_are_removed_when_its_folder_is_reused(tmp_path, resume):
    # a kill -9 while last.pt or sam_finetuned.pth was written left its hidden temporary for good
    folder = tmp_path / "runs" / "run"
    folder.mkdir(parents=True)
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    killed = [_marker(folder, process.pid)]
    for name in ("last.pt", "sam_finetuned.pth"):
        ours = temporary_path(folder / name)
        killed.append(ours.with_name(ours.name.replace(f"-{os.getpid()}-", f"-{process.pid}-")))
        killed[-1].write_bytes(b"half")
    live = temporary_path(folder / "results.csv")  # a live process's (this one's): left alone
    live.write_bytes(b"")
    (folder / "last.pt").write_bytes(b"kept")
    prepare_run_dir(_config(tmp_path, exist_ok=not resume), Dist(), folder if resume else None)
    assert not any(path.exists() for path in killed)
    assert live.exists() and (folder / "last.pt").exists() is resume
    run_folder.unmark_training(folder)


def test_a_marker_of_another_machine_is_named_with_its_host_its_age_and_how_to_free_the_folder(tmp_path):
    # it said 'process <pid>' alone: a run on another machine sharing the disk (or one that died there)
    # held the folder for a day, with no word on whose it was, why, or that deleting the marker frees it
    folder = tmp_path / "runs" / "run"
    folder.mkdir(parents=True)
    ours = temporary_path(folder / "training")
    here = re.search(r"\.training\.([0-9a-f]{8})-", ours.name)[1]
    elsewhere = "00000000" if here != "00000000" else "11111111"
    marker = ours.with_name(ours.name.replace(f".{here}-{os.getpid()}-", f".{elsewhere}-4242-"))
    marker.write_text("gpu-box-7\n", encoding="utf-8")
    three_hours_ago = time.time() - 3 * 3600
    os.utime(marker, (three_hours_ago, three_hours_ago))
    message = (
        f"run folder {folder} is being written by another training (process 4242 on gpu-box-7, marker "
        "refreshed 3.0 h ago; a marker of another machine counts as alive until 24 h without a refresh, a "
        "running training refreshes it every 10 min): wait for it to end, then run this again, or train into "
        f"another name=; if that run is known to have ended, delete its marker {marker}"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        check_run_dir(_config(tmp_path, exist_ok=True), None)
    marker.write_text("")  # an older version's marker names no host
    os.utime(marker, (three_hours_ago, three_hours_ago))
    with pytest.raises(UserError, match=r"\(process 4242 on another machine, marker refreshed 3\.0 h ago; "):
        check_run_dir(_config(tmp_path), folder)  # --resume
    marker.unlink()  # as the message says: the folder is free
    check_run_dir(_config(tmp_path, exist_ok=True), None)


def test_a_new_run_takes_the_next_name_when_another_run_made_its_folder_first(tmp_path, monkeypatch):
    # two runs started together both found runs/run free and trained into it
    out = tmp_path / "runs"
    found = run_folder.next_run_dir

    def raced(folder, name):
        chosen = found(folder, name)
        if chosen.name == "run":  # the other run makes it between the look and the mkdir
            chosen.mkdir(parents=True)
        return chosen

    monkeypatch.setattr(run_folder, "next_run_dir", raced)
    assert prepare_run_dir(_config(tmp_path), Dist(), None) == out / "run2"
    assert not (out / "run" / "args.yaml").exists()


def test_a_new_run_whose_name_is_taken_says_at_once_which_folder_it_trains_into(tmp_path, capsys):
    # it said nothing until the closing lines named runs/run2
    out = tmp_path / "runs"
    (out / "run").mkdir(parents=True)
    assert prepare_run_dir(_config(tmp_path), Dist(), None) == out / "run2"
    err = capsys.readouterr().err
    assert f"note: {out / 'run'} is taken: this run trains into {out / 'run2'}" in err
    prepare_run_dir(_config(tmp_path, name="free"), Dist(), None)  # a free name: no note
    assert "taken" not in capsys.readouterr().err


def _foreign_marker(folder, pid: int):
    """A training marker in ``folder`` named as process ``pid`` of another machine writes it."""
    ours = temporary_path(folder / "training")
    here = re.search(r"\.training\.([0-9a-f]{8})-", ours.name)[1]
    elsewhere = "00000000" if here != "00000000" else "11111111"
    marker = ours.with_name(ours.name.replace(f".{here}-{os.getpid()}-", f".{elsewhere}-{pid}-"))
    marker.write_text("gpu-box-7\n", encoding="utf-8")
    return marker


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_marker_the_training_refreshes_never_looks_stale_on_another_machine(tmp_path):
    # the marker was written once: a training on another machine (its pid cannot be looked up there)
    # that ran past a day looked stale, and a second training took over its run folder
    from common.io import FOREIGN_STALE_S, is_stale

    folder = tmp_path / "run"
    folder.mkdir()
    running = run_folder.mark_training(folder)  # this training's, as another machine would judge it
    other = _foreign_marker(folder, 4242)  # a marker of another process: not this one's to refresh
    same_id = _foreign_marker(folder, os.getpid())  # another machine's process with this one's id: neither
    for marker in (running, other, same_id):
        _age(marker, FOREIGN_STALE_S + 60)
    assert is_stale(other) and is_stale(same_id)
    run_folder.refresh_training_mark(folder)
    assert time.time() - running.stat().st_mtime < 60
    for marker in (other, same_id):
        assert is_stale(marker) and marker.read_text(encoding="utf-8") == "gpu-box-7\n"


def test_a_marker_is_touched_once_it_is_older_than_the_refresh_interval_and_never_made_again(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    marker = run_folder.mark_training(folder)
    _age(marker, run_folder.MARK_REFRESH_S / 2)
    before = marker.stat().st_mtime
    run_folder.refresh_training_mark(folder)  # fresh enough: left alone (one stat, no write per step)
    assert marker.stat().st_mtime == before
    run_folder.refresh_training_mark(folder, now=before + run_folder.MARK_REFRESH_S)
    assert marker.stat().st_mtime > before
    marker.unlink()  # deleted by hand to free the folder: the running training does not put it back
    run_folder.refresh_training_mark(folder, now=time.time() + 10 * run_folder.MARK_REFRESH_S)
    assert not list(folder.iterdir())


def test_the_refresh_interval_leaves_a_foreign_marker_many_refreshes_before_it_is_stale():
    from common.io import FOREIGN_STALE_S

    assert run_folder.MARK_REFRESH_S * 24 <= FOREIGN_STALE_S


def test_a_run_stopped_before_its_first_save_names_where_the_kept_earlier_files_are(
    tiny_dataset, tiny_sam, tmp_path, monkeypatch, capsys
):
    # with a killed training's folder found, the files set aside were shown in a visible earlier-<time>
    # with a note on stdout alone; train's stop note on stderr was not said, nor where the decoder went
    import segmentation.train as train_module
    from common.config import load_config

    overrides = [f"data={tiny_dataset}", f"out={tmp_path / 'runs'}", f"cache_dir={tmp_path / 'cache'}"]
    settings = ["name=run", "exist_ok=true", "device=cpu", "progress=false", "epochs=1", "max_steps=1"]
    config = load_config(DEFAULTS, None, [*overrides, *settings])
    folder = _earlier_run(tmp_path)
    _dead_aside(folder, ("last.pt",))

    def stop(state, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_torch", stop)  # last.pt, after the zero-shot decoder.pt
    with pytest.raises(KeyboardInterrupt):
        train_module.train(config, sam=tiny_sam)
    shown = sorted(path for path in folder.iterdir() if path.name.startswith("earlier-"))
    (kept,) = [path for path in shown if (path / "decoder.pt").is_file()]
    assert (kept / "decoder.pt").read_bytes() == b"earlier run"
    err = capsys.readouterr().err
    assert (
        f"note: this run stopped before its first save: {kept} holds the files it set aside, kept: a killed "
        "training's folder was found, so they may be the earlier run's trained decoder.pt\n" in err
    )


def test_a_full_disk_at_args_yaml_names_where_the_kept_earlier_files_are(tmp_path, monkeypatch, capsys):
    folder = _earlier_run(tmp_path)
    _dead_aside(folder, ("last.pt",))

    def full(config, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(run_folder, "save_config", full)
    with pytest.raises(OSError, match="No space left on device"):
        prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    (kept,) = [path for path in folder.iterdir() if (path / "decoder.pt").is_file()]
    assert kept.name.startswith("earlier-") and (kept / "decoder.pt").read_bytes() == b"earlier run"
    assert f"note: this run stopped before its first save: {kept} holds the files it set aside, kept: " in (
        capsys.readouterr().err
    )


def test_a_resume_of_a_run_folder_that_does_not_exist_says_so(tmp_path, capsys):
    # it said "nothing to resume in runs/sam/tpyo: no last.pt", as of a run folder stopped before epoch 0
    from segmentation.train import main

    (tmp_path / "runs" / "nut").mkdir(parents=True)
    assert main(["--resume", str(tmp_path / "runs" / "nutt")]) == 2
    assert capsys.readouterr().err == (
        f"error: --resume {tmp_path / 'runs' / 'nutt'} does not exist: pass the run folder holding last.pt\n"
    )
    assert main(["--resume", str(tmp_path / "runs" / "nut")]) == 2  # there, without last.pt: as before
    assert capsys.readouterr().err == f"error: nothing to resume in {tmp_path / 'runs' / 'nut'}: no last.pt\n"


def _on_moves(monkeypatch, folder, act):
    """``os.replace`` calling ``act(back)`` before each move of an earlier run's file into its hidden folder
    (``back`` False) or out of it into ``folder`` (``back`` True)."""
    real = os.replace

    def replace(source, target, *args, **kwargs):
        if Path(target).parent.name.startswith(".earlier."):
            act(False)
        elif Path(source).parent.name.startswith(".earlier.") and Path(target).parent == folder:
            act(True)
        return real(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)


def _nth(back, n, action):
    """An ``act`` for :func:`_on_moves`: ``action()`` before the ``n``-th move (``back``: into the folder)."""
    moves = []

    def act(into_folder):
        if into_folder == back:
            moves.append(into_folder)
            if len(moves) == n:
                action()

    return act


def _stop_at_args_yaml(monkeypatch):
    def stop(config, path):
        raise KeyboardInterrupt  # the first Ctrl-C, once the earlier run's files are set aside

    monkeypatch.setattr(run_folder, "save_config", stop)


def _whole(folder):
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        (*EARLIER, "args.yaml", "eval_test", "notes.txt")
    )
    assert all((folder / name).read_bytes() == b"earlier run" for name in (*EARLIER, "args.yaml"))


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_second_stop_while_the_earlier_files_are_put_back_waits_until_they_are_whole(
    tmp_path, monkeypatch, capsys, signum
):
    # a second Ctrl-C (or a kill) amid the moves left some of the earlier run's files in the hidden folder
    # and the rest in the run folder, with no note of where
    import signal

    folder = _earlier_run(tmp_path)
    _stop_at_args_yaml(monkeypatch)
    _on_moves(monkeypatch, folder, _nth(True, 3, lambda: signal.raise_signal(getattr(signal, signum))))
    config = _config(tmp_path, exist_ok=True)
    assert exit_code(lambda: prepare_run_dir(config, Dist(), None)) == {"SIGINT": 130, "SIGTERM": 143}[signum]
    _whole(folder)
    assert (
        f"note: this run stopped before its first save: {folder} holds the files it found there again\n"
        in capsys.readouterr().err
    )


def test_a_second_ctrl_c_while_a_stopped_set_aside_moves_the_earlier_files_back_waits_until_they_are_whole(
    tmp_path, monkeypatch, capsys
):
    # the stopped set-aside's move back was split by the second Ctrl-C, and the put-back after it then
    # deleted the earlier run's files the hidden folder lacked, taking them for this run's
    import signal

    folder = _earlier_run(tmp_path)
    stop = lambda: signal.raise_signal(signal.SIGINT)  # noqa: E731
    aside, back = _nth(False, 2, stop), _nth(True, 1, stop)  # amid the moves, then amid the moves back
    _on_moves(monkeypatch, folder, lambda into_folder: (aside(into_folder), back(into_folder)))
    assert exit_code(lambda: prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)) == 130
    _whole(folder)


def test_a_put_back_failing_partway_says_which_earlier_files_are_where(tmp_path, monkeypatch, capsys):
    # the OSError went out with no word of which of the earlier run's files were back and which hidden;
    # then the note named the hidden folder, which the next run showed as a killed training's
    folder = _earlier_run(tmp_path)
    _stop_at_args_yaml(monkeypatch)

    def refused():
        raise PermissionError(1, "Operation not permitted", "curves.png")

    _on_moves(monkeypatch, folder, _nth(True, 3, refused))
    with pytest.raises(KeyboardInterrupt):  # the stop itself, not the put-back's error
        prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    assert not list(folder.glob(".earlier.*"))
    (shown,) = [path for path in folder.iterdir() if path.name.startswith("earlier-")]
    assert _visible(folder) == ["args.yaml", "colour_head.json", shown.name, "eval_test", "notes.txt"]
    assert (
        "note: this run stopped before its first save: the files it found there could not be put back whole "
        f"(Operation not permitted: curves.png): its args.yaml, colour_head.json are back in {folder}, its "
        f"curves.png, decoder.pt, last.pt, results.csv, sam_finetuned.pth still in {shown}; move those "
        f"into {folder} by hand\n"
    ) in capsys.readouterr().err
    assert not list(folder.glob(".training.*"))  # the folder is free


def test_a_set_aside_that_can_neither_finish_nor_move_back_deletes_no_earlier_file(
    tmp_path, monkeypatch, capsys
):
    # its move back failed too: the put-back after it deleted the earlier run's files the hidden folder
    # lacked (its decoder.pt among them), taking them for this run's
    folder = _earlier_run(tmp_path)

    def refused():
        raise PermissionError(1, "Operation not permitted", "x")

    _on_moves(monkeypatch, folder, lambda into_folder: _nth(False, 2, refused)(into_folder))
    failing = [_nth(False, 2, refused), _nth(True, 1, refused)]
    _on_moves(monkeypatch, folder, lambda into_folder: [act(into_folder) for act in failing])
    with pytest.raises(PermissionError):
        prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    (shown,) = [path for path in folder.iterdir() if path.name.startswith("earlier-")]
    assert sorted(path.name for path in shown.iterdir()) == ["last.pt"]
    assert all((folder / name).read_bytes() == b"earlier run" for name in EARLIER if name != "last.pt")
    assert (
        "note: the earlier run's files could not be set aside whole nor put back (Operation not permitted: "
        f"x): its last.pt are in {shown}, the rest still in {folder}\n"
    ) in capsys.readouterr().err
    assert not list(folder.glob(".earlier.*"))


def test_a_folder_of_the_users_named_like_a_hidden_earlier_folder_is_left_alone(tmp_path, capsys):
    # .earlier.notes was renamed to earlier-<time>, with a note that it held the earlier run's files
    folder = _earlier_run(tmp_path)
    (folder / ".earlier.notes").mkdir()
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    run_folder.drop_earlier(folder)
    run_folder.unmark_training(folder)
    assert sorted(path.name for path in folder.iterdir()) == [
        ".earlier.notes",
        "args.yaml",
        "eval_test",
        "notes.txt",
    ]
    assert "earlier-" not in capsys.readouterr().out


def test_what_a_run_killed_while_deleting_the_earlier_files_left_is_removed_by_the_next(tmp_path):
    folder = _earlier_run(tmp_path)
    aside = _dead_aside(folder)
    doomed = aside.with_name(f".{aside.name}.{aside.name.removeprefix('.earlier.')}.tmp")
    aside.rename(doomed)  # drop_earlier's temporary, killed amid its deletion
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    run_folder.unmark_training(folder)
    assert not doomed.exists()


def _stopped_training(tiny_dataset, tmp_path, monkeypatch):
    """The config of an exist_ok training into _earlier_run's folder whose last.pt stops it with a Ctrl-C."""
    import segmentation.train as train_module
    from common.config import load_config

    overrides = [f"data={tiny_dataset}", f"out={tmp_path / 'runs'}", f"cache_dir={tmp_path / 'cache'}"]
    settings = ["name=run", "exist_ok=true", "device=cpu", "progress=false", "epochs=1", "max_steps=1"]

    def stop(state, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_torch", stop)  # last.pt, after the zero-shot decoder.pt
    return load_config(DEFAULTS, None, [*overrides, *settings])


@pytest.mark.parametrize("second", ["a Ctrl-C", "an error"])
def test_a_stopped_trainings_put_back_says_where_the_earlier_files_are_and_no_resume(
    tiny_dataset, tiny_sam, tmp_path, monkeypatch, capsys, second
):
    # a second Ctrl-C amid the moves split the earlier files with no note; an error amid them went out
    # with no word of which were where
    import signal

    import segmentation.train as train_module

    config = _stopped_training(tiny_dataset, tmp_path, monkeypatch)
    folder = _earlier_run(tmp_path)

    def act():
        if second == "a Ctrl-C":
            signal.raise_signal(signal.SIGINT)
        else:
            raise PermissionError(1, "Operation not permitted", "results.csv")

    _on_moves(monkeypatch, folder, _nth(True, 6, act))  # last.pt, 5th, is back
    with pytest.raises(KeyboardInterrupt):
        train_module.train(config, sam=tiny_sam)
    err = capsys.readouterr().err
    assert "stopped; go on" not in err
    if second == "a Ctrl-C":
        _whole(folder)
        assert err.count("note: this run stopped before its first save: ") == 1
        assert (
            f"note: this run stopped before its first save: {folder} holds the files it found there again\n"
            in err
        )
    else:
        (shown,) = [path for path in folder.iterdir() if path.name.startswith("earlier-")]
        assert (
            f"its results.csv, sam_finetuned.pth still in {shown}; move those into {folder} by hand\n" in err
        )


def test_earlier_files_that_cannot_be_deleted_at_the_first_save_are_named(tmp_path, monkeypatch, capsys):
    # a file of them this user cannot delete: they were left hidden, with no word
    import shutil

    folder = _earlier_run(tmp_path)
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    real = shutil.rmtree

    def rmtree(path, ignore_errors=False, **kwargs):
        if ".earlier." not in str(path):
            return real(path, ignore_errors=ignore_errors, **kwargs)
        if not ignore_errors:
            raise PermissionError(13, "Permission denied", str(Path(path) / "decoder.pt"))

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    run_folder.drop_earlier(folder)  # this run's first save: it goes on
    run_folder.unmark_training(folder)
    (left,) = folder.glob("..earlier.*.tmp")
    assert (
        f"note: the earlier run's files this run replaces could not be deleted (Permission denied: "
        f"{left / 'decoder.pt'}): delete {left} by hand\n"
    ) in capsys.readouterr().err


@pytest.mark.parametrize("fault", ["an error", "a Ctrl-C"])
def test_earlier_files_that_cannot_be_renamed_at_the_first_save_are_never_put_back_over_it(
    tiny_dataset, tiny_sam, tmp_path, monkeypatch, capsys, fault
):
    # the rename's error went out of the first save, and the stop's put-back replaced this run's saved
    # decoder.pt, last.pt and results.csv with the earlier run's
    import segmentation.train as train_module

    config = _stopped_training(tiny_dataset, tmp_path, monkeypatch)
    monkeypatch.undo()  # saves whole: the stop comes in epoch 1 (below)
    folder = _earlier_run(tmp_path)
    real = Path.rename

    def rename(self, target):
        if self.name.startswith(".earlier.") and Path(target).name.endswith(".tmp"):
            if fault == "a Ctrl-C":
                raise KeyboardInterrupt
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, target)

    def stop(run, state, epoch):
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "rename", rename)
    monkeypatch.setattr(train_module, "run_epoch", stop)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(config, sam=tiny_sam)
    err = capsys.readouterr().err
    for name in ("decoder.pt", "last.pt", "results.csv"):
        assert (folder / name).read_bytes() != b"earlier run", name
    (aside,) = folder.glob(".earlier.*")
    assert sorted(path.name for path in aside.iterdir()) == sorted(
        (*EARLIER, "args.yaml", run_folder.EARLIER_DROPPED)  # said as a saved run's by the next run
    )
    why = (
        f"could not be deleted (Permission denied: {aside})"
        if fault == "an error"
        else "were not deleted (stopped first)"
    )
    assert f"note: the earlier run's files this run replaces {why}: delete {aside} by hand\n" in err
    assert "stopped before its first save" not in err


def test_kept_earlier_files_that_cannot_be_shown_at_the_first_save_are_named_and_never_put_back(
    tmp_path, monkeypatch, capsys
):
    # the rename's error went out of the first save, and the stop's put-back then put them back
    folder = _earlier_run(tmp_path)
    _dead_aside(folder, ("last.pt",))
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    _shown(folder, capsys)
    (folder / "decoder.pt").write_bytes(b"this run's zero-shot")
    (aside,) = folder.glob(".earlier.*")
    refuse_rename(monkeypatch, aside)
    run_folder.drop_earlier(folder)  # this run's first save: it goes on
    assert run_folder.put_back_earlier(folder) == []  # a stop in a later epoch
    run_folder.unmark_training(folder)
    assert (folder / "decoder.pt").read_bytes() == b"this run's zero-shot"
    assert (aside / "decoder.pt").read_bytes() == b"earlier run"
    assert (
        f"note: the files this run set aside, kept, could not be shown (Permission denied: {aside}): they "
        f"are in {aside}; a killed training's folder was found, so they may be the earlier run's trained "
        "decoder.pt\n"
    ) in capsys.readouterr().err


def test_a_set_aside_that_can_neither_finish_nor_move_back_nor_be_shown_deletes_no_earlier_file(
    tmp_path, monkeypatch, capsys
):
    # its showing failed too: the error went out, and the put-back after it deleted the earlier run's files
    # the hidden folder lacked (its decoder.pt among them), taking them for this run's
    folder = _earlier_run(tmp_path)

    def refused():
        raise PermissionError(1, "Operation not permitted", "x")

    failing = [_nth(False, 2, refused), _nth(True, 1, refused)]
    _on_moves(monkeypatch, folder, lambda into_folder: [act(into_folder) for act in failing])
    refuse_rename(monkeypatch, lambda path: path.name.startswith(".earlier."))
    with pytest.raises(PermissionError):
        prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    assert all((folder / name).read_bytes() == b"earlier run" for name in EARLIER if name != "last.pt")
    (aside,) = folder.glob(".earlier.*")
    assert sorted(path.name for path in aside.iterdir()) == ["last.pt"]
    assert (
        "note: the earlier run's files could not be set aside whole nor put back (Operation not permitted: "
        f"x): its last.pt are in {aside}, the rest still in {folder}\n"
    ) in capsys.readouterr().err
    assert not list(folder.glob(".training.*"))  # the folder is free


def test_a_ctrl_c_as_kept_files_are_shown_at_the_first_save_is_held_until_they_are_shown(
    tmp_path, monkeypatch, capsys
):
    # _show deleted .kept before its rename, unheld: a Ctrl-C between left a hidden folder of this process
    # that no longer said kept, and the stop's put-back took it for files to put back over this run's save
    import signal

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "decoder.pt").write_text("earlier")
    run_folder.set_earlier_aside(folder, keep=True)
    (folder / "decoder.pt").write_text("this run's first save")
    real_rename = Path.rename

    def rename(self, target):
        if self.name.startswith(".earlier."):
            signal.raise_signal(signal.SIGINT)
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        run_folder.drop_earlier(folder)
    monkeypatch.setattr(Path, "rename", real_rename)
    assert run_folder.put_back_earlier(folder) == []  # what train()'s except does: nothing to put back
    assert (folder / "decoder.pt").read_text() == "this run's first save"
    assert not list(folder.glob(".earlier.*"))
    (shown,) = [path for path in folder.iterdir() if path.name.startswith("earlier-")]
    assert (shown / "decoder.pt").read_text() == "earlier"
    assert not (shown / run_folder.EARLIER_KEPT).exists()
    assert f"note: {shown} holds the files this run set aside, kept" in capsys.readouterr().out


def test_kept_files_whose_showing_fails_stay_marked_kept(tmp_path, monkeypatch, capsys):
    # _show deleted .kept before a rename that then failed: the hidden folder no longer said kept
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "decoder.pt").write_text("earlier")
    run_folder.set_earlier_aside(folder, keep=True)
    (aside,) = folder.glob(".earlier.*")

    refuse_rename(monkeypatch, lambda path: True, code=1)
    run_folder.drop_earlier(folder)  # this run's first save: it goes on
    assert (aside / run_folder.EARLIER_KEPT).exists()
    assert (
        f"could not be shown (Operation not permitted: {aside}): they are in {aside}"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize("stop", ["a Ctrl-C amid show_earlier", "a failed show"])
def test_a_killed_runs_hidden_folder_of_this_process_id_is_never_put_back(tmp_path, monkeypatch, stop):
    # put_back_earlier took each hidden folder named by this host and process id: a killed training's, its
    # id given again to this process, was put back over the folder (the killed run's last.pt deleted)
    import signal

    folder = tmp_path / "run"
    folder.mkdir()
    killed_aside = temporary_path(folder / "earlier").with_suffix("")  # this host and process id
    killed_aside.mkdir()
    (killed_aside / "args.yaml").write_text("older run's")
    (killed_aside / run_folder.EARLIER_KEPT).touch()
    (folder / "last.pt").write_text("killed run's last.pt")
    real_rename = Path.rename

    def rename(self, target):
        if self == killed_aside:
            if stop == "a failed show":
                raise PermissionError(1, "Operation not permitted", str(self))
            signal.raise_signal(signal.SIGINT)
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    if stop == "a failed show":  # named in a note, and the run goes on
        assert run_folder.show_earlier(folder)
    else:
        with pytest.raises(KeyboardInterrupt):
            run_folder.show_earlier(folder)
    monkeypatch.setattr(Path, "rename", real_rename)
    (killed_aside / run_folder.EARLIER_KEPT).unlink(missing_ok=True)  # a folder of any state
    assert run_folder.put_back_earlier(folder) == []  # prepare_run_dir's except
    assert (folder / "last.pt").read_text() == "killed run's last.pt"
    (held,) = [path for path in (killed_aside, *folder.glob("earlier-*")) if path.is_dir()]
    assert (held / "args.yaml").read_text() == "older run's"
    assert (held == killed_aside) == (stop == "a failed show")  # a Ctrl-C waits until it is shown, noted


def test_kept_files_that_cannot_be_shown_at_a_stop_before_the_first_save_are_named(tmp_path, monkeypatch):
    # the rename's error went out of the stop's put-back: no note, and the stop's own error was replaced
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "decoder.pt").write_text("earlier")
    run_folder.set_earlier_aside(folder, keep=True)
    (aside,) = folder.glob(".earlier.*")

    refuse_rename(monkeypatch, lambda path: True, code=1)
    where = run_folder.put_back_earlier(folder)  # this run stopped before its first save
    assert run_folder.earlier_files_note(folder, where) == (
        "note: this run stopped before its first save: the files this run set aside, kept, could not be "
        f"shown (Operation not permitted: {aside}): they are in {aside}; a killed training's folder was "
        "found, so they may be the earlier run's trained decoder.pt"
    )
    assert (aside / "decoder.pt").read_text() == "earlier"
    assert (aside / run_folder.EARLIER_KEPT).exists()


def test_a_killed_runs_hidden_folder_that_cannot_be_shown_is_named_and_the_run_goes_on(
    tmp_path, monkeypatch, capsys
):
    # the rename's OSError went out of the run's start with no word of whose files the hidden folder holds
    folder = _earlier_run(tmp_path)
    aside = _dead_aside(folder, ("last.pt", "decoder.pt"))
    _killed_run(folder)
    real = refuse_rename(monkeypatch, aside)
    prepare_run_dir(_config(tmp_path, exist_ok=True), Dist(), None)
    monkeypatch.setattr(Path, "rename", real)
    assert (
        f"note: {aside} holds the earlier run's files and could not be renamed to a visible folder "
        f"(Permission denied: {aside}): rename or move it by hand to keep them, or delete it; a training "
        "killed before its first save left them here; the run folder's own files are the killed run's (its "
        "decoder.pt may be untuned)\n"
    ) in capsys.readouterr().err
    assert sorted(path.name for path in aside.iterdir()) == ["decoder.pt", "last.pt"]
    assert (aside / "decoder.pt").read_bytes() == b"earlier run"
    run_folder.drop_earlier(folder)  # this run's first save: what it set aside is kept (a killed run's)
    run_folder.unmark_training(folder)
    assert (aside / "decoder.pt").read_bytes() == b"earlier run"
    (kept,) = [path for path in folder.iterdir() if path.name.startswith("earlier-")]
    assert (kept / "decoder.pt").read_bytes() == b"killed run"


@pytest.mark.parametrize("fault", ["a failed deletion", "a failed showing of kept files"])
def test_earlier_files_a_failed_drop_left_hidden_are_not_said_to_be_a_killed_trainings(
    tmp_path, monkeypatch, capsys, fault
):
    # the next run said "a training killed before its first save left them here" of a run whose first
    # save was made (only its drop_earlier failed), and kept that run's files as a killed run's mix
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "decoder.pt").write_text("earlier")
    run_folder.set_earlier_aside(folder, keep=fault.endswith("kept files"))
    (aside,) = folder.glob(".earlier.*")
    (folder / "decoder.pt").write_text("this run's first save")
    real = refuse_rename(monkeypatch, aside)
    run_folder.drop_earlier(folder)  # this run's first save: it goes on
    monkeypatch.setattr(Path, "rename", real)
    capsys.readouterr()
    assert not run_folder.show_earlier(folder)  # the next run: no killed training's folder
    (shown,) = [path for path in folder.iterdir() if path.name.startswith("earlier-")]
    out = capsys.readouterr().out
    how = (
        "could not show them and left them here; a killed training's folder was found, so they may be the "
        "earlier run's trained decoder.pt"  # it said 'could not remove them', with no word of the decoder
        if fault.endswith("kept files")
        else "could not remove them and left them here"
    )
    assert out == (
        f"note: {shown} holds the earlier run's files: a training saved its first epoch in their place but "
        f"{how}\n"
    )
    assert sorted(path.name for path in shown.iterdir()) == ["decoder.pt"]
    assert (shown / "decoder.pt").read_text() == "earlier"


@pytest.mark.parametrize("spelling", ["relative", "a link"])
def test_the_files_set_aside_are_found_under_another_spelling_of_the_run_folder(
    tmp_path, monkeypatch, spelling
):
    # keyed by the path as spelt: runs/x set aside was missed as /abs/runs/x or through a link, and the
    # earlier run's files were neither put back at a stop nor deleted at the first save
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "runs" / "run"
    folder.mkdir(parents=True)
    (folder / "decoder.pt").write_text("earlier")
    other = Path("runs/run")
    if spelling == "a link":
        (tmp_path / "link").symlink_to(folder, target_is_directory=True)
        other = tmp_path / "link"
    run_folder.set_earlier_aside(Path("runs/run/"))
    (folder / "decoder.pt").write_text("this run's zero-shot")
    assert run_folder.put_back_earlier(folder if spelling == "relative" else other) != []
    assert (folder / "decoder.pt").read_text() == "earlier"
    run_folder.set_earlier_aside(folder)
    run_folder.drop_earlier(other)  # this run's first save
    assert not list(folder.glob(".earlier.*")) and not (folder / "decoder.pt").exists()


def test_a_stop_right_after_a_killed_runs_folder_is_shown_waits_for_its_note(tmp_path, monkeypatch, capsys):
    # show_earlier's rename was not held: a Ctrl-C right after it left a visible earlier-<time> folder
    # with no note of whose files it holds
    import signal

    folder = _earlier_run(tmp_path)
    _dead_aside(folder, ("last.pt", "decoder.pt"))
    real = run_folder._show

    def show_then_stop(*args):
        shown = real(*args)
        signal.raise_signal(signal.SIGINT)
        return shown

    monkeypatch.setattr(run_folder, "_show", show_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_folder.show_earlier(folder)
    (shown,) = [path for path in folder.iterdir() if path.name.startswith("earlier-")]
    assert capsys.readouterr().out == (
        f"note: {shown} holds the earlier run's files: a training killed before its first save left them "
        "here; the run folder's own files are the killed run's (its decoder.pt may be untuned)\n"
    )


def test_a_stop_while_drop_earlier_marks_the_files_it_leaves_is_noted(tmp_path, monkeypatch, capsys):
    # the .dropped mark was written before drop_earlier's try: a Ctrl-C there went out with no note of
    # the earlier run's files it left hidden
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "decoder.pt").write_text("earlier")
    run_folder.set_earlier_aside(folder)
    (aside,) = folder.glob(".earlier.*")
    real = Path.touch

    def stopped(self, *args, **kwargs):
        if self.name == run_folder.EARLIER_DROPPED:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "touch", stopped)
    with pytest.raises(KeyboardInterrupt):
        run_folder.drop_earlier(folder)  # this run's first save
    assert capsys.readouterr().err.startswith(
        f"note: the earlier run's files this run replaces were not deleted (stopped first): delete {aside} "
        "by hand; they could not be marked as this run's"
    )
    assert (aside / "decoder.pt").read_text() == "earlier"


def test_earlier_files_a_drop_could_neither_mark_nor_remove_are_said_to_be_misnamed_next(
    tmp_path, monkeypatch, capsys
):
    # the mark's error was suppressed: the note said only to delete them, and the next run said, with no
    # word of warning, that a training killed before its first save had left them
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "decoder.pt").write_text("earlier")
    run_folder.set_earlier_aside(folder)
    (aside,) = folder.glob(".earlier.*")
    refuse_touch(monkeypatch, run_folder.EARLIER_DROPPED)
    refuse_rename(monkeypatch, aside)
    run_folder.drop_earlier(folder)  # this run's first save: it goes on
    assert capsys.readouterr().err == (
        f"note: the earlier run's files this run replaces could not be deleted (Permission denied: {aside}): "
        f"delete {aside} by hand; they could not be marked as this run's, so the next run here will say a "
        "training killed before its first save left them\n"
    )
