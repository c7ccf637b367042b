"""``python -m segmentation.annotate``: options, ports, export-only runs, and a real server with MobileSAM."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from common.errors import UserError
from segmentation.annotate.__main__ import (
    LOOPBACK_HOSTS,
    allowed_hosts,
    bind,
    check_counts,
    check_review_options,
    is_loopback,
    load_model,
    main,
    option_lines,
    parse_port,
    socket_address,
    stopped_line,
    url_for,
)
from segmentation.annotate.session import AnnotationSession
from segmentation.colour_head import ColourHead
from segmentation.colour_prompt import ColourPrompt
from segmentation.decoder_onnx import choose_runtime
from segmentation.duplicates import MASK_IOU
from segmentation.finetuned import save_decoder
from segmentation.specks import DEFAULT_CELLS

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("text, port", [("0", 0), ("auto", 0), ("8765", 8765)])
def test_parse_port(text, port):
    assert parse_port(text) == port


@pytest.mark.parametrize("text", ["-1", "70000", "eighty"])
def test_parse_port_refuses_nonsense(text):
    with pytest.raises(UserError, match="--port"):
        parse_port(text)


def test_port_zero_picks_a_free_port_and_a_taken_one_is_refused_with_a_hint():
    first = bind("127.0.0.1", 0)
    try:
        host, port = first.getsockname()[:2]
        assert host == "127.0.0.1" and port > 0
        assert url_for(first) == f"http://127.0.0.1:{port}/"
        with pytest.raises(UserError, match="--port 0"):
            bind("127.0.0.1", port)
    finally:
        first.close()


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("10.1.2.3", False)],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_a_page_beyond_loopback_accepts_any_host_header():
    # bound to 0.0.0.0 or a LAN address, the page is reached by names and addresses it cannot know
    assert allowed_hosts("0.0.0.0") is None and allowed_hosts("10.1.2.3") is None
    assert allowed_hosts("localhost") == LOOPBACK_HOSTS


@pytest.mark.parametrize(
    "host, family, address",
    [
        ("127.0.0.1", socket.AF_INET, ("127.0.0.1", 80)),
        ("::1", socket.AF_INET6, ("::1", 80, 0, 0)),
        ("[::1]", socket.AF_INET6, ("::1", 80, 0, 0)),
    ],
)
def test_literal_addresses_are_bound_without_the_resolver(host, family, address, monkeypatch):
    def no_dns(*args, **kwargs):
        raise OSError("no resolver here")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    assert socket_address(host, 80) == (family, address)


def test_bad_options_are_one_error_line_too_not_argparse_usage(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "out"), "--runtime", "tensorrt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --runtime: invalid choice: 'tensorrt'") and err.count("\n") == 1
    assert main([]) == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "--images" in capsys.readouterr().out


def test_the_proposals_help_names_anomaly_predicts_file_too():
    # it named the inspection cascade's predictions.json alone, while docs/anomaly.md's PatchCore route (new
    # defect types without labels) feeds anomaly.predict's to --proposals
    from segmentation.annotate.__main__ import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "--proposals JSON predictions.json of the inspection cascade or of anomaly.predict" in text


def test_bad_input_is_one_error_line_and_exit_code_2(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "out")]) == 2
    assert "give the image folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--images", str(empty), "--out", str(tmp_path / "out")]) == 2
    assert "no images" in capsys.readouterr().err


def test_images_of_a_tilde_and_no_users_name_is_a_missing_folder_named_in_one_line(
    tmp_path, capsys, monkeypatch
):
    # --images ~lot_7 (no such user; a shell leaves the word): a RuntimeError traceback
    # ('Could not determine home directory.') from Path.expanduser
    monkeypatch.chdir(tmp_path)
    assert main(["--images", "~no_such_user_lot_7", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"error: image folder does not exist or is not a folder: {tmp_path / '~no_such_user_lot_7'}\n"
    )


@pytest.mark.parametrize("below", ["", "sub"], ids=["out is a file", "out under a file"])
@pytest.mark.parametrize("export", [False, True], ids=["serve", "export"])
def test_an_out_blocked_by_a_file_is_one_error_line_before_the_model(
    photos, tmp_path, capsys, monkeypatch, below, export
):
    from segmentation.annotate import __main__ as cli

    monkeypatch.setattr(cli, "load_model", lambda *args: pytest.fail("the model loaded before the check"))
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    out = blocker / below if below else blocker
    argv = ["--images", str(photos[0]), "--out", str(out), "--device", "cpu", "--port", "0"]
    assert main([*argv, *(["--export"] if export else [])]) == 2
    err = capsys.readouterr().err
    expected = f"cannot create folder {out}: {blocker}" if below else f"--out {out}"
    assert err == f"error: {expected} is a file, not a folder\n"
    assert blocker.read_text() == "not a folder"


def test_a_run_folder_or_a_missing_checkpoint_is_one_error_line_before_the_model(
    photos, tmp_path, capsys, monkeypatch
):
    from segmentation.annotate import __main__ as cli

    monkeypatch.setattr(cli, "load_model", lambda *args: pytest.fail("the model loaded before the check"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "decoder.pt").write_bytes(b"never read")
    argv = ["--images", str(photos[0]), "--out", str(tmp_path / "out"), "--device", "cpu", "--port", "0"]
    assert main([*argv, "--checkpoint", str(run)]) == 2
    assert (
        capsys.readouterr().err == f"error: checkpoint {run} is a folder, not a file: pass {run}/decoder.pt\n"
    )
    assert main([*argv, "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    assert capsys.readouterr().err == f"error: checkpoint not found: {tmp_path / 'nope.pt'}\n"


def test_export_only_runs_need_no_model(photos, tmp_path, capsys):
    folder, _ = photos
    out = tmp_path / "new defects"  # a space: the suggested command quotes it
    assert main(["--images", str(folder), "--out", str(out), "--export"]) == 2
    assert capsys.readouterr().err == (
        f"error: nothing to export: {out} holds no annotations (annotate_state.json); annotate first "
        f"(python -m segmentation.annotate --images IMAGES --out {shlex.quote(str(out))})\n"
    )
    assert not out.exists()  # was: a new state and an empty category folder, for a refused export
    session = AnnotationSession.open(out, folder)
    assert main(["--out", str(out), "--export"]) == 2  # a state with nothing accepted yet
    assert "nothing to export yet: accept at least one defect instance" in capsys.readouterr().err
    mask = np.zeros((120, 160), bool)
    mask[10:20, 10:30] = True
    session.add_instance("a.png", class_name="defect", mask=mask)
    assert main(["--out", str(out), "--export", "--yolo-task", "segment"]) == 0
    assert "Wrote yolo, coco data set" in capsys.readouterr().out
    assert (out / "export" / "data.yaml").is_file()


def test_an_export_shows_its_progress_on_stderr_and_keeps_stdout_the_report(photos, tmp_path, capsys):
    """--export said nothing until it ended (the page shows the photo it is at): a long export of a big
    folder gave no sign of life. The converters' bars, reading then writing, go to stderr; stdout is the
    report alone."""
    out = annotated_out(photos, tmp_path)
    assert main(["--out", str(out), "--export"]) == 0
    captured = capsys.readouterr()
    bars = [line.strip() for line in re.split(r"[\r\n]", captured.err) if "%|" in line]
    assert [bar.split(":")[0] for bar in bars if "100%" in bar] == ["reading", "writing"], captured.err
    assert re.search(r"reading: 100%\|.*\| (\d+)/\1 \[", captured.err), captured.err
    assert captured.out.startswith("Wrote yolo, coco data set") and "%|" not in captured.out


def test_an_export_with_no_progress_shows_no_bars(photos, tmp_path, capsys):
    """The bars went to any stderr, a CI log's file too, with no way to turn them off: --no-progress, as
    the converters' own, leaves stderr empty and the report the same."""
    out = annotated_out(photos, tmp_path)
    assert main(["--out", str(out), "--export", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("Wrote yolo, coco data set"), captured


def test_an_export_of_out_dotdot_names_the_folders_without_the_dotdot(photos, tmp_path, capsys, monkeypatch):
    # --out ../out from tmp/lot was named tmp/lot/../out, and the photo folder of a state saved before
    # --images ../photos was tidied (tmp/lot/../photos) as stored
    folder, _ = photos
    (tmp_path / "lot").mkdir()
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["dent"])
    mask = np.zeros((120, 160), bool)
    mask[10:20, 10:30] = True
    session.add_instance("a.png", class_name="dent", mask=mask)
    state = json.loads(session.state_path.read_text())
    state["images_dir"] = os.path.join(tmp_path, "lot", "..", "photos")
    session.state_path.write_text(json.dumps(state))
    folder.rename(tmp_path / "archived")
    monkeypatch.chdir(tmp_path / "lot")
    assert main(["--out", "../out", "--export"]) == 0
    assert capsys.readouterr().out.startswith(
        f"note: the photo folder {folder} is gone: exporting the copies of the photos in "
        f"{tmp_path / 'out' / 'out'}\n"
    )


def test_an_export_needs_no_photo_folder_the_tree_holds_the_copies(photos, tmp_path, capsys):
    folder, _ = photos
    out = tmp_path / "out"
    session = AnnotationSession.open(out, folder, classes=["dent"])
    mask = np.zeros((120, 160), bool)
    mask[10:20, 10:30] = True
    session.add_instance("a.png", class_name="dent", mask=mask)
    folder.rename(tmp_path / "archived")  # was: 'the photos annotated in out were in ..., not a folder now'
    assert main(["--out", str(out), "--export"]) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith(
        f"note: the photo folder {folder} is gone: exporting the copies of the photos in {out / 'out'}\n"
    )
    assert "Wrote yolo, coco data set" in stdout and (out / "export" / "data.yaml").is_file()
    assert main(["--out", str(out), "--port", "0"]) == 2  # the page still needs the photos
    assert "which is not a folder now: give their folder as --images" in capsys.readouterr().err


def test_an_export_names_the_photos_replaced_by_ones_of_another_size_and_where_their_labels_went(
    photos, tmp_path, capsys
):
    folder, _ = photos
    out = tmp_path / "out"
    session = AnnotationSession.open(out, folder, classes=["dent"])
    for key, shape in (("a.png", (120, 160)), ("b.jpg", (150, 100))):
        mask = np.zeros(shape, bool)
        mask[10:20, 10:30] = True
        session.add_instance(key, class_name="dent", mask=mask)
    cv2.imwrite(str(folder / "a.png"), np.zeros((50, 70, 3), np.uint8))
    assert main(["--out", str(out), "--export"]) == 0
    stdout = capsys.readouterr().out
    [backup] = (out / "replaced").iterdir()
    assert stdout.startswith(
        "note: a.png was replaced by a 70x50 photo: the labels of the 160x120 one it replaced "
        f"(1 instance(s)) are set aside in {backup} with its copy and mask; it starts unlabelled\n"
    )
    assert "Wrote yolo, coco data set" in stdout  # of b.jpg alone: a.png's old mask does not fit its photo


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_second_command_on_an_out_in_use_is_one_error_line_and_changes_nothing(
    photos, tmp_path, capsys, monkeypatch
):
    """Two pages on one --out each saved their own copy of the state: the second dropped the first's."""
    import fcntl

    from segmentation.annotate import __main__ as cli

    folder, _ = photos
    out = tmp_path / "out"
    session = AnnotationSession.open(out, folder)
    mask = np.zeros((120, 160), bool)
    mask[10:20, 10:30] = True
    session.add_instance("a.png", class_name="defect", mask=mask)
    state = (out / "annotate_state.json").read_bytes()
    monkeypatch.setattr(cli, "load_model", lambda *args: pytest.fail("the model loaded before the check"))
    held = os.open(out, os.O_RDONLY)  # the running page's lock
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for extra in (["--port", "0", "--device", "cpu"], ["--export"]):
            assert main(["--out", str(out), *extra]) == 2
            assert capsys.readouterr().err == (
                f"error: {out} is open in another segmentation.annotate (each would overwrite the other's "
                "labels): stop it first, or export from its page\n"
            )
        assert (out / "annotate_state.json").read_bytes() == state
        assert not (out / "export").exists()
    finally:
        os.close(held)
    assert main(["--out", str(out), "--export"]) == 0  # once it has stopped
    assert (out / "export" / "data.yaml").is_file()


def box_mask(shape: tuple[int, int]) -> np.ndarray:
    """A ``shape`` mask with one 20x10 box."""
    mask = np.zeros(shape, bool)
    mask[10:20, 10:30] = True
    return mask


def write_proposals(path: Path, masks, category: str = "dent") -> Path:
    """A predictions file at ``path``: each ``(file name, mask)`` of ``masks`` proposed as ``category``,
    score 0.8 (an ``anomaly.predict`` or ``inspection.predict`` ``predictions.json``)."""
    from converters.masks import mask_to_rle

    results = [
        {"file_name": name, "category_name": category, "score": 0.8, "segmentation": mask_to_rle(mask)}
        for name, mask in masks
    ]
    path.write_text(json.dumps(results))
    return path


def page_stops_before_the_lock(monkeypatch, last_change) -> None:
    """Another page on ``--out`` saves ``last_change()`` and stops just before this command holds ``--out``:
    once, at the first :meth:`OutLock.take` that finds the folder, after this command read the session."""
    from segmentation.annotate.__main__ import OutLock

    take = OutLock.take
    pending = [last_change]

    def racing_take(self: OutLock) -> None:
        if pending and self.out.is_dir():
            pending.pop()()
        take(self)

    monkeypatch.setattr(OutLock, "take", racing_take)


def test_an_export_exports_what_a_page_saved_as_it_stopped_before_the_lock(
    photos, tmp_path, capsys, monkeypatch
):
    # the state was read before --out was held: what a page saved in between was written over with the
    # copy read, and left out of the export
    folder, _ = photos
    out = tmp_path / "out"
    page = AnnotationSession.open(out, folder)
    page.add_instance("a.png", class_name="defect", mask=box_mask((120, 160)))
    page_stops_before_the_lock(
        monkeypatch, lambda: page.add_instance("b.jpg", class_name="defect", mask=box_mask((150, 100)))
    )
    assert main(["--out", str(out), "--export"]) == 0
    assert "Wrote yolo, coco data set" in capsys.readouterr().out
    assert [len(AnnotationSession.read(out).entry(key).instances) for key in ("a.png", "b.jpg")] == [1, 1]
    assert (out / "out" / "ground_truth" / "defect" / "b_mask.png").is_file()
    assert sorted(path.name for path in (out / "export" / "labels").rglob("*.txt")) == [
        "out_test_defect_a.txt",
        "out_test_defect_b.txt",
    ]


def test_a_rename_renames_what_a_page_saved_as_it_stopped_before_the_lock(photos, tmp_path, monkeypatch):
    out = annotated_out(photos, tmp_path)
    page = AnnotationSession.open(out)
    page_stops_before_the_lock(
        monkeypatch, lambda: page.add_instance("b.jpg", class_name="scrach", mask=box_mask((150, 100)))
    )
    assert main(["--out", str(out), "--rename-class", "scrach=scratch"]) == 0
    [instance] = AnnotationSession.read(out).entry("b.jpg").instances
    assert instance.class_name == "scratch"
    assert (out / "out" / "ground_truth" / "scratch" / "b_mask.png").is_file()


@pytest.mark.parametrize("command", ["page", "export", "rename"])
def test_the_warnings_of_saved_names_print_once_when_the_session_is_read_again(
    photos, tmp_path, capsys, monkeypatch, request, command
):
    # another page on --out saved as it stopped while this command started: the session, read again, warned
    # again, and each 'saved before such names were refused' warning printed twice
    out = out_of_windows_names(photos, tmp_path)
    page = AnnotationSession.open(out)
    page_stops_before_the_lock(
        monkeypatch, lambda: page.add_instance("b.jpg", class_name="scrach", mask=box_mask((150, 100)))
    )
    capsys.readouterr()
    if command == "page":
        request.getfixturevalue("serve_page")(page_args(photos[0], tmp_path))
    else:
        options = ["--export"] if command == "export" else ["--rename-class", "scrach=scratch"]
        assert main(["--out", str(out), *options]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    names = ["warning: category 'con'", "warning: class 'dent.'"]
    assert [line.split(" of ")[0] for line in warnings] == names
    assert len(AnnotationSession.read(out).entry("b.jpg").instances) == 1  # read again: the page's change


def test_a_page_starts_from_what_a_page_saved_as_it_stopped_before_the_lock(
    photos, tmp_path, serve_page, monkeypatch
):
    folder, _ = photos
    out = tmp_path / "out"
    page = AnnotationSession.open(out, folder)
    page_stops_before_the_lock(
        monkeypatch, lambda: page.add_instance("b.jpg", class_name="defect", mask=box_mask((150, 100)))
    )
    app = serve_page(page_args(folder, tmp_path))
    assert len(app.state.session.entry("b.jpg").instances) == 1  # the page shows it
    assert len(AnnotationSession.read(out).entry("b.jpg").instances) == 1


def test_a_page_on_a_new_out_another_page_annotated_while_the_model_loaded_is_refused(
    photos, tmp_path, capsys, serve_page, monkeypatch
):
    # read as new, the session was written over the other page's once the model had loaded
    folder, _ = photos
    out = tmp_path / "out"

    def other_page() -> None:
        AnnotationSession.open(out, folder).add_instance(
            "a.png", class_name="defect", mask=box_mask((120, 160))
        )

    page_stops_before_the_lock(monkeypatch, other_page)
    assert main(page_args(folder, tmp_path)) == 2
    assert capsys.readouterr().err == (
        f"error: {out} was annotated by another segmentation.annotate while this one loaded the model "
        "(nothing written): run this command again to resume it\n"
    )
    assert len(AnnotationSession.read(out).entry("a.png").instances) == 1


@pytest.mark.slow
@pytest.mark.realdata
def test_the_command_serves_the_page_with_mobilesam_and_stops_cleanly(photos, tmp_path):
    from common.weights import weights_dir
    from segmentation.models import sam_model

    weights = weights_dir() / sam_model("vit_t").weights.filename
    if not weights.is_file():
        pytest.skip(f"MobileSAM weights not cached at {weights} (python -m segmentation.embed fetches them)")
    folder, _ = photos
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [
        sys.executable, "-m", "segmentation.annotate",
        "--images", str(folder), "--out", str(tmp_path / "out"), "--classes", "scratch", "dent",
        "--port", "0", "--cache-dir", str(tmp_path / "emb"), "--threads", "1",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines = []
        deadline = time.monotonic() + 120
        while not any(line.startswith("Open http") for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
            lines.append(process.stdout.readline())
        url = re.search(r"http://\S+", lines[-1]).group(0)
        assert url.startswith("http://127.0.0.1:")
        assert "decoder on onnx" in "".join(lines)  # the CPU default: ONNX Runtime
        with urllib.request.urlopen(url + "api/session", timeout=30) as response:
            body = response.read()
            assert b'"scratch"' in body and b'"decoder_runtime":"onnx"' in body
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/"))), timeout=5):
            pass
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert "everything accepted is saved" in rest


@pytest.mark.parametrize(
    "requested, device, missing, expected",
    [
        ("auto", "cpu", [], ("onnx", None)),
        ("auto", "cuda", [], ("torch", None)),
        ("torch", "cpu", [], ("torch", None)),
        ("onnx", "cpu", [], ("onnx", None)),
        ("auto", "cpu", ["onnxruntime"], ("torch", "onnxruntime not installed: the decoder runs in torch")),
    ],
)
def test_the_decoder_runtime_choice(requested, device, missing, expected):
    runtime, note = choose_runtime(requested, device, missing)
    assert runtime == expected[0]
    assert (note is None) == (expected[1] is None) and (expected[1] is None or note.startswith(expected[1]))


@pytest.mark.parametrize(
    "device, missing, message",
    [
        ("cuda", [], "--runtime onnx runs the decoder on the CPU; the model is on cuda: use torch"),
        (
            "cpu",
            ["onnx", "onnxruntime"],
            "--runtime onnx needs onnx and onnxruntime: pip install onnx onnxruntime",
        ),
    ],
)
def test_an_impossible_onnx_runtime_is_one_clear_error(device, missing, message):
    with pytest.raises(UserError) as error:
        choose_runtime("onnx", device, missing)
    assert str(error.value) == message


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--conf", "0.3"], "--conf only applies with --detector WEIGHTS"),
        (["--mask-iou", "0.5"], "--mask-iou only applies with --detector WEIGHTS"),
        (["--detector", "best.pt", "--mask-iou", "1.5"], "--mask-iou must be in [0, 1], got 1.5"),
        (["--detector", "best.pt", "--mask-iou", "nan"], "--mask-iou must be in [0, 1], got nan"),
        (["--tile", "320", "--imgsz", "320"], "--imgsz and --tile only apply with --detector WEIGHTS"),
        (
            ["--proposals", "p.json", "--detector", "best.pt"],
            "argument --detector: not allowed with argument",
        ),
        (["--export", "--proposals", "p.json"], "--export writes what is accepted"),
    ],
)
def test_review_options_that_do_not_fit_together(photos, tmp_path, capsys, extra, message):
    assert main(["--images", str(photos[0]), "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_command_puts_a_files_proposals_on_the_photos_once(
    photos, tmp_path, capsys, monkeypatch, colour_sam
):
    """The serving path up to uvicorn (which returns at once here), with the colour SAM as the model."""
    import uvicorn

    from segmentation.annotate import __main__ as cli

    folder, truths = photos
    write_proposals(tmp_path / "predictions.json", truths.items())
    monkeypatch.setattr(cli, "load_model", lambda model, checkpoint, device: (colour_sam, "colour"))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    args = [
        "--images",
        str(folder),
        "--out",
        str(tmp_path / "out"),
        "--proposals",
        str(tmp_path / "predictions.json"),
    ]
    args += ["--device", "cpu", "--runtime", "torch", "--port", "0", "--cache-dir", str(tmp_path / "emb")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 new proposals from" in out and "4 proposals to review on 4)" in out
    session = AnnotationSession.open(tmp_path / "out")
    assert session.classes == ["dent"]  # a first run without --classes takes the file's names
    assert [len(session.entry(key).proposals) for key in session.keys] == [1, 1, 1, 1]
    session.accept_proposals("a.png")
    assert main(args) == 0  # again: the accepted one does not come back, the others stay
    assert "0 new proposals" in capsys.readouterr().out
    session = AnnotationSession.open(tmp_path / "out")
    assert [len(session.entry(key).proposals) for key in session.keys] == [0, 1, 1, 1]


def test_a_restart_with_the_same_file_after_photos_were_deleted_or_resized_keeps_the_review(
    photos, tmp_path, capsys, serve_page, photo_writer
):
    # the same command again, after a photo that had the file's proposals was deleted from --images and
    # another resized: it stopped with "no photo 'b.jpg' among the images of --images" (or "its mask is
    # 160x120 but photo a.png is ..."), the review so far only to be reached without --proposals
    folder, truths = photos
    write_proposals(tmp_path / "predictions.json", truths.items())
    argv = [*page_args(folder, tmp_path), "--proposals", str(tmp_path / "predictions.json")]
    serve_page(argv).state.session.accept_proposals("wide.png")
    (folder / "b.jpg").unlink()
    photo_writer(folder / "a.png", (60, 80), [(20, 30, 12, 9)], seed=7)  # another size
    session = serve_page(argv).state.session
    assert session.entry("wide.png").status == "in_progress" and len(session.entry("wide.png").instances) == 1
    assert len(session.entry("lot_2/c.png").proposals) == 1
    assert session.entry("a.png").proposals == []  # set aside with the old photo's labels
    capsys.readouterr()
    session = serve_page(argv).state.session  # again: a.png's entry fits no more, and is left out
    err = capsys.readouterr().err
    assert (
        f"note: proposals file {tmp_path / 'predictions.json'}: left out its proposals of a.png (80x60 now, "
        "its masks 160x120), changed since this --out took the file (run the prediction again to review them)"
    ) in err.splitlines()
    assert session.entry("a.png").proposals == [] and len(session.entry("lot_2/c.png").proposals) == 1


@pytest.mark.parametrize("name", ["c.png", "run/lot_2/c.png"])
def test_a_restart_with_a_file_naming_a_photo_by_its_bare_name_or_a_longer_path_keeps_the_review(
    photos, tmp_path, capsys, serve_page, name
):
    # the same command again with a file naming lot_2/c.png 'c.png' (or 'run/lot_2/c.png'): the photo that
    # had its proposals was looked up twice, and the restart stopped with "'c.png' matches 2 photos
    # (lot_2/c.png, lot_2/c.png)"
    folder, truths = photos
    write_proposals(tmp_path / "predictions.json", [(name, truths["lot_2/c.png"])])
    argv = [*page_args(folder, tmp_path), "--proposals", str(tmp_path / "predictions.json")]
    assert len(serve_page(argv).state.session.entry("lot_2/c.png").proposals) == 1
    capsys.readouterr()
    session = serve_page(argv).state.session
    assert "error" not in capsys.readouterr().err
    assert len(session.entry("lot_2/c.png").proposals) == 1  # not placed a second time


def test_a_file_made_on_a_folder_below_images_is_placed_there_and_one_of_other_photos_refused(
    photos, tmp_path, capsys, serve_page, photo_writer
):
    # anomaly.predict --source photos/lot_2 names 'c.png': beside photos/lot_3/c.png that matched two photos,
    # and the way out named was to edit the file; a file made on lot_8's photos of the same names was
    # placed on lot_7's without a word, though its predict.json names the folder and it is still there
    import json

    from converters.masks import mask_to_rle

    folder, truths = photos
    photo_writer(folder / "lot_3" / "c.png", (96, 128), [(60, 50, 10, 8)], seed=9)
    run = tmp_path / "predict-lot_2"
    run.mkdir()
    entry = {"file_name": "c.png", "category_name": "dent", "score": 0.8}
    (run / "predictions.json").write_text(
        json.dumps([{**entry, "segmentation": mask_to_rle(truths["lot_2/c.png"])}])
    )
    (run / "predict.json").write_text(json.dumps({"source": str(folder / "lot_2"), "photos": 1}))
    argv = [*page_args(folder, tmp_path), "--classes", "dent", "--proposals", str(run / "predictions.json")]
    session = serve_page(argv).state.session
    assert len(session.entry("lot_2/c.png").proposals) == 1 and session.entry("lot_3/c.png").proposals == []
    other = tmp_path / "lot_8"
    photo_writer(other / "a.png", (120, 160), [(20, 20, 14, 10)], seed=11)  # a.png of another lot
    (run / "predictions.json").write_text(
        json.dumps([{**entry, "file_name": "a.png", "segmentation": mask_to_rle(truths["a.png"])}])
    )
    (run / "predict.json").write_text(json.dumps({"source": str(other), "photos": 1}))
    argv[argv.index("--out") + 1] = str(tmp_path / "out2")
    capsys.readouterr()
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"error: proposals file {run / 'predictions.json'} was made on the photos of {other}, whose a.png "
        f"differs from {folder / 'a.png'}: pass --images {other}, or predict on {folder} for proposals of "
        "its photos\n"
    )
    assert not (tmp_path / "out2").exists()


def test_a_file_made_on_a_folder_above_images_leaves_out_the_photos_outside_it(
    photos, tmp_path, capsys, serve_page, photo_writer
):
    # anomaly.predict on photos/ (two lots, or two categories), the page on photos/lot_2 alone: the file's
    # lot_3/c.png matched lot_2's c.png by its end, and its proposals went onto that photo unsaid
    folder, truths = photos
    photo_writer(folder / "lot_3" / "c.png", (96, 128), [(60, 50, 10, 8)], seed=9)
    far = np.zeros((96, 128), bool)
    far[70:90, 100:120] = True  # apart from lot_2/c.png's own: no duplicate of it
    run = tmp_path / "predict-photos"
    run.mkdir()
    write_proposals(run / "predictions.json", [("lot_2/c.png", truths["lot_2/c.png"]), ("lot_3/c.png", far)])
    (run / "predict.json").write_text(json.dumps({"source": str(folder), "photos": 5}))
    argv = [
        *page_args(folder / "lot_2", tmp_path),
        "--classes",
        "dent",
        "--proposals",
        str(run / "predictions.json"),
    ]
    session = serve_page(argv).state.session
    assert [p.area for p in session.entry("c.png").proposals] == [int(truths["lot_2/c.png"].sum())]
    assert (
        f"note: proposals file {run / 'predictions.json'} was made on the photos of {folder}: left out its "
        f"proposals of lot_3/c.png, not below --images {folder / 'lot_2'}"
    ) in capsys.readouterr().err.splitlines()


def test_the_proposals_file_notes_print_once_when_the_session_is_read_again(
    photos, tmp_path, capsys, serve_page, photo_writer, monkeypatch
):
    # another page on --out saved as it stopped while this command loaded: the session, read again, placed
    # the file's proposals again, and each note: line of the file printed twice
    folder, truths = photos
    photo_writer(folder / "lot_3" / "c.png", (96, 128), [(60, 50, 10, 8)], seed=9)
    run = tmp_path / "predict-photos"
    run.mkdir()
    write_proposals(
        run / "predictions.json", [(name, truths["lot_2/c.png"]) for name in ("lot_2/c.png", "lot_3/c.png")]
    )
    (run / "predict.json").write_text(json.dumps({"source": str(folder), "photos": 5}))
    page = AnnotationSession.open(tmp_path / "out", folder / "lot_2", classes=["dent"])
    page_stops_before_the_lock(monkeypatch, lambda: page.set_status("c.png", "good"))
    argv = [*page_args(folder / "lot_2", tmp_path), "--proposals", str(run / "predictions.json")]
    session = serve_page(argv).state.session
    assert session.entry("c.png").status == "good"  # read again: the other page's last change is there
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: proposals file")]
    assert notes == [
        f"note: proposals file {run / 'predictions.json'} was made on the photos of {folder}: left out its "
        f"proposals of lot_3/c.png, not below --images {folder / 'lot_2'}"
    ]


def test_the_command_gives_the_proposals_file_to_the_page(photos, tmp_path, serve_page, photo_writer):
    # a photo replaced on disk while the page runs loses the file's undecided proposals, as the
    # detector's do: the page has to know the file
    folder, truths = photos
    write_proposals(tmp_path / "predictions.json", truths.items())
    app = serve_page([*page_args(folder, tmp_path), "--proposals", str(tmp_path / "predictions.json")])
    photo_writer(folder / "a.png", (120, 160), [(120, 30, 12, 9)], seed=7)  # same name and size
    assert app.state.context.file_proposals.refresh("a.png") == (
        "a.png changed on disk since predictions.json proposed on it: its 1 undecided proposal of the "
        "old photo was dropped"
    )
    assert app.state.session.entry("a.png").proposals == []


def test_a_proposals_files_class_the_page_cannot_take_names_the_file_and_classes(
    photos, tmp_path, capsys, serve_page
):
    # a first run without --classes takes the file's names: 'dent.' was refused as "bad class name 'dent.':
    # ...; remove it", a name the user never typed, with no word of the file or of --classes
    import json

    from converters.masks import mask_to_rle

    folder, truths = photos
    results = [
        {
            "file_name": "a.png",
            "category_name": "dent.",
            "score": 0.8,
            "segmentation": mask_to_rle(truths["a.png"]),
        }
    ]
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(results))
    argv = [*page_args(folder, tmp_path), "--proposals", str(path)]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: proposals file {path}: bad class name 'dent.': Windows drops a '.'")
    assert error.endswith(
        "the class names are the file's own: name the classes with --classes (a proposal of another name "
        "is then accepted as one of them)\n"
    )
    assert not (tmp_path / "out").exists()
    app = serve_page([*argv, "--classes", "dent"])  # the way out it names
    assert [p.class_name for p in app.state.session.entry("a.png").proposals] == ["dent."]


def test_anomaly_proposals_load_with_classes_that_name_them_and_a_note_says_how(
    photos, tmp_path, capsys, serve_page
):
    # anomaly.predict's proposals are all 'anomaly': --classes stain crack refused the file ("add them,
    # --classes stain crack anomaly"), and with 'anomaly' among them it stayed a class of the export
    folder, truths = photos
    write_proposals(tmp_path / "predictions.json", truths.items(), "anomaly")
    argv = [*page_args(folder, tmp_path), "--proposals", str(tmp_path / "predictions.json")]
    app = serve_page([*argv, "--classes", "stain", "crack"])
    note = (
        "note: 4 proposals to review on 4 photos are of anomaly, not a class here (classes: stain crack): "
        "R accepts one as the selected class (number keys pick it), E corrects it first; to keep it as a "
        "class, add it: --classes stain crack anomaly"
    )
    out = capsys.readouterr().out
    assert "4 new proposals from" in out and note in out.splitlines()
    session = app.state.session
    assert session.classes == ["stain", "crack"]
    assert {p.class_name for key in session.keys for p in session.entry(key).proposals} == {"anomaly"}
    session.accept_proposals("a.png", [1], class_name="crack")
    serve_page(argv)  # a resume without --classes: the stored ones, the same note for those left
    assert note.replace("4 proposals to review on 4 photos", "3 proposals to review on 3 photos") in (
        capsys.readouterr().out.splitlines()
    )


def test_proposals_of_a_class_named_in_another_case_load_with_a_note_that_says_so(
    photos, tmp_path, capsys, serve_page
):
    # a cascade's 'Scratch' beside --classes scratch was refused before; it now loads as not a class, and
    # the note only said to add it (--classes scratch dent Scratch: a second class differing in case)
    import json

    from converters.masks import mask_to_rle

    folder, truths = photos
    results = [
        {"file_name": key, "category_name": name, "score": 0.8, "segmentation": mask_to_rle(truth)}
        for key, truth in truths.items()
        for name in ("Scratch", "anomaly")
    ]
    (tmp_path / "predictions.json").write_text(json.dumps(results))
    argv = [*page_args(folder, tmp_path), "--proposals", str(tmp_path / "predictions.json")]
    serve_page([*argv, "--classes", "scratch", "dent"])
    [note] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert note.startswith("note: 8 proposals to review on 4 photos are of Scratch, anomaly, not classes ")
    assert note.endswith(
        "to keep it as a class, add it: --classes scratch dent anomaly; Scratch differs from the class "
        "scratch in case only: R with scratch selected accepts it as scratch"
    )
    # with the case-only name alone, nothing is offered to add
    results = [r for r in results if r["category_name"] == "Scratch"]
    (tmp_path / "predictions.json").write_text(json.dumps(results))
    serve_page([*argv, "--classes", "scratch", "dent", "--out", str(tmp_path / "second")])
    [note] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert "--classes" not in note and "to keep" not in note
    assert note.endswith(
        "E corrects it first; Scratch differs from the class scratch in case only: "
        "R with scratch selected accepts it as scratch"
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ("-0.1", "error: --crop-fraction must be in [0, 1], got -0.1"),
        ("1.5", "error: --crop-fraction must be in [0, 1], got 1.5"),
        ("nan", "error: --crop-fraction must be in [0, 1], got nan"),
        ("an eighth", "error: argument --crop-fraction: invalid float value: 'an eighth'"),
    ],
    ids=["negative", "above-one", "nan", "not-a-number"],
)
def test_a_bad_crop_fraction_is_one_error_line(photos, tmp_path, capsys, value, message):
    assert main(["--images", str(photos[0]), "--out", str(tmp_path / "out"), "--crop-fraction", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "value, message",
    [
        ("-1", "error: --speck-cells must be a number >= 0, got -1.0"),
        ("nan", "error: --speck-cells must be a number >= 0, got nan"),
        ("inf", "error: --speck-cells must be a number >= 0, got inf"),
    ],
    ids=["negative", "nan", "infinite"],
)
def test_a_bad_speck_cells_is_one_error_line(photos, tmp_path, capsys, value, message):
    assert main(["--images", str(photos[0]), "--out", str(tmp_path / "out"), "--speck-cells", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cells", [-1.0, float("nan"), float("inf")])
def test_check_counts_refuses_a_speck_cells_that_is_no_number_of_cells(cells):
    # fails fast: a check letting one through would go on to serve the page (main never returns)
    args = argparse.Namespace(crop_fraction=0.0, speck_cells=cells, prefetch=0, threads=None)
    with pytest.raises(UserError, match="--speck-cells must be a number >= 0"):
        check_counts(args)
    check_counts(argparse.Namespace(crop_fraction=0.0, speck_cells=0.0, prefetch=0, threads=None))


@pytest.fixture
def serve_page(monkeypatch, colour_sam):
    """``serve_page(argv) -> app``: the command up to uvicorn (which returns at once), with the colour SAM.

    Checks the exit code 0 and gives back the app it built; the apps' threads stop at teardown.
    """
    import uvicorn

    from segmentation.annotate import __main__ as cli
    from segmentation.annotate import app as app_module

    apps = []
    create_app = app_module.create_app

    def recording_create_app(*args, **kwargs):
        apps.append(create_app(*args, **kwargs))
        return apps[-1]

    monkeypatch.setattr(app_module, "create_app", recording_create_app)
    monkeypatch.setattr(cli, "load_model", lambda model, checkpoint, device: (colour_sam, "colour"))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)

    def serve(argv: list[str]):
        made = len(apps)
        assert main(argv) == 0 and len(apps) == made + 1
        return apps[-1]

    yield serve
    for app in apps:
        app.state.context.close()


def page_args(images: Path, tmp_path: Path) -> list[str]:
    """A serving run's options: CPU, torch decoder, a free port, a cache under ``tmp_path``."""
    options = ["--images", str(images), "--out", str(tmp_path / "out"), "--device", "cpu"]
    return [*options, "--runtime", "torch", "--port", "0", "--cache-dir", str(tmp_path / "emb")]


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_page_on_a_new_out_holds_it_once_made(photos, tmp_path, capsys, serve_page, monkeypatch):
    # the lock was taken only where --out existed before the command: the first page on a new --out
    # held nothing, and a second command on it went ahead
    import uvicorn

    second = []
    out = tmp_path / "out"
    monkeypatch.setattr(
        uvicorn.Server, "run", lambda self, sockets=None: second.append(main(["--out", str(out), "--export"]))
    )
    assert not out.exists()
    serve_page(page_args(photos[0], tmp_path))
    assert second == [2]
    assert f"error: {out} is open in another segmentation.annotate" in capsys.readouterr().err
    assert main(["--out", str(out), "--export"]) == 2  # nothing accepted: refused for that, not the lock
    assert "is open in another" not in capsys.readouterr().err


def test_the_stopped_line_says_how_many_embeddings_the_page_encoded_into_its_cache(
    photos, tmp_path, capsys, serve_page, monkeypatch
):
    # it named where the labels are alone: not that the embeddings encoded meanwhile are kept and reused
    import uvicorn

    from segmentation.annotate.prefetch import READY

    folder, _ = photos

    def photos_opened_then_ctrl_c(self, sockets=None):
        prefetcher = self.config.app.app.state.prefetcher  # the page's encoder, filling its cache
        for name in ("a.png", "b.jpg"):
            deadline = time.monotonic() + 60
            while prefetcher.request(folder / name).state != READY:
                assert time.monotonic() < deadline, prefetcher.request(folder / name)
                time.sleep(0.02)
        self.should_exit = True  # as uvicorn's handler of the Ctrl-C does
        raise KeyboardInterrupt  # as uvicorn re-raises the Ctrl-C it took, once it has shut down

    monkeypatch.setattr(uvicorn.Server, "run", photos_opened_then_ctrl_c)
    serve_page(page_args(folder, tmp_path))
    (cache,) = [path for path in (tmp_path / "emb").iterdir() if path.is_dir()]
    out = tmp_path / "out"
    export = f"YOLO + COCO: python -m segmentation.annotate --out {out} --export"
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"stopped; everything accepted is saved in {out}; 2 embeddings encoded by this run are kept in the "
        f"cache {cache} (the same command again reuses them). {export}"
    )
    serve_page(page_args(folder, tmp_path))  # the same photos again: read from the cache, none encoded
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"stopped; everything accepted is saved in {out}. {export}"
    session = AnnotationSession.read(out)
    assert stopped_line(session, SimpleNamespace(written=0), forced=True) == (  # a second Ctrl+C
        f"stopped at once (second Ctrl+C); everything the page showed as saved is in {out}, a change sent "
        f"in the last moment may not be (the next start shows what is). {export}"
    )


def test_the_start_up_lines_name_the_files_left_out_as_no_image(photos, tmp_path, capsys, serve_page):
    folder, _ = photos
    (folder / "broken.jpg").write_text("not a picture\n")
    serve_page(page_args(folder, tmp_path))
    out = capsys.readouterr().out
    assert " 0 done, 0 good, 1 unreadable; " in out  # counted apart: it is no work left to do
    assert (
        "\nnote: 1 file with an image suffix but no image, which cannot be annotated nor marked good "
        "(fix or move them): broken.jpg\n"
    ) in out


def test_the_note_on_files_that_are_no_image_names_three_and_a_count():
    from segmentation.annotate.__main__ import unreadable_note

    assert unreadable_note(["a.jpg", "b.jpg", "c.jpg", "d.jpg"]) == (
        "\nnote: 4 files with an image suffix but no image, which cannot be annotated nor marked good "
        "(fix or move them): a.jpg, b.jpg, c.jpg and 1 more"
    )
    assert unreadable_note([]) == ""


def test_the_page_names_photos_replaced_by_ones_of_another_size_three_and_a_count(
    photos, tmp_path, capsys, serve_page
):
    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["big scratch", "dent"])
    sizes = {"a.png": (120, 160), "b.jpg": (150, 100), "lot_2/c.png": (96, 128), "wide.png": (300, 640)}
    for key, shape in sizes.items():
        mask = np.zeros(shape, bool)
        mask[10:20, 10:30] = True
        session.add_instance(key, class_name="dent", mask=mask)
        cv2.imwrite(str(folder / key), np.zeros((50, 70, 3), np.uint8))
    serve_page(page_args(folder, tmp_path))
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert [line.split(" was replaced")[0] for line in notes[:3]] == [
        "note: a.png",
        "note: b.jpg",
        "note: lot_2/c.png",
    ]
    assert notes[3] == (
        "note: and 1 more photos replaced by ones of another size: their labels are set aside in "
        f"{tmp_path / 'out' / 'replaced'}"
    )
    assert len(notes) == 4 and len(list((tmp_path / "out" / "replaced").iterdir())) == 4


def test_three_notices_are_printed_without_a_count_of_the_rest(tmp_path, capsys):
    from types import SimpleNamespace

    from segmentation.annotate.__main__ import print_notices

    print_notices(SimpleNamespace(notices=["one", "two", "three"], out=tmp_path))
    assert capsys.readouterr().out == "note: one\nnote: two\nnote: three\n"


def test_the_start_up_lines_quote_a_class_with_spaces(photos, tmp_path, capsys, serve_page):
    AnnotationSession.open(tmp_path / "out", photos[0], classes=["big scratch", "dent"])
    serve_page(page_args(photos[0], tmp_path))
    assert "; classes: 'big scratch' dent; model colour" in capsys.readouterr().out


def test_the_command_passes_the_crop_rule_to_the_page(photos, tmp_path, capsys, serve_page):
    args = page_args(photos[0], tmp_path)
    app = serve_page([*args, "--crop-fraction", "0.125"])
    assert "zoomed crops for boxes whose longest side < 0.125 x the photo's" in capsys.readouterr().out
    predictor = app.state.predictor
    assert predictor.crops.rule.max_fraction == 0.125 and predictor.crops.rule.min_side == 256
    app = serve_page(args)  # the default: off
    assert "zoomed crops" not in capsys.readouterr().out and app.state.predictor.crops is None


def test_the_command_passes_speck_cells_to_the_page(photos, tmp_path, serve_page):
    args = page_args(photos[0], tmp_path)
    assert serve_page(args).state.predictor.speck_cells == DEFAULT_CELLS == 16
    assert serve_page([*args, "--speck-cells", "0"]).state.predictor.speck_cells == 0


@pytest.mark.skipif(sys.platform != "linux", reason="all of 127.0.0.0/8 is this machine on Linux")
def test_a_page_on_another_loopback_address_answers_at_the_address_it_prints(photos, tmp_path, serve_page):
    from fastapi.testclient import TestClient

    app = serve_page([*page_args(photos[0], tmp_path), "--host", "127.0.0.2"])
    with TestClient(app, base_url="http://127.0.0.2:8765") as client:  # was: 400 Invalid host header
        assert client.get("/api/session").status_code == 200
        assert client.get("/api/session", headers={"host": "evil.example:8765"}).status_code == 400


HEAD = ColourHead((0.5, 1.0, -0.2))


@pytest.mark.parametrize("checkpoint", [None, "none-stored"])
def test_no_colour_head_where_there_is_none_is_one_error_line(
    photos, tmp_path, capsys, colour_sam, checkpoint, monkeypatch
):
    # the flag was accepted and changed nothing (as segmentation.evaluate refuses it: the same words)
    import uvicorn

    def started(self, sockets=None):  # without the refusal the page served until stopped: the test hung
        raise AssertionError("the page started")

    monkeypatch.setattr(uvicorn.Server, "run", started)
    args = page_args(photos[0], tmp_path)
    if checkpoint is None:  # zero-shot SAM
        message = "it applies only with --checkpoint (zero-shot SAM has none)"
    else:
        checkpoint = save_decoder(colour_sam, tmp_path / "decoder.pt", model="vit_t", colour_head=None)
        args += ["--checkpoint", str(checkpoint)]
        message = f"but {checkpoint} carries none (a decoder.pt of a run that kept one does): drop"
    assert main([*args, "--no-colour-head"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --no-colour-head leaves out a fine-tuned decoder's colour head")
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_a_colour_head_with_crops_is_one_error_line(photos, tmp_path, capsys, serve_page, colour_sam):
    checkpoint = save_decoder(colour_sam, tmp_path / "decoder.pt", model="vit_t", colour_head=HEAD)
    args = [*page_args(photos[0], tmp_path), "--checkpoint", str(checkpoint), "--crop-fraction", "0.125"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"error: {checkpoint} carries a colour head, which works on whole-photo logits: "
        "drop --crop-fraction, or pass --no-colour-head\n"
    )
    assert not (tmp_path / "out").exists()
    app = serve_page([*args, "--no-colour-head"])  # crops without the head: fine
    assert app.state.predictor.colour_head is None and app.state.predictor.crops is not None


PROMPT = ColourPrompt(centre=18.0, scale=3.0, clip=9.0)


@pytest.mark.parametrize(
    "part, line",
    [
        ("colour_head", "refines the detector's box proposals"),
        ("colour_prompt", "each detector box's colour map is SAM's mask prompt"),
    ],
)
@pytest.mark.parametrize("case", ["carried", "left out", "none-stored"])
def test_the_command_gives_the_checkpoints_colour_head_and_prompt_to_the_page(
    photos, tmp_path, capsys, serve_page, colour_sam, part, line, case
):
    from fastapi.testclient import TestClient

    carried = {"colour_head": HEAD, "colour_prompt": PROMPT}[part]
    stored, used = (None, False) if case == "none-stored" else (carried, case == "carried")
    extra = ["--no-" + part.replace("_", "-")] if case == "left out" else []
    checkpoint = save_decoder(colour_sam, tmp_path / "decoder.pt", model="vit_t", **{part: stored})
    app = serve_page([*page_args(photos[0], tmp_path), "--checkpoint", str(checkpoint), *extra])
    assert getattr(app.state.predictor, part) == (carried if used else None)
    out = capsys.readouterr().out
    assert (f"{part.replace('_', ' ')} of {checkpoint}: {line}" in out) is used
    client = TestClient(app, base_url="http://127.0.0.1")  # the page is bound to loopback
    assert client.get("/api/session").json()[part] is used


def test_a_colour_head_and_prompt_with_crops_are_one_error_line_naming_both(
    photos, tmp_path, capsys, serve_page, colour_sam
):
    # the head was refused first, and with --no-colour-head the prompt: the user came back twice
    checkpoint = save_decoder(
        colour_sam, tmp_path / "decoder.pt", model="vit_t", colour_head=HEAD, colour_prompt=PROMPT
    )
    args = [*page_args(photos[0], tmp_path), "--checkpoint", str(checkpoint), "--crop-fraction", "0.125"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"error: {checkpoint} carries a colour head and a colour prompt, which work on the whole photo: "
        "drop --crop-fraction, or pass --no-colour-head --no-colour-prompt\n"
    )
    assert main([*args, "--no-colour-prompt"]) == 2  # the head alone is refused in its own words
    assert "carries a colour head, which works on whole-photo logits" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    app = serve_page([*args, "--no-colour-head", "--no-colour-prompt"])
    assert app.state.predictor.colour_head is None and app.state.predictor.crops is not None


def test_a_colour_prompt_with_crops_is_one_error_line(photos, tmp_path, capsys, serve_page, colour_sam):
    # serve_page: the model and server stubbed, so that a page that starts instead returns 0 at once
    checkpoint = save_decoder(colour_sam, tmp_path / "decoder.pt", model="vit_t", colour_prompt=PROMPT)
    args = [*page_args(photos[0], tmp_path), "--checkpoint", str(checkpoint), "--crop-fraction", "0.125"]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"error: {checkpoint} carries a colour prompt, which works on the whole photo: "
        "drop --crop-fraction, or pass --no-colour-prompt\n"
    )
    assert not (tmp_path / "out").exists()
    app = serve_page([*args, "--no-colour-prompt"])  # crops without the prompt: fine
    assert app.state.predictor.colour_prompt is None and app.state.predictor.crops is not None


def test_no_colour_prompt_leaves_the_colour_head_in(photos, tmp_path, serve_page, colour_sam):
    # the two are separate choices: a decoder.pt of the colour recipe carries both
    checkpoint = save_decoder(
        colour_sam, tmp_path / "decoder.pt", model="vit_t", colour_head=HEAD, colour_prompt=PROMPT
    )
    app = serve_page([*page_args(photos[0], tmp_path), "--checkpoint", str(checkpoint), "--no-colour-prompt"])
    assert app.state.predictor.colour_prompt is None and app.state.predictor.colour_head == HEAD


@pytest.mark.parametrize("checkpoint", [None, "none-stored"])
def test_no_colour_prompt_where_there_is_none_is_one_error_line(
    photos, tmp_path, capsys, colour_sam, checkpoint, monkeypatch
):
    # the flag was accepted and changed nothing: refused in --no-colour-head's words
    import uvicorn

    def started(self, sockets=None):  # without the refusal the page served until stopped: the test hung
        raise AssertionError("the page started")

    monkeypatch.setattr(uvicorn.Server, "run", started)
    args = page_args(photos[0], tmp_path)
    if checkpoint is None:  # zero-shot SAM
        message = "it applies only with --checkpoint (zero-shot SAM has none)"
    else:  # a head but no prompt: the flag still changes nothing
        checkpoint = save_decoder(colour_sam, tmp_path / "decoder.pt", model="vit_t", colour_head=HEAD)
        args += ["--checkpoint", str(checkpoint)]
        message = f"but {checkpoint} carries none (a decoder.pt of a colour_prompt=true run does): drop"
    assert main([*args, "--no-colour-prompt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --no-colour-prompt leaves out a fine-tuned decoder's colour prompt")
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mask_iou", [0.0, 1.0])
def test_a_mask_iou_of_0_or_1_is_accepted(mask_iou):
    args = argparse.Namespace(
        export=False,
        rename_class=None,
        rename_category=None,
        proposals=None,
        detector="best.pt",
        conf=None,
        imgsz=None,
        tile=None,
        mask_iou=mask_iou,
    )
    check_review_options(args)  # 1: every box's mask; 0: no two masks of a class overlap at all


def test_the_command_passes_the_mask_iou_to_the_detectors_proposals(
    photos, tmp_path, serve_page, red_detector, monkeypatch
):
    from segmentation.annotate import detector as detector_module

    monkeypatch.setattr(detector_module, "load_yolo_detector", lambda weights, **settings: red_detector)
    args = [*page_args(photos[0], tmp_path), "--classes", "scratch", "dent", "--detector", "red.pt"]
    assert serve_page([*args, "--mask-iou", "0.4"]).state.context.detector.mask_iou == 0.4
    assert serve_page(args).state.context.detector.mask_iou == MASK_IOU


def stderr_when_the_model_loads(monkeypatch, capsys, cli, detector_module, red_detector, colour_sam) -> list:
    """The page's detector is ``red_detector`` and its model ``colour_sam``; the list returned gets what
    stderr held when the model was loaded (the notes and warnings given before it)."""
    monkeypatch.setattr(detector_module, "load_yolo_detector", lambda weights, **settings: red_detector)
    said = []

    def load_model(model, checkpoint, device):
        said.append(capsys.readouterr().err)
        return colour_sam, "colour"

    monkeypatch.setattr(cli, "load_model", load_model)
    return said


@pytest.mark.parametrize("detector", [True, False], ids=["detector", "clicks only"])
def test_a_full_state_dict_beside_a_decoder_with_colour_parts_is_noted_before_the_model_loads(
    photos, tmp_path, capsys, serve_page, colour_sam, red_detector, monkeypatch, detector
):
    # the detector's boxes were decoded without the run's colour prompt and head, silently; without a
    # detector nothing on the page would use them (clicks stay SAM's): no note
    from segmentation.annotate import __main__ as cli
    from segmentation.annotate import detector as detector_module
    from segmentation.finetuned import save_full

    said = stderr_when_the_model_loads(monkeypatch, capsys, cli, detector_module, red_detector, colour_sam)
    run = tmp_path / "run"
    decoder = save_decoder(
        colour_sam, run / "decoder.pt", model="vit_t", colour_head=HEAD, colour_prompt=PROMPT
    )
    full = save_full(colour_sam, run / "sam_finetuned.pth")
    args = [*page_args(photos[0], tmp_path), "--classes", "scratch", "dent"]
    args += ["--detector", "red.pt"] if detector else []
    app = serve_page([*args, "--checkpoint", str(full)])
    assert app.state.predictor.colour_head is None and app.state.predictor.colour_prompt is None
    expected = (
        "note: sam_finetuned.pth has no place for the colour prompt and the colour head of its run, which "
        f"{decoder} carries: the boxes prompt SAM without the colour maps its decoder was trained with, "
        f"and the masks are SAM's alone; pass --checkpoint {decoder} to apply them\n"
    )
    assert said == [expected if detector else ""]
    assert "note:" not in capsys.readouterr().err  # said once


@pytest.mark.parametrize(
    "grey, detector, warned",
    [(True, True, True), (False, True, False), (True, False, False)],
    ids=["grey photos", "colour photos", "grey photos, clicks only"],
)
def test_a_decoder_with_colour_parts_on_grey_photos_is_warned_of_before_the_model_loads(
    photos, tmp_path, capsys, serve_page, colour_sam, red_detector, monkeypatch, grey, detector, warned
):
    # the detector's boxes got the colour head and prompt on grey photos without a word, though the
    # inspection cascade warns of it; without a detector nothing on the page uses them (clicks stay SAM's)
    from segmentation.annotate import __main__ as cli
    from segmentation.annotate import detector as detector_module

    said = stderr_when_the_model_loads(monkeypatch, capsys, cli, detector_module, red_detector, colour_sam)
    images = tmp_path / "grey"
    for path in sorted(photos[0].rglob("*.*")):
        pixels = cv2.imread(str(path))
        if grey:  # three equal channels
            pixels = cv2.cvtColor(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        (images / path.relative_to(photos[0])).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(images / path.relative_to(photos[0]).with_suffix(".png")), pixels)
    decoder = save_decoder(
        colour_sam, tmp_path / "decoder.pt", model="vit_t", colour_head=HEAD, colour_prompt=PROMPT
    )
    args = [*page_args(images, tmp_path), "--classes", "scratch", "dent", "--checkpoint", str(decoder)]
    serve_page([*args, "--detector", "red.pt"] if detector else args)
    expected = (
        "warning: the 3 photos read from the 4 are greyscale, and the decoder's colour head and colour "
        "prompt read colour, which a grey photo does not have: use a decoder trained without them, or pass "
        "--no-colour-head --no-colour-prompt\n"
    )
    assert said == [expected if warned else ""]
    assert "warning:" not in capsys.readouterr().err  # said once


def test_a_first_photo_that_does_not_decode_leaves_the_grey_photos_after_it_warned_of(tmp_path, capsys):
    # its header reads (the page lists it), its pixels do not: the check raised on it and said nothing
    from types import SimpleNamespace

    from segmentation.annotate.__main__ import warn_grey_photos

    paths = []
    for index in range(5):
        path = tmp_path / f"{index}.png"
        assert cv2.imwrite(str(path), np.full((8, 8), 90, np.uint8))  # one channel: grey
        paths.append(path)
    paths[0].write_bytes(paths[0].read_bytes()[:40])  # cut short after the header
    session = SimpleNamespace(
        keys=[p.name for p in paths], unreadable=[], image_path=lambda key: tmp_path / key
    )
    warn_grey_photos(session, object(), colour_head=HEAD, colour_prompt=None)
    assert capsys.readouterr().err == (
        "warning: the 2 photos read from the 5 are greyscale, and the decoder's colour head reads colour, "
        "which a grey photo does not have: use a decoder trained without it, or pass --no-colour-head\n"
    )


def test_option_lines_warn_of_a_host_beyond_loopback_and_name_the_options_in_force():
    args = argparse.Namespace(crop_fraction=0.0, checkpoint=None, host="127.0.0.1")
    assert option_lines(args, colour_head=False) == []
    args = argparse.Namespace(crop_fraction=0.25, checkpoint="d.pt", host="0.0.0.0")
    crops, head, prompt, host = option_lines(args, colour_head=True, colour_prompt=True)
    assert crops.startswith("zoomed crops for boxes whose longest side < 0.25 x the photo's")
    assert head.startswith("colour head of d.pt: refines")
    assert prompt.startswith("colour prompt of d.pt: each detector box's colour map is SAM's mask prompt")
    assert prompt.endswith("(clicks stay SAM's; --no-colour-prompt leaves it out)")
    assert host == "note: bound to 0.0.0.0: anyone who can reach this machine can read and change the labels"


def test_missing_base_weights_of_a_decoder_name_no_flag_the_annotator_lacks(tmp_path, monkeypatch):
    # --checkpoint decoder.pt goes on the official weights: the annotator takes no --base-checkpoint
    from tests.segmentation.conftest import build_tiny_sam

    decoder = save_decoder(build_tiny_sam(), tmp_path / "decoder.pt", model="vit_b")
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(UserError) as error:
        load_model(None, decoder, "cpu")
    message = str(error.value)
    assert "no verified sam_vit_b_01ec64.pth" in message and "--base-checkpoint" not in message
    assert message.endswith(f"and put it in {tmp_path / 'cache' / 'weights'}")


def test_classes_given_twice_are_all_offered() -> None:
    # --classes scratch --classes dent offered dent alone (argparse kept the last flag), silently
    from segmentation.annotate.__main__ import build_parser

    argv = ["--images", "x", "--out", "y", "--classes", "scratch", "--classes", "dent"]
    args = build_parser().parse_args(argv)
    assert args.classes == ["scratch", "dent"]


def annotated_out(photos, tmp_path) -> Path:
    """An --out whose session has one instance of each of its classes, scrach and dent."""
    folder, _ = photos
    out = tmp_path / "out"
    session = AnnotationSession.open(out, folder, classes=["scrach", "dent"])
    for key, class_name in (("a.png", "scrach"), ("wide.png", "dent")):
        mask = np.zeros((120, 160) if key == "a.png" else (300, 640), bool)
        mask[10:20, 10:30] = True
        session.add_instance(key, class_name=class_name, mask=mask)
    return out


def out_of_windows_names(photos, tmp_path) -> Path:
    """An :func:`annotated_out` saved before names Windows cannot hold were refused: its class dent is
    'dent.', its category 'con'."""
    out = annotated_out(photos, tmp_path)
    state = json.loads((out / "annotate_state.json").read_text())
    state["classes"], state["category"] = ["scrach", "dent."], "con"
    for entry in state["images"].values():
        for instance in entry["instances"]:
            instance["class"] = {"dent": "dent."}.get(instance["class"], instance["class"])
    (out / "annotate_state.json").write_text(json.dumps(state))
    (out / "out").rename(out / "con")
    return out


def exported_out(photos, tmp_path) -> tuple[Path, Path]:
    """An :func:`annotated_out` exported once, and its export's ``splits.json``."""
    out = annotated_out(photos, tmp_path)
    assert main(["--out", str(out), "--export"]) == 0
    return out, out / "export" / "splits.json"


def rename_cut_short(out: Path, splits: Path, way_out: str) -> str:
    """The error of ``--rename-category lot_7`` on ``out`` where ``splits`` could not be renamed."""
    return (
        f"error: renamed in annotate_state.json and {out / 'out'} to {out / 'lot_7'}, but the category in "
        f"{splits} could not be renamed (Permission denied: {splits}): that is done at the next start or "
        f"export; {way_out}\n"
    )


def test_rename_class_renames_a_saved_class_and_exits(photos, tmp_path, capsys, monkeypatch):
    from segmentation.annotate import __main__ as cli

    out = annotated_out(photos, tmp_path)
    monkeypatch.setattr(cli, "load_model", lambda *args: pytest.fail("a rename needs no model"))
    assert (
        main(["--out", str(out), "--rename-class", "scrach=scratch", "--rename-class", "dent=big dent"]) == 0
    )
    assert capsys.readouterr().out == (
        f"renamed class scrach to scratch, dent to 'big dent' in {out} (classes: scratch 'big dent'; mask "
        "values unchanged)\n"
    )
    session = AnnotationSession.read(out)
    assert session.classes == ["scratch", "big dent"]
    assert (out / "out" / "test" / "scratch" / "a.png").is_file()
    assert (out / "out" / "ground_truth" / "big dent" / "wide_mask.png").is_file()
    assert not (out / "out" / "test" / "scrach").exists()


def test_rename_class_with_export_exports_the_new_names_and_without_says_the_export_is_old(
    photos, tmp_path, capsys
):
    out = annotated_out(photos, tmp_path)
    assert main(["--out", str(out), "--export"]) == 0
    capsys.readouterr()
    assert main(["--out", str(out), "--rename-class", "dent=dint"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"note: the export in {out / 'export'} names the old classes until it is written again: python "
        f"-m segmentation.annotate --out {out} --export (each photo keeps its split)"
    )
    assert main(["--out", str(out), "--rename-class", "dint=dent", "--export"]) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("renamed class dint to dent in ") and "Wrote yolo, coco data set" in stdout
    assert "dent" in (out / "export" / "data.yaml").read_text()


def test_rename_class_works_with_the_photo_folder_gone(photos, tmp_path, capsys):
    folder, _ = photos
    out = annotated_out(photos, tmp_path)
    folder.rename(tmp_path / "archived")
    assert main(["--out", str(out), "--rename-class", "scrach=scratch"]) == 0
    assert (out / "out" / "test" / "scratch" / "a.png").is_file()
    assert AnnotationSession.read(out, tmp_path / "archived").classes == ["scratch", "dent"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["scratch=scuff"], "no class 'scratch' to rename: the classes are scrach dent"),
        (["dent=nul"], "bad class name 'nul': Windows keeps the name 'nul'"),
        (["dent=Scrach"], "cannot rename class 'dent' to 'Scrach': the class 'scrach' has it"),
        (["dent=good"], "class name 'good' is reserved by the MVTec layout; choose another"),
        (["dent"], "--rename-class takes OLD=NEW (a class and its new name), got 'dent'"),
        (["dent=a=b"], "--rename-class takes OLD=NEW (a class and its new name), got 'dent=a=b'"),
        (["dent=a", "--rename-class", "dent=b"], "--rename-class renames 'dent' twice: to 'a' and to 'b'"),
        (
            ["dent=a", "--classes", "scrach", "dent"],
            "--rename-class renames what is saved, --classes adds",
        ),
        (["dent=a", "--proposals", "p.json"], "--rename-class renames and exits; --proposals and --detector"),
    ],
)
def test_a_bad_rename_is_one_error_line_and_writes_nothing(photos, tmp_path, capsys, extra, message):
    out = annotated_out(photos, tmp_path)
    state = (out / "annotate_state.json").read_bytes()
    assert main(["--out", str(out), "--rename-class", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
    assert (out / "annotate_state.json").read_bytes() == state
    assert sorted(p.name for p in (out / "out" / "test").iterdir()) == ["dent", "scrach"]


def test_a_rename_to_the_same_name_is_a_note_and_nothing_written(photos, tmp_path, capsys):
    out = annotated_out(photos, tmp_path)
    state = (out / "annotate_state.json").read_bytes()
    assert main(["--out", str(out), "--rename-class", "dent=dent"]) == 0
    assert capsys.readouterr().out == "note: class dent is named so already: nothing to rename\n"
    assert (out / "annotate_state.json").read_bytes() == state


def test_a_rename_of_a_name_windows_cannot_hold_is_not_told_to_rename_it(photos, tmp_path, capsys):
    # saved before such names were refused: '--rename-class dent.=dent' printed 'warning: class 'dent.' ...:
    # --rename-class dent.=NEW gives it another name', and '--rename-category lot_7' the same of the category
    out = out_of_windows_names(photos, tmp_path)
    # the names not renamed are still warned of
    assert main(["--out", str(out), "--rename-class", "scrach=scratch"]) == 0
    warnings = capsys.readouterr().err.splitlines()
    assert [line.split(" of ")[0] for line in warnings] == [
        "warning: category 'con'",
        "warning: class 'dent.'",
    ]
    assert main(["--out", str(out), "--rename-class", "dent.=dent", "--rename-category", "lot_7"]) == 0
    assert capsys.readouterr().err == ""
    assert AnnotationSession.read(out).classes == ["scratch", "dent"]
    assert (out / "lot_7" / "test" / "dent" / "wide.png").is_file()


def test_a_rename_needs_a_saved_session(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "new"), "--rename-class", "a=b"]) == 2
    assert capsys.readouterr().err == (
        f"error: nothing to rename: {tmp_path / 'new'} holds no annotation state (annotate_state.json)\n"
    )
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_rename_on_an_out_a_page_holds_is_one_error_line_and_changes_nothing(photos, tmp_path, capsys):
    import fcntl

    out = annotated_out(photos, tmp_path)
    state = (out / "annotate_state.json").read_bytes()
    held = os.open(out, os.O_RDONLY)  # the running page's lock
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["--out", str(out), "--rename-class", "scrach=scratch"]) == 2
        assert capsys.readouterr().err == (
            f"error: {out} is open in another segmentation.annotate (each would overwrite the other's "
            "labels): stop it first, then rename\n"
        )
        assert (out / "annotate_state.json").read_bytes() == state
        assert (out / "out" / "test" / "scrach").is_dir()
    finally:
        os.close(held)
    assert main(["--out", str(out), "--rename-class", "scrach=scratch"]) == 0  # once it has stopped


@pytest.mark.parametrize("again", ["lot_7", "out"], ids=["the same rename", "the rename undone"])
def test_a_category_rename_the_folder_refused_is_finished_or_undone_by_the_next(
    photos, tmp_path, capsys, monkeypatch, again
):
    # the state said lot_7, the tree was still out/: the same command said 'named lot_7 already: nothing to
    # rename' and left it so, and --rename-category out was refused: 'out/out exists; move it away'
    from segmentation.annotate import session as session_module

    out = annotated_out(photos, tmp_path)
    tree = sorted(p.relative_to(out / "out") for p in (out / "out").rglob("*"))

    def refused(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(session_module.os, "rename", refused)
    assert main(["--out", str(out), "--rename-category", "lot_7"]) == 2
    monkeypatch.undo()
    assert "could not be renamed" in capsys.readouterr().err
    assert main(["--out", str(out), "--rename-category", again]) == 0
    stdout = capsys.readouterr().out
    assert "nothing to rename" not in stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(["annotate_state.json", again])
    assert sorted(p.relative_to(out / again) for p in (out / again).rglob("*")) == tree
    assert AnnotationSession.read(out).category == again


def cut_short_category_rename(photos, tmp_path, capsys, monkeypatch) -> Path:
    """An --out exported as category out, then renamed to lot_7 in the state only (the folder refused)."""
    from segmentation.annotate import session as session_module

    out = annotated_out(photos, tmp_path)
    assert main(["--out", str(out), "--export"]) == 0

    def refused(*args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(session_module.os, "rename", refused)
    assert main(["--out", str(out), "--rename-category", "lot_7"]) == 2
    monkeypatch.undo()
    capsys.readouterr()
    return out


FINISHING = "note: the rename of category out to lot_7 was not finished: finishing it"


@pytest.mark.parametrize(
    ("argv", "notes"),
    [
        (  # printed nothing of the export: the classes were unchanged, and the category 'already' so
            ["--rename-category", "lot_7"],
            [FINISHING, "category"],
        ),
        (  # said nothing of the category rename it finished, and of the export only 'the old classes'
            ["--rename-class", "dent=dint"],
            [FINISHING, "classes and category"],
        ),
        (  # back to the name the export has: it is no older than before
            ["--rename-category", "out"],
            [FINISHING + ", then renaming it back"],
        ),
    ],
    ids=["the same rename", "a class rename", "the rename undone"],
)
def test_a_rename_that_finishes_a_cut_short_category_rename_says_so_and_what_the_export_names(
    photos, tmp_path, capsys, monkeypatch, argv, notes
):
    out = cut_short_category_rename(photos, tmp_path, capsys, monkeypatch)
    assert main(["--out", str(out), *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == notes[0]
    stale = [line for line in lines if line.startswith(f"note: the export in {out / 'export'}")]
    assert stale == [
        f"note: the export in {out / 'export'} names the old {old} until it is written again: python -m "
        f"segmentation.annotate --out {out} --export (each photo keeps its split)"
        for old in notes[1:]
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_a_rename_refused_the_lock_prints_no_note_of_what_it_would_do(photos, tmp_path, capsys, monkeypatch):
    # 'note: the rename of category out to lot_7 was not finished: finishing it', then the refusal
    import fcntl

    out = cut_short_category_rename(photos, tmp_path, capsys, monkeypatch)
    held = os.open(out, os.O_RDONLY)  # the running page's lock
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["--out", str(out), "--rename-category", "lot_7"]) == 2
    finally:
        os.close(held)
    captured = capsys.readouterr()
    assert captured.out == "" and "is open in another segmentation.annotate" in captured.err


def test_a_page_starts_where_only_the_last_exports_splits_refuse_a_category_rename(
    photos, tmp_path, capsys, monkeypatch, serve_page
):
    # the folder was renamed, the last export's splits.json refused the new category in its keys: every
    # page start failed on it ('error: Permission denied: .../export/splits.json', the model loaded),
    # though only an export reads those keys
    from converters.splits import save_splits
    from segmentation.annotate import export

    out, splits = exported_out(photos, tmp_path)
    before = splits.read_text()

    def refused(_splits, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(export, "save_splits", refused)
    assert main(["--out", str(out), "--rename-category", "lot_7"]) == 2
    capsys.readouterr()
    serve_page(page_args(photos[0], tmp_path))
    assert capsys.readouterr().err.splitlines()[0] == (
        f"warning: {splits} names the category out, not lot_7 (Permission denied: {splits}): an export "
        f"renames it first, and is refused until it can; make {out / 'export'} writable"
    )
    assert AnnotationSession.read(out).category_was == "out"  # the next start or export finishes it
    assert main(["--out", str(out), "--export"]) == 2
    assert capsys.readouterr().err == (
        f"error: nothing exported: {splits} names the category out, not lot_7, and cannot be rewritten "
        f"(Permission denied: {splits}), so each photo would be dealt a split anew; make {out / 'export'} "
        "writable, then export again\n"
    )
    assert splits.read_text() == before
    monkeypatch.setattr(export, "save_splits", save_splits)  # writable again
    assert main(["--out", str(out), "--export"]) == 0
    assert json.loads(splits.read_text()) == json.loads(before.replace('"out/', '"lot_7/'))  # splits kept
    assert AnnotationSession.read(out).category_was is None


def test_a_category_rename_whose_split_keys_cannot_be_written_names_that_file(
    photos, tmp_path, capsys, monkeypatch
):
    # the folder was renamed, the export's splits.json refused: the error said 'out/out could not be renamed
    # to out/lot_7' and asked for a writable --out
    from segmentation.annotate import export

    out, splits = exported_out(photos, tmp_path)
    capsys.readouterr()

    def refused(_splits, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(export, "save_splits", refused)
    assert main(["--out", str(out), "--rename-category", "lot_7"]) == 2
    monkeypatch.undo()
    assert capsys.readouterr().err == rename_cut_short(out, splits, f"make {out / 'export'} writable")
    assert sorted(p.name for p in out.iterdir()) == ["annotate_state.json", "export", "lot_7"]
    assert main(["--out", str(out), "--export"]) == 0  # finished, each photo in its split
    assert '"lot_7/test/' in splits.read_text() and '"out/test/' not in splits.read_text()


def test_a_category_rename_whose_split_keys_cannot_be_read_is_not_finished(
    photos, tmp_path, capsys, monkeypatch, serve_page
):
    # was: a splits.json that did not read was passed over and the rename marked finished, its keys still
    # the old category's, so the next export drew every photo anew; then each message about it asked for
    # 'make <out>/export writable', which does not make the file readable
    out, splits = exported_out(photos, tmp_path)
    capsys.readouterr()
    opened = Path.open

    def unreadable(path, *args, **kwargs):
        if Path(path) == splits:
            raise PermissionError(13, "Permission denied", str(path))
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", unreadable)
    assert main(["--out", str(out), "--rename-category", "lot_7"]) == 2
    assert capsys.readouterr().err == rename_cut_short(out, splits, f"make {splits} readable")
    assert main(["--out", str(out), "--rename-class", "scrach=scratch"]) == 2
    assert capsys.readouterr().err == (
        f"error: the rename of category out to lot_7, cut short earlier, must be finished before anything "
        f"else, but {splits} names the category out and cannot be read (Permission denied: {splits}); "
        f"make {splits} readable, then run it again\n"
    )
    assert main(["--out", str(out), "--export"]) == 2
    assert capsys.readouterr().err == (
        f"error: nothing exported: {splits} names the category out, not lot_7, and cannot be read "
        f"(Permission denied: {splits}), so each photo would be dealt a split anew; make {splits} "
        "readable, then export again\n"
    )
    serve_page(page_args(photos[0], tmp_path))
    assert capsys.readouterr().err.splitlines()[0] == (
        f"warning: {splits} names the category out, not lot_7 (Permission denied: {splits}): an export "
        f"renames it first, and is refused until it can; make {splits} readable"
    )
    monkeypatch.setattr(Path, "open", opened)  # readable again
    assert AnnotationSession.read(out).category_was == "out"
    assert main(["--out", str(out), "--export"]) == 0  # finished, each photo in its split
    assert '"lot_7/test/' in splits.read_text() and '"out/test/' not in splits.read_text()


def test_a_category_rename_whose_export_folder_cannot_be_searched_is_not_finished(
    photos, tmp_path, capsys, monkeypatch, unsearchable
):
    # was: from Python 3.13 Path.is_file read False where export/ could not be searched, so splits.json was
    # taken for gone and the rename marked finished, its keys still the old category's: the next export
    # drew every photo anew
    out, splits = exported_out(photos, tmp_path)
    capsys.readouterr()
    unsearchable(splits)
    assert main(["--out", str(out), "--rename-category", "lot_7"]) == 2
    monkeypatch.undo()
    assert capsys.readouterr().err == rename_cut_short(out, splits, f"make {splits} readable")
    assert AnnotationSession.read(out).category_was == "out"
    assert main(["--out", str(out), "--export"]) == 0  # finished, each photo in its split
    assert '"lot_7/test/' in splits.read_text() and '"out/test/' not in splits.read_text()


@pytest.mark.parametrize(
    "rename",
    [["--rename-class", "scrach=scratch"], ["--rename-category", "lot_8"]],
    ids=["class", "category"],
)
def test_a_rename_that_cannot_finish_an_earlier_category_rename_says_so(
    photos, tmp_path, capsys, monkeypatch, rename
):
    # the folder was renamed, the export's splits.json refused the new keys and still does: any rename
    # stopped with a bare 'error: Permission denied: .../export/splits.json' (exit 1)
    from segmentation.annotate import export

    out, splits = exported_out(photos, tmp_path)

    def refused(_splits, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(export, "save_splits", refused)
    assert main(["--out", str(out), "--rename-category", "lot_7"]) == 2
    state = (out / "annotate_state.json").read_bytes()
    capsys.readouterr()
    assert main(["--out", str(out), *rename]) == 2
    assert capsys.readouterr().err == (
        f"error: the rename of category out to lot_7, cut short earlier, must be finished before anything "
        f"else, but {splits} names the category out and cannot be rewritten (Permission denied: {splits}); "
        f"make {out / 'export'} writable, then run it again\n"
    )
    assert (out / "annotate_state.json").read_bytes() == state  # nothing renamed
    monkeypatch.undo()  # writable again: the rename finishes that one, then does its own
    assert main(["--out", str(out), *rename]) == 0
    assert AnnotationSession.read(out).category_was is None
    assert '"out/test/' not in splits.read_text()


def test_rename_category_renames_the_tree_folder_with_the_classes_and_exports(photos, tmp_path, capsys):
    out = annotated_out(photos, tmp_path)
    argv = ["--out", str(out), "--rename-category", "lot_7", "--rename-class", "scrach=scratch", "--export"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [
        f"renamed class scrach to scratch in {out} (classes: scratch dent; mask values unchanged)",
        f"renamed category out to lot_7: the tree is {out / 'lot_7'}",
    ]
    assert (out / "lot_7" / "test" / "scratch" / "a.png").is_file() and not (out / "out").exists()
    assert AnnotationSession.read(out).category == "lot_7"
    assert main(["--out", str(out), "--rename-category", "lot_7"]) == 0
    assert capsys.readouterr().out == "note: the category is named lot_7 already: nothing to rename\n"
    assert main(["--out", str(out), "--rename-category", "export"]) == 2
    assert capsys.readouterr().err == (
        "error: category 'export' would clash with the export folder beside it; choose another\n"
    )
    assert main(["--out", str(out), "--rename-category", "x", "--detector", "best.pt"]) == 2
    assert "error: --rename-category renames and exits; --proposals and --detector" in capsys.readouterr().err


SLOW_SAVES = """
import asyncio, socket, sys, time
from contextlib import asynccontextmanager
from pathlib import Path
from fastapi import FastAPI
from segmentation.annotate.__main__ import run_server

folder, said = Path(sys.argv[1]), sys.argv[2]

@asynccontextmanager
async def lifespan(app):
    try:
        yield
    except asyncio.CancelledError:
        if said:  # cancelled with a message, as anyio's cancel scopes do
            raise asyncio.CancelledError(said) from None
        raise

app = FastAPI(lifespan=lifespan)

@app.post("/api/save/{n}")
def save(n: int) -> dict:  # in a worker thread, as the page's saves
    (folder / f"started{n}").touch()
    time.sleep(2)
    (folder / f"saved{n}").touch()
    return {"saved": n}

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(8)  # the requests sent as soon as the port is known wait for the server
print(sock.getsockname()[1], flush=True)
print("forced" if run_server(app, sock) else "graceful", flush=True)
"""


@pytest.mark.parametrize(
    "said", ["", "Cancelled by cancel scope 7f3a2c1b0d90"], ids=["bare", "with-a-message"]
)
def test_a_second_ctrl_c_during_saves_stops_quietly_with_no_500(tmp_path, said):
    # with-a-message was: the lifespan's cancellation, logged as its traceback's text, was told apart by
    # its last word, 'CancelledError', and printed in full when the cancellation carried a message
    import threading
    import urllib.error

    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVES, str(tmp_path), said],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    answers = []

    def post(n: int) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/save/{n}", data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answers.append(response.status)
        except urllib.error.HTTPError as error:
            answers.append(error.code)
        except OSError:  # no answer: the page says the server stopped
            answers.append(None)

    try:
        port = int(process.stdout.readline())
        posts = [threading.Thread(target=post, args=(n,)) for n in range(3)]
        for thread in posts:
            thread.start()
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("started*"))) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        for thread in posts:
            thread.join(timeout=30)
    finally:
        process.kill()
    assert rest == "forced\n"  # no traceback of the cancelled saves
    assert 500 not in answers and len(answers) == 3


SERVED = """
import socket, sys
from fastapi import FastAPI
from common.cli import exit_code
from segmentation.annotate.__main__ import run_server

def work():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    print(sock.getsockname()[1], flush=True)
    print("forced" if run_server(FastAPI(), sock) else "graceful", flush=True)

sys.exit(exit_code(work))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_a_kill_stops_the_server_as_ctrl_c_does_with_exit_0(signum):
    # kill (docker stop, systemctl stop: a server's ordinary stop) shut the server down gracefully and
    # printed its last line, then ended 'terminated' with exit code 143
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVED],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        port = int(process.stdout.readline())
        try:  # answered once the server runs (404: the app has no page)
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30)
        except urllib.error.HTTPError:
            pass
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert (out, err, process.returncode) == ("graceful\n", "", 0)


KILLED_AS_IT_STARTS = """
import os, signal, socket, sys
import uvicorn
from fastapi import FastAPI
from common.cli import exit_code
from segmentation.annotate.__main__ import run_server

run = uvicorn.Server.run

def killed_first(self, sockets=None):  # the kill lands before uvicorn takes SIGTERM over
    os.kill(os.getpid(), signal.SIGTERM)
    return run(self, sockets)

uvicorn.Server.run = killed_first

def work():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    print("forced" if run_server(FastAPI(), sock) else "graceful", flush=True)

sys.exit(exit_code(work))
"""


def test_a_kill_before_the_server_takes_it_over_ends_terminated_with_143():
    # run_server took it for uvicorn's re-raised stop: 'graceful' (the annotate command's 'stopped' line)
    # and exit 0 for a server that never served, as if it had shut down as asked
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", KILLED_AS_IT_STARTS],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.stdout, done.stderr, done.returncode) == ("", "terminated\n", 143)


def test_a_quoted_tilde_in_a_path_option_is_the_home_folder(tmp_path, monkeypatch) -> None:
    # --out '~/a' annotated into a folder named '~' in the working folder; the help names the variable
    # that moves the default cache
    from segmentation.annotate.__main__ import build_parser

    monkeypatch.setenv("HOME", str(tmp_path))
    argv = ["--images", "~/p", "--out", "~/a", "--cache-dir", "~/c", "--detector", "~/d.pt"]
    args = build_parser().parse_args(argv)
    assert (args.images, args.out) == (tmp_path / "p", tmp_path / "a")
    assert (args.cache_dir, args.detector) == (tmp_path / "c", tmp_path / "d.pt")
    assert "$MVTEC_FINETUNE_CACHE/embeddings" in " ".join(build_parser().format_help().split())
