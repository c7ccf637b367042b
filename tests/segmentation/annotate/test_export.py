"""The app's output reads back through the stock converters: MVTec tree, YOLO, COCO."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from common.errors import UserError
from converters.convert import format_report
from converters.masks import mask_to_rle, read_mask, rle_to_mask
from converters.mvtec import scan
from segmentation.annotate import export
from segmentation.annotate.errors import AnnotationError, BusyError, ConflictError, StorageError
from segmentation.annotate.session import AnnotationSession

REPO = Path(__file__).resolve().parents[3]


def blob(shape, box):
    mask = np.zeros(shape, bool)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = True
    return mask


@pytest.fixture
def annotated(photos, tmp_path):
    """A session with one image per kind: one class, two classes, good, done, unlabelled."""
    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "new_defects", folder, classes=["scratch", "dent"])
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 40, 20)))
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (80, 70, 90, 100)))
    session.add_instance("lot_2/c.png", class_name="scratch", mask=blob((96, 128), (5, 5, 20, 12)))
    session.add_instance("lot_2/c.png", class_name="dent", mask=blob((96, 128), (60, 50, 80, 70)))
    session.set_status("lot_2/c.png", "done")
    session.set_status("b.jpg", "good")
    return session  # wide.png stays unlabelled


def test_class_values_and_their_limit():
    assert export.class_values(["scratch", "dent", "stain"]) == {
        255: "scratch",
        254: "dent",
        253: "stain",
        0: "good",
    }
    with pytest.raises(UserError, match="at most 255"):
        export.class_values([f"c{i}" for i in range(256)])


def test_compose_mask_paints_in_order_and_checks_its_input():
    first = {"class": "scratch", "mask": blob((4, 4), (0, 0, 3, 3))}
    second = {"class": "dent", "mask": blob((4, 4), (2, 2, 4, 4))}  # overlaps the corner pixel (2, 2)
    rles = [(item["class"], mask_to_rle(item["mask"])) for item in (first, second)]
    mask = export.compose_mask(rles, classes=["scratch", "dent"], shape=(4, 4))
    assert mask.tolist() == [
        [255, 255, 255, 0],
        [255, 255, 255, 0],
        [255, 255, 254, 254],
        [0, 0, 254, 254],
    ]
    with pytest.raises(UserError, match="unknown class"):
        export.compose_mask(rles, classes=["scratch"], shape=(4, 4))
    with pytest.raises(UserError, match="image is"):
        export.compose_mask(rles, classes=["scratch", "dent"], shape=(5, 4))


def test_the_tree_is_mvtec_layout_that_the_converters_scan(annotated):
    tree = annotated.category_dir
    records = {r.key: r for r in scan(annotated.out)}  # --root <out>: one category folder under it
    assert set(records) == {
        "new_defects/test/scratch/a",
        "new_defects/test/combined/lot_2__c",
        "new_defects/test/good/b",
    }
    assert records["new_defects/test/good/b"].mask is None
    assert (
        records["new_defects/test/combined/lot_2__c"].mask == tree / "ground_truth/combined/lot_2__c_mask.png"
    )
    values = read_mask(tree / "ground_truth/combined/lot_2__c_mask.png")
    assert sorted(np.unique(values).tolist()) == [0, 254, 255]


def test_export_writes_yolo_and_coco_with_one_class_per_instance(annotated):
    report = annotated.export()
    out = annotated.out / "export"
    assert report.out == out and sorted(report.names) == ["dent", "scratch"]
    counts = {split: dict(c) for split, c in report.instances.items()}
    assert sum(c.get("scratch", 0) for c in counts.values()) == 3
    assert sum(c.get("dent", 0) for c in counts.values()) == 1
    assert (out / "data.yaml").is_file() and (out / "splits.json").is_file()
    annotations = []
    for path in sorted((out / "annotations").glob("instances_*.json")):
        coco = COCO(str(path))
        names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        for ann in coco.loadAnns(coco.getAnnIds()):
            image = coco.loadImgs(ann["image_id"])[0]
            annotations.append((image["file_name"].split("/", 1)[1], names[ann["category_id"]], ann["bbox"]))
    assert sorted(annotations) == [
        ("new_defects_test_combined_lot_2__c.png", "dent", [60.0, 50.0, 20.0, 20.0]),
        ("new_defects_test_combined_lot_2__c.png", "scratch", [5.0, 5.0, 15.0, 7.0]),
        ("new_defects_test_scratch_a.png", "scratch", [10.0, 10.0, 30.0, 10.0]),
        ("new_defects_test_scratch_a.png", "scratch", [80.0, 70.0, 10.0, 30.0]),
    ]
    annotated.export()  # again: replaces the earlier export
    assert (out / "data.yaml").is_file()


def test_an_export_reports_each_photo_read_and_written_and_a_cancel_keeps_the_last_export(annotated):
    """The page's export ran with the converters' progress off: nothing said which photo it was at, and it
    could not be stopped. ``on_photo`` hears of each photo between photos; a cancel stops it at the next."""
    from segmentation.annotate.errors import ExportCancelledError
    from segmentation.annotate.export import EXPORT_DIR, ExportProgress, export_dataset

    out = annotated.out / EXPORT_DIR
    annotated.export()
    heard: list[tuple[str, int, int]] = []
    export_dataset(annotated.category_dir, out, on_photo=lambda *photo: heard.append(photo))
    last = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in out.rglob("*") if path.is_file()}
    reading = [photo for photo in heard if photo[0] == "reading"]
    writing = [photo for photo in heard if photo[0] == "writing"]
    assert reading == [("reading", done, len(reading)) for done in range(1, len(reading) + 1)]
    assert writing == [("writing", done, len(writing)) for done in range(1, len(writing) + 1)]
    assert heard == reading + writing and len(reading) == 3 and len(writing) >= 2  # two defect photos, good

    progress = ExportProgress(out)
    cancel_at = ("writing", 1, len(writing))

    def hook(stage: str, done: int, total: int) -> None:
        progress(stage, done, total)
        if (stage, done, total) == cancel_at:
            progress.cancel.set()  # the page's cancel, while photo 1 was written

    with pytest.raises(
        ExportCancelledError, match=f"^export cancelled after writing photo 2 of {len(writing)}: "
    ):
        export_dataset(annotated.category_dir, out, on_photo=hook)
    assert {
        path: (path.stat().st_mtime_ns, path.read_bytes()) for path in out.rglob("*") if path.is_file()
    } == last
    assert [path.name for path in annotated.out.iterdir() if path.name.startswith(".export")] == []


def test_the_page_goes_on_while_an_export_reads_the_tree_and_the_export_holds_the_tree_as_it_began(
    annotated, monkeypatch
):
    # the export held the session's lock while the converters read the tree: every request of the page
    # waited for it (a long export froze the page); a change meanwhile must not move files under it
    from converters import convert as convert_module

    tree, changed, during = annotated.category_dir, threading.Event(), []
    mask_to_instances = convert_module.mask_to_instances

    def change() -> None:  # a.png gets a dent: its copy and mask move from scratch/ to combined/
        annotated.add_instance("a.png", class_name="dent", mask=blob((120, 160), (100, 10, 110, 20)))
        annotated.add_instance("wide.png", class_name="dent", mask=blob((300, 640), (5, 5, 30, 30)))
        changed.set()

    def reading(*args, **kwargs):  # the converters have listed the tree and read a mask
        if not during:
            threading.Thread(target=change, daemon=True).start()
            during.append(changed.wait(10))
        return mask_to_instances(*args, **kwargs)

    monkeypatch.setattr(convert_module, "mask_to_instances", reading)
    report = annotated.export()
    assert during == [True]  # answered while the export read the tree
    assert changed.wait(30)
    exported = json.loads((annotated.out / "export" / "splits.json").read_text())
    keys = sorted(k for split in ("train", "val", "test") for k in exported[split])
    assert keys == [
        "new_defects/test/combined/lot_2__c",
        "new_defects/test/good/b",
        "new_defects/test/scratch/a",
    ]
    assert sum(sum(c.values()) for c in report.instances.values()) == 4  # the instances when it began
    # once read, the tree holds the changes
    assert (tree / "test/combined/a.png").is_file() and not (tree / "test/scratch").exists()
    assert (tree / "ground_truth/dent/wide_mask.png").is_file()
    assert annotated.export().instances != report.instances  # the next export has them


def test_files_that_cannot_be_written_after_an_export_are_a_note_of_it(annotated, monkeypatch):
    # the change was answered as saved while the export read the tree: its files' failure is not lost
    import errno

    from converters import convert as convert_module

    mask_to_instances, sync_image, added = convert_module.mask_to_instances, export.sync_image, []

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    def reading(*args, **kwargs):  # the tree was synced: the disk fills up now
        if not added:
            monkeypatch.setattr(export, "sync_image", full_disk)
            mask = blob((300, 640), (5, 5, 30, 30))
            added.append(annotated.add_instance("wide.png", class_name="dent", mask=mask))
        return mask_to_instances(*args, **kwargs)

    monkeypatch.setattr(convert_module, "mask_to_instances", reading)
    report = annotated.export()
    assert report.notes[-1] == (
        f"the files of 1 photo(s) changed during the export (e.g. wide.png) could not be written to "
        f"{annotated.category_dir} (No space left on device): they are saved in annotate_state.json and "
        "written at the next start or export; free space on its disk"  # ENOSPC: no rights to change
    )
    monkeypatch.setattr(export, "sync_image", sync_image)
    assert not (annotated.category_dir / "ground_truth/dent/wide_mask.png").exists()
    annotated.export()  # the next export writes them first
    assert (annotated.category_dir / "ground_truth/dent/wide_mask.png").is_file()


def test_a_replaced_photos_labels_wait_for_an_export_reading_their_files(annotated, monkeypatch):
    # setting them aside moves its copy and mask out of the tree the converters are reading
    from converters import convert as convert_module

    photo, refused = annotated.image_path("a.png"), []
    mask_to_instances = convert_module.mask_to_instances

    def reading(*args, **kwargs):
        if not refused:
            Image.new("RGB", (64, 48)).save(photo)  # another size
            with pytest.raises(
                BusyError, match="^a.png was replaced on disk, and an export is reading"
            ) as error:
                annotated.refresh_size("a.png")
            refused.append(error.value)
        return mask_to_instances(*args, **kwargs)

    monkeypatch.setattr(convert_module, "mask_to_instances", reading)
    annotated.export()
    assert refused and len(annotated.entry("a.png").instances) == 2  # nothing set aside meanwhile
    assert "set aside in" in annotated.refresh_size("a.png")  # once the export is done
    assert annotated.entry("a.png").instances == []


def test_a_re_export_keeps_each_photo_in_the_split_the_last_export_put_it_in(annotated):
    # each export redrew the split: deleting one photo's instances moved another from val to train
    annotated.export()
    path = annotated.out / "export" / "splits.json"
    splits = json.loads(path.read_text())
    key = "new_defects/test/scratch/a"
    drawn = next(split for split in ("train", "val", "test") if key in splits[split])
    moved = "test" if drawn != "test" else "val"  # as if an earlier, other draw had put it there
    splits[drawn].remove(key)
    splits[moved] = sorted([*splits[moved], key])
    path.write_text(json.dumps(splits))
    annotated.add_instance("wide.png", class_name="dent", mask=blob((300, 640), (5, 5, 30, 30)))
    annotated.export()
    again = json.loads(path.read_text())
    assert key in again[moved]
    assert any("wide" in k for split in ("train", "val", "test") for k in again[split])  # new: drawn


def test_photos_exported_one_at_a_time_reach_val(photos, tmp_path):
    # each re-export drew its new photos alone: one new photo of a class always went to train, so a
    # session exported after every photo never had a val split ("yolo train needs images in val")
    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["scratch"])
    splits = session.out / "export" / "splits.json"
    placed = {}
    for key, shape in [("a.png", (120, 160)), ("b.jpg", (150, 100)), ("wide.png", (300, 640))]:
        session.add_instance(key, class_name="scratch", mask=blob(shape, (5, 5, 30, 30)))
        session.export()
        drawn = json.loads(splits.read_text())
        placed = {k: split for split in ("train", "val", "test") for k in drawn[split]}
    assert placed == {
        "out/test/scratch/a": "train",
        "out/test/scratch/b": "val",
        "out/test/scratch/wide": "train",
    }


def test_a_photo_given_a_second_class_keeps_its_split(photos, tmp_path):
    # it moves from test/scratch to test/combined, another record key: a re-export drew it anew, and the
    # val photo went to train (a model trained on it was scored on its own training photo)
    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["scratch", "dent"])
    shapes = {"a.png": (120, 160), "b.jpg": (150, 100)}
    for key, shape in shapes.items():
        session.add_instance(key, class_name="scratch", mask=blob(shape, (5, 5, 30, 30)))
    session.export()
    splits = session.out / "export" / "splits.json"
    (stem,) = [key.rsplit("/", 1)[1] for key in json.loads(splits.read_text())["val"]]
    key = next(k for k in shapes if k.startswith(stem))
    session.add_instance(key, class_name="dent", mask=blob(shapes[key], (40, 40, 60, 60)))
    session.export()
    assert json.loads(splits.read_text())["val"] == [f"out/test/combined/{stem}"]


def test_an_export_short_of_a_split_asks_for_more_photos_not_an_option_the_page_has(photos, tmp_path):
    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["scratch"])
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (5, 5, 30, 30)))
    warnings = session.export().warnings
    hint = "annotate more photos: new ones fill the splits short of their share"
    assert f"split 'val' has no images ({hint})" in warnings
    assert not any("--split" in line for line in warnings)  # the converters' option: the page has none


def test_an_export_opened_in_a_file_browser_is_exported_again(annotated):
    # Finder's .DS_Store in the export folder refused every later export as a file of the user's
    annotated.export()
    (annotated.out / "export" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    assert annotated.export().out == annotated.out / "export"


@pytest.mark.parametrize(
    "spoil, message",
    [
        (
            lambda out: (out / "notes.txt").write_text("mine"),
            r"export holds notes.txt, which no export writes: each export replaces the folder whole and "
            r"would delete it; move those out, then export$",
        ),
        (
            lambda out: shutil.rmtree(out) or out.write_text("x"),
            r"export is a file, where the export writes its folder: move it away, then export$",
        ),
        (
            lambda out: (out / "splits.json").write_text("{bad"),
            r"splits.json: not JSON .*: each export keeps the split of the last one it records; delete the "
            r"export folder to draw the split anew \(photos may then change split\), then export$",
        ),
        (
            lambda out: (out / "splits.json").unlink(),
            r"export holds annotations, data.yaml, images and 1 more but no splits.json, which every "
            r"export writes: it was made otherwise \(by hand, another tool\) or its splits.json was deleted, "
            r"and each export replaces the folder whole; move the folder away \(delete it if it is an "
            r"earlier export: its split is then drawn anew\), then export$",
        ),
    ],
    ids=["a file of the user's", "a file in its place", "a broken splits file", "a data set without splits"],
)
def test_an_export_folder_the_export_cannot_take_is_refused_with_the_way_out(annotated, spoil, message):
    # the converters named --out and --overwrite (options neither the page nor --export has), or no way out
    annotated.export()
    spoil(annotated.out / "export")
    with pytest.raises(AnnotationError, match=message) as error:
        annotated.export()
    assert "--out" not in str(error.value) and "--overwrite" not in str(error.value)


def test_an_export_folder_that_cannot_be_searched_is_refused_not_taken_for_one_without_splits(
    annotated, unsearchable, monkeypatch
):
    # was: from Python 3.13 Path.is_file read False where export/ could not be searched, so the export went
    # on as if no earlier one had placed its photos, and drew every split anew
    annotated.export()
    splits = annotated.out / "export" / "splits.json"
    before = splits.read_bytes()
    unsearchable(splits)
    with pytest.raises(AnnotationError) as error:
        annotated.export()
    assert str(error.value) == (
        f"cannot read splits file {splits}: Permission denied: each export keeps the split of the last one "
        f"it records; make {splits} readable, then export"
    )
    with pytest.raises(OSError) as error:
        export.rename_split_category(annotated.out / "export", "new_defects", "lot_7")
    assert isinstance(error.value, export.UnreadableFileError) and error.value.filename == str(splits)
    monkeypatch.undo()
    assert splits.read_bytes() == before


def test_export_of_nothing_is_refused(photos, tmp_path):
    session = AnnotationSession.open(tmp_path / "out", photos[0])
    session.set_status("a.png", "good")
    with pytest.raises(ConflictError, match="^nothing to export yet: accept at least one defect instance$"):
        session.export()  # no earlier export on disk: none named


def test_an_export_refused_after_every_instance_is_deleted_names_the_earlier_one(photos, tmp_path):
    session = AnnotationSession.open(tmp_path / "out", photos[0], classes=["scratch"])
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 40, 20)))
    session.export()
    session.delete_instance("a.png", 1)
    earlier = tmp_path / "out" / "export"
    with pytest.raises(ConflictError, match=f"\\({earlier} is an earlier export, of instances since"):
        session.export()  # it stays on disk: the message says it no longer matches


@pytest.mark.parametrize("marked", ["instance", "good"])
def test_a_photo_ultralytics_finds_too_small_is_refused_by_its_key_its_labels_kept(photos, tmp_path, marked):
    # the converters' refusal named the tree's copy (lot_9__tiny.png) and said to scale that copy or move it
    # out of the source tree, which the next export undid
    folder, _ = photos
    (folder / "lot_9").mkdir()
    Image.fromarray(np.full((9, 40, 3), 128, np.uint8)).save(folder / "lot_9" / "tiny.png")
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["scratch"])
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 40, 20)))
    if marked == "good":
        session.set_status("lot_9/tiny.png", "good")
    else:
        session.add_instance("lot_9/tiny.png", class_name="scratch", mask=blob((9, 40), (5, 2, 15, 6)))
    with pytest.raises(ConflictError) as refused:
        session.export()
    assert str(refused.value) == (
        "nothing exported: lot_9/tiny.png is 40x9 pixels, and ultralytics drops an image with a side under "
        "10 pixels from a YOLO set; its labels stay in annotate_state.json: delete its instances (or its "
        "good mark) to leave it out of the export, or scale the photo up and label it again"
    )
    assert not (tmp_path / "out" / "export").exists()
    assert len(session.entry("a.png").instances) == 1
    assert session.entry("lot_9/tiny.png").status == ("good" if marked == "good" else "in_progress")
    if marked == "good":
        session.set_status("lot_9/tiny.png", "open")  # unmarked (G again), it leaves the export
    else:
        session.delete_instance("lot_9/tiny.png", 1)
    assert session.export().out == tmp_path / "out" / "export"


def run_mvtec2yolo(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "converters.mvtec2yolo", *args, "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )


def convert_with_mask_values(annotated, out: Path):
    """``mvtec2yolo --root <the app's out> --mask-values <its mask_values.json>``: classes by mask value."""
    mask_values = annotated.category_dir / "mask_values.json"
    return run_mvtec2yolo("--root", str(annotated.out), "--out", str(out), "--mask-values", str(mask_values))


def test_mvtec2yolo_accepts_the_output_folder_as_root(annotated, tmp_path):
    """The issue's contract: ``python -m converters.mvtec2yolo --root <out>`` reads the app's output."""
    plain = run_mvtec2yolo("--root", str(annotated.out), "--out", str(tmp_path / "plain"), "--coco")
    assert plain.returncode == 0, plain.stderr
    names = (tmp_path / "plain" / "data.yaml").read_text()
    assert "combined" in names and "scratch" in names  # without --mask-values: classes are folders
    exact = convert_with_mask_values(annotated, tmp_path / "exact")
    assert exact.returncode == 0, exact.stderr
    assert "combined" not in (tmp_path / "exact" / "data.yaml").read_text()
    lines = [
        line.split()[0]
        for path in (tmp_path / "exact" / "labels").rglob("*.txt")
        for line in path.read_text().splitlines()
    ]
    assert sorted(lines) == ["0", "1", "1", "1"]  # dent (id 0) once, scratch (id 1) three times


def test_mvtec2yolo_accepts_the_output_folder_as_root_after_an_export(annotated, tmp_path):
    # <out>/export's images/ and labels/ hold train/ and test/, so <out> read as a folder of data sets
    annotated.export()
    result = convert_with_mask_values(annotated, tmp_path / "exact")
    assert result.returncode == 0, result.stderr
    assert "scratch" in (tmp_path / "exact" / "data.yaml").read_text()


def test_an_export_notes_the_photos_in_progress_it_holds(annotated):
    # a.png (two scratches, not marked done) went into the data set without a word: its defects not
    # outlined yet became background, while D (done) looked like the gate to the export
    report = annotated.export()
    assert any(n.startswith("1 photo(s) in progress, not marked done") and "a.png" in n for n in report.notes)
    assert "note: 1 photo(s) in progress" in format_report(report)
    annotated.set_status("a.png", "done")
    assert not any("in progress" in note for note in annotated.export().notes)


def test_the_in_progress_note_counts_them_and_names_the_first(annotated):
    annotated.add_instance("wide.png", class_name="dent", mask=blob((300, 640), (10, 10, 40, 20)))
    [note] = [note for note in annotated.export().notes if "in progress" in note]
    assert note.startswith("2 photo(s) in progress, not marked done, ")
    assert note.endswith("(e.g. a.png); defects not outlined are background")  # what it means for training


def test_sync_moves_an_image_between_class_folders_without_copying_again(annotated):
    tree = annotated.category_dir
    copy = tree / "test/scratch/a.png"
    inode = copy.stat().st_ino
    annotated.add_instance("a.png", class_name="dent", mask=blob((120, 160), (100, 10, 110, 20)))
    moved = tree / "test/combined/a.png"
    assert moved.stat().st_ino == inode and not copy.exists()
    assert not (tree / "test/scratch").exists() and not (tree / "ground_truth/scratch").exists()


def test_a_photo_replaced_by_another_of_its_size_is_copied_again_so_the_export_pairs_what_the_page_shows(
    annotated, photos, photo_writer
):
    # The tree kept the old photo's copy: a defect outlined on the new photo was exported on the old one.
    folder, _ = photos
    tree = annotated.category_dir
    photo_writer(folder / "a.png", (120, 160), [(120, 90, 10, 10)], seed=9)  # same size, other photo
    os.utime(folder / "a.png", ns=(0, (tree / "test/scratch/a.png").stat().st_mtime_ns + 10**9))
    annotated.add_instance("a.png", class_name="dent", mask=blob((120, 160), (110, 80, 130, 100)))
    copy = tree / "test/combined/a.png"
    assert copy.read_bytes() == (folder / "a.png").read_bytes()
    photo_writer(folder / "a.png", (120, 160), [(30, 30, 10, 10)], seed=10)  # again, and no change saved
    os.utime(folder / "a.png", ns=(0, copy.stat().st_mtime_ns + 10**9))
    annotated.export()  # brings the tree in line first
    exported = next((annotated.out / "export/images").rglob("*a.png"))
    assert exported.read_bytes() == (folder / "a.png").read_bytes()
    inode = copy.stat().st_ino
    AnnotationSession.open(annotated.out)  # an unchanged photo is neither read nor copied again
    assert copy.stat().st_ino == inode


@pytest.mark.parametrize("replacement", ["other size", "no image"])
def test_a_photo_replaced_by_one_its_mask_does_not_fit_keeps_its_copy_until_its_labels_are_set_aside(
    annotated, photos, photo_writer, replacement
):
    folder, _ = photos
    copy = annotated.category_dir / "test/scratch/a.png"
    before = copy.read_bytes()
    if replacement == "other size":
        photo_writer(folder / "a.png", (100, 100), [(50, 50, 10, 10)], seed=9)
    else:
        (folder / "a.png").write_text("not an image")
    os.utime(folder / "a.png", ns=(0, copy.stat().st_mtime_ns + 10**9))
    annotated.export()  # the tree in line with the state: the mask is of the old photo's size
    assert copy.read_bytes() == before
    mask = read_mask(annotated.category_dir / "ground_truth/scratch/a_mask.png")
    assert mask.shape == (120, 160)


def test_photos_with_an_exif_rotation_are_copied_upright(tmp_path, photo_writer):
    folder = tmp_path / "photos"
    photo_writer(folder / "plain.png", (40, 60), [(20, 20, 5, 5)])
    stored = np.zeros((40, 80, 3), np.uint8)
    stored[:, :10] = 255  # a white band on the left of the stored pixels
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(folder / "phone.jpg", exif=exif, quality=95)
    assert export.upright_size(folder / "phone.jpg") == (80, 40)  # (H, W) as SAM and browsers show it
    session = AnnotationSession.open(tmp_path / "out", folder)
    session.add_instance("phone.jpg", class_name="defect", mask=blob((80, 40), (0, 0, 40, 10)))
    copy = session.category_dir / "test/defect/phone.png"  # re-encoded, no EXIF left to disagree about
    assert copy.is_file() and not (session.category_dir / "test/defect/phone.jpg").exists()
    with Image.open(copy) as upright:
        assert upright.size == (40, 80)  # what the converters read: it fits the mask
        pixels = np.asarray(upright.convert("L"))
    assert pixels[:10].mean() > 200 and pixels[20:].mean() < 50  # the band is now at the top
    assert read_mask(session.category_dir / "ground_truth/defect/phone_mask.png").shape == (80, 40)
    report = session.export()
    assert sum(sum(c.values()) for c in report.instances.values()) == 1
    moved = shutil.copytree(folder, tmp_path / "moved")  # its copy is re-encoded: not compared
    assert AnnotationSession.read(tmp_path / "out", moved).images_dir == moved


def test_state_masks_match_the_tree_masks(annotated):
    entry = annotated.entry("a.png")
    tree_mask = read_mask(annotated.category_dir / "ground_truth/scratch/a_mask.png") > 0
    union = np.zeros_like(tree_mask)
    for instance in entry.instances:
        union |= rle_to_mask(instance.rle)
    assert np.array_equal(union, tree_mask)
    state = json.loads(annotated.state_path.read_text())
    assert [i["class"] for i in state["images"]["a.png"]["instances"]] == ["scratch", "scratch"]


@pytest.mark.parametrize(
    "orientation, size",
    [(1, (40, 80)), (3, (40, 80)), (5, (80, 40)), (6, (80, 40)), (7, (80, 40)), (8, (80, 40))],
)
def test_upright_size_follows_every_exif_rotation(tmp_path, orientation, size):
    image = Image.fromarray(np.zeros((40, 80, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(tmp_path / "photo.jpg", exif=exif)
    assert export.upright_size(tmp_path / "photo.jpg") == size


def test_a_copy_cut_short_leaves_no_half_image_and_reopening_completes_it(photos, tmp_path, monkeypatch):
    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "out", folder)

    def cut_short(source, target, length):
        target.write(source.read(100))
        raise OSError("No space left on device")

    monkeypatch.setattr(export.shutil, "copyfileobj", cut_short)
    with pytest.raises(StorageError, match="saved in annotate_state.json, but .*No space"):
        session.add_instance("a.png", class_name="defect", mask=blob((120, 160), (10, 10, 40, 20)))
    copies = session.category_dir / "test" / "defect"
    assert not copies.exists() or [p.name for p in copies.iterdir()] == []
    monkeypatch.undo()
    AnnotationSession.open(session.out)
    assert (copies / "a.png").read_bytes() == (folder / "a.png").read_bytes()


def test_a_rewritten_mask_replaces_the_file_whole(annotated):
    path = annotated.category_dir / "ground_truth/scratch/a_mask.png"
    before = path.read_bytes()
    with path.open("rb") as reader:
        annotated.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (100, 10, 110, 20)))
        assert reader.read() == before
    assert path.read_bytes() != before


def test_sync_keeps_the_copy_in_place_over_a_stale_one_elsewhere(photos, tmp_path):
    folder, _ = photos
    tree = tmp_path / "tree"
    good, stale = tree / "test/dent/a.png", tree / "test/scratch/a.png"
    for path, data in ((good, (folder / "a.png").read_bytes()), (stale, b"stale")):
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
    mask = np.zeros((120, 160), np.uint8)
    mask[5:9, 5:9] = 254
    export.sync_image(
        tree, source=folder / "a.png", stem="a", folder="dent", mask=mask, existing=[stale, good]
    )
    assert good.read_bytes() == (folder / "a.png").read_bytes() and not stale.exists()


@pytest.mark.parametrize(
    ("left", "removed"),
    [
        ([".DS_Store"], True),  # Finder's: the emptied folder stayed, a class without photos
        (["Thumbs.db", "desktop.ini"], True),
        (["notes.txt"], False),  # the user's: left with its folder
        ([".DS_Store", "notes.txt"], False),
    ],
)
def test_a_class_folder_emptied_by_sync_is_removed_with_the_browser_files_it_holds(
    photos, tmp_path, left, removed
):
    folder, _ = photos
    tree = tmp_path / "tree"
    copy = tree / "test/scratch/a.png"
    copy.parent.mkdir(parents=True)
    copy.write_bytes((folder / "a.png").read_bytes())
    for name in left:
        (copy.parent / name).write_bytes(b"x")
    export.sync_image(tree, source=folder / "a.png", stem="a", folder="dent", mask=None, existing=[copy])
    assert (tree / "test/dent/a.png").is_file() and not copy.exists()
    assert copy.parent.exists() != removed
    if not removed:
        assert sorted(path.name for path in copy.parent.iterdir()) == sorted(left)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_sync_keeps_the_files_of_a_class_folder_named_in_another_case_on_a_case_blind_file_system(
    photos, tmp_path
):
    # macOS and Windows find test/Scratch as the folder test/scratch: a state renamed to Scratch beside a
    # tree whose folder rename was cut short unlinked test/scratch/a.png, the copy it had just kept, and
    # the mask; here a link Scratch -> scratch is that file system's lookup
    folder, _ = photos
    tree = tmp_path / "tree"
    copy, mask_path = tree / "test/scratch/a.png", tree / "ground_truth/scratch/a_mask.png"
    mask = np.zeros((120, 160), np.uint8)
    mask[5:9, 5:9] = 255
    for path, data in ((copy, (folder / "a.png").read_bytes()), (mask_path, export.encode_png(mask))):
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        (path.parent.parent / "Scratch").symlink_to("scratch")
    shutil.copystat(folder / "a.png", copy)  # the copy is current: kept as it is
    existing = export.stem_files(tree, "a")
    export.sync_image(tree, source=folder / "a.png", stem="a", folder="Scratch", mask=mask, existing=existing)
    assert copy.read_bytes() == (folder / "a.png").read_bytes()
    assert (read_mask(mask_path) == mask).all()


def test_a_copy_lost_from_the_tree_is_copied_again_from_the_photo(annotated):
    tree = annotated.category_dir
    (tree / "test/scratch/a.png").unlink()
    AnnotationSession.open(annotated.out)
    assert (tree / "test/scratch/a.png").read_bytes() == (annotated.images_dir / "a.png").read_bytes()
    assert read_mask(tree / "ground_truth/scratch/a_mask.png").max() == 255


def test_files_the_app_did_not_write_are_left_alone(annotated):
    tree = annotated.category_dir
    other = tree / "ground_truth/scratch/a_copy.png"
    other.write_bytes(b"the user's own file")
    AnnotationSession.open(annotated.out)
    assert (tree / "ground_truth/scratch/a_mask.png").is_file()
    assert other.read_bytes() == b"the user's own file"


def test_a_copy_of_another_format_is_written_anew_not_renamed(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    image = Image.fromarray(np.zeros((40, 80, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(folder / "phone.jpg", exif=exif)
    tree = tmp_path / "tree"
    old = tree / "test/scratch/phone.jpg"
    old.parent.mkdir(parents=True)
    old.write_bytes((folder / "phone.jpg").read_bytes())
    export.sync_image(
        tree, source=folder / "phone.jpg", stem="phone", folder="dent", mask=None, existing=[old]
    )
    with Image.open(tree / "test/dent/phone.png") as copy:
        assert copy.format == "PNG" and copy.size == (40, 80)
    assert not old.exists()


def test_a_mask_that_does_not_fit_the_upright_photo_is_refused(tmp_path):
    image = Image.fromarray(np.zeros((40, 80, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "phone.jpg", exif=exif)
    tree = tmp_path / "tree"
    stored_size = np.zeros((40, 80), np.uint8)
    stored_size[:5, :5] = 255
    with pytest.raises(AnnotationError, match="does not fit"):
        export.sync_image(tree, source=tmp_path / "phone.jpg", stem="phone", folder="dent", mask=stored_size)
    assert not (tree / "ground_truth").exists()


def test_upright_size_of_a_rotated_tiff_is_the_size_sam_sees(tmp_path):
    from segmentation.embeddings import load_rgb

    image = Image.fromarray(np.zeros((40, 80, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "scan.tif", exif=exif)
    assert load_rgb(tmp_path / "scan.tif").shape[:2] == (80, 40)
    assert export.upright_size(tmp_path / "scan.tif") == (80, 40)


def _tree(category_dir: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (category_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (category_dir / name).write_bytes(data)


def _files(category_dir: Path) -> list[str]:
    return sorted(p.relative_to(category_dir).as_posix() for p in category_dir.rglob("*") if p.is_file())


def test_a_stems_files_set_aside_keep_stale_copies_of_two_folders_and_leave_no_empty_folder(tmp_path):
    category_dir = tmp_path / "out" / "part"
    _tree(
        category_dir,
        {
            "test/scratch/a.png": b"copy",
            "test/good/a.png": b"stale copy",  # a run cut short between two folders
            "ground_truth/scratch/a_mask.png": b"mask",
            "test/scratch/b.png": b"another photo",
        },
    )
    target = tmp_path / "out" / "replaced" / "a-1"
    target.mkdir(parents=True)
    moved = export.move_stem_files(category_dir, "a", target)
    assert sorted(path.read_bytes() for path in moved) == [b"copy", b"mask", b"stale copy"]
    assert sorted(path.name for path in target.iterdir()) == sorted(path.name for path in moved)
    assert _files(category_dir) == ["test/scratch/b.png"]
    assert not (category_dir / "test" / "good").exists()  # no empty class folder left for the converters
    assert not (category_dir / "ground_truth" / "scratch").exists()


@pytest.mark.parametrize(("folder", "kept"), [("scratch", "a.png"), ("good", "a.jpg")])
def test_a_photo_gone_keeps_the_suffix_of_its_copy_in_its_folder(tmp_path, folder, kept):
    # copies in two folders (a run cut short): whichever glob lists first, the folder's own is kept
    category_dir = tmp_path / "part"
    _tree(category_dir, {"test/scratch/a.png": b"png copy", "test/good/a.jpg": b"jpg copy"})
    export.sync_image(category_dir, source=tmp_path / "gone" / "a.png", stem="a", folder=folder, mask=None)
    assert _files(category_dir) == [f"test/{folder}/{kept}"]


def test_a_photo_gone_with_its_copy_is_left_out_of_the_page_s_export_with_a_note(annotated, photos):
    # deleted from --images while the page ran, its copy lost from the tree too: the whole export stopped,
    # asking for '--images', an option of the command line, not of a page already given its folder
    folder, _ = photos
    photo = (folder / "a.png").read_bytes()
    (folder / "a.png").unlink()
    (annotated.category_dir / "test/scratch/a.png").unlink()
    report = annotated.export()
    assert sum(sum(c.values()) for c in report.instances.values()) == 2  # lot_2/c.png's two, not a.png's
    assert report.notes[0] == (
        f"1 labelled photo(s) left out of this export (e.g. a.png): gone from {folder} and the tree "
        f"{annotated.category_dir} holds no copy; their labels stay in annotate_state.json: put the photos "
        "back to export them"
    )
    assert not any("in progress" in note for note in report.notes)  # a.png, the one in progress, is out
    assert len(annotated.entry("a.png").instances) == 2  # no work lost
    assert not (annotated.category_dir / "ground_truth/scratch/a_mask.png").exists()  # no mask without image
    (folder / "a.png").write_bytes(photo)
    report = annotated.export()  # back: exported again, its copy and mask written anew
    assert sum(sum(c.values()) for c in report.instances.values()) == 4 and not report.notes[1:]
    assert (annotated.category_dir / "test/scratch/a.png").read_bytes() == photo
    # removed before the page started (no longer listed): its mask alone stopped the converters
    (folder / "a.png").unlink()
    (annotated.category_dir / "test/scratch/a.png").unlink()
    reopened = AnnotationSession.open(annotated.out, folder)
    assert "a.png" not in reopened.keys
    assert "e.g. a.png" in reopened.export().notes[0]


def test_an_export_whose_every_photo_with_instances_is_gone_with_its_copy_says_so(photos, tmp_path):
    # the converters then found only the good photo: "no defect image left to convert", not why
    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "new_defects", folder, classes=["scratch"])
    session.set_status("b.jpg", "good")
    (folder / "b.jpg").unlink()  # a good photo left out too: named only where it has instances
    (session.category_dir / "test/good/b.jpg").unlink()
    session.add_instance("lot_2/c.png", class_name="scratch", mask=blob((96, 128), (5, 5, 20, 12)))
    (folder / "lot_2/c.png").unlink()
    (session.category_dir / "test/scratch/lot_2__c.png").unlink()
    with pytest.raises(
        ConflictError,
        match=rf"^nothing exported: the photos with instances \(e.g. lot_2/c.png\) are gone from {folder} "
        rf"and the tree {session.category_dir} holds no copy of them; their labels stay in "
        "annotate_state.json: put the photos back, then export$",
    ):
        session.export()
    assert len(session.entry("lot_2/c.png").instances) == 1


def test_a_photo_changed_during_an_export_then_gone_with_no_copy_waits_for_it_quietly(annotated, monkeypatch):
    # its files could not be written after the export: a note asked for '--images', which the page has not;
    # the next export leaves it out, saying so, until the photo is back
    from converters import convert as convert_module

    mask_to_instances, photo = convert_module.mask_to_instances, annotated.images_dir / "wide.png"

    def reading(*args, **kwargs):  # the tree was synced: wide.png (no copy yet) is labelled, then deleted
        if photo.exists():
            annotated.add_instance("wide.png", class_name="dent", mask=blob((300, 640), (5, 5, 30, 30)))
            photo.unlink()
        return mask_to_instances(*args, **kwargs)

    monkeypatch.setattr(convert_module, "mask_to_instances", reading)
    report = annotated.export()
    assert not any("--images" in note or "wide.png" in note for note in report.notes), report.notes
    assert not (annotated.category_dir / "ground_truth/dent/wide_mask.png").exists()
    monkeypatch.setattr(convert_module, "mask_to_instances", mask_to_instances)
    assert "(e.g. wide.png): gone from" in annotated.export().notes[0]
    assert len(annotated.entry("wide.png").instances) == 1


def test_a_class_renamed_keeps_each_photo_in_its_split_and_the_export_takes_the_new_name(photos, tmp_path):
    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["scrach", "dent"])
    for key, shape in [("a.png", (120, 160)), ("b.jpg", (150, 100)), ("wide.png", (300, 640))]:
        session.add_instance(key, class_name="scrach", mask=blob(shape, (5, 5, 30, 30)))
    session.export()
    path = session.out / "export" / "splits.json"
    before = json.loads(path.read_text())
    session.rename_classes({"scrach": "scratch"})
    session.export()
    after = json.loads(path.read_text())
    for split in ("train", "val", "test"):
        assert after[split] == [key.replace("/scrach/", "/scratch/") for key in before[split]]
    coco = json.loads((session.out / "export" / "annotations" / "instances_train.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["dent", "scratch"]


def test_class_folders_are_renamed_whole_and_a_taken_name_is_left_to_sync_image(tmp_path):
    category = tmp_path / "cat"
    for part, name in [("test", "a.png"), ("ground_truth", "a_mask.png"), ("test", "b.png")]:
        folder = category / part / ("old" if name != "b.png" else "taken")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(name.encode())
    (category / "test" / "other").mkdir()
    (category / "test" / "other" / "c.png").write_bytes(b"c")
    inode = (category / "test" / "old" / "a.png").stat().st_ino
    export.rename_class_folders(category, {"old": "new", "other": "taken"})
    assert sorted(p.relative_to(category).as_posix() for p in category.rglob("*.png")) == [
        "ground_truth/new/a_mask.png",
        "test/new/a.png",
        "test/other/c.png",  # test/taken is there: left for sync_image, file by file
        "test/taken/b.png",
    ]
    assert (category / "test" / "new" / "a.png").stat().st_ino == inode  # moved, not copied


def test_a_class_folder_spelled_in_another_case_is_given_the_class_spelling_whole(tmp_path):
    category = tmp_path / "cat"
    for relative in ("test/scratch/a.png", "ground_truth/scratch/a_mask.png", "test/dent/b.png"):
        (category / relative).parent.mkdir(parents=True, exist_ok=True)
        (category / relative).write_bytes(b"x")
    for relative in ("test/Crack/c.png", "test/crack/d.png", "test/good/e.png"):  # two spellings: left
        (category / relative).parent.mkdir(parents=True, exist_ok=True)
        (category / relative).write_bytes(b"x")
    inode = (category / "test" / "scratch" / "a.png").stat().st_ino
    export.match_class_folder_case(category, ["Scratch", "dent", "CRACK"])
    assert sorted(p.relative_to(category).as_posix() for p in category.rglob("*.png")) == [
        "ground_truth/Scratch/a_mask.png",
        "test/Crack/c.png",
        "test/Scratch/a.png",
        "test/crack/d.png",
        "test/dent/b.png",
        "test/good/e.png",
    ]
    assert (category / "test" / "Scratch" / "a.png").stat().st_ino == inode  # renamed, not copied
    assert sorted(os.listdir(category / "test")) == ["Crack", "Scratch", "crack", "dent", "good"]


def test_a_case_rename_passes_by_a_hidden_folder_left_under_this_process_id(tmp_path):
    # a rename cut short in an earlier run of the same process id (containers reuse them) left its hidden
    # folder holding a file: renaming onto that name failed with an OSError at the start
    category = tmp_path / "cat"
    (category / "test" / "scratch").mkdir(parents=True)
    (category / "test" / "scratch" / "a.png").write_bytes(b"a")
    leftover = category / "test" / f".scratch.case-{os.getpid()}.tmp"
    leftover.mkdir()
    (leftover / "notes.txt").write_bytes(b"mine")
    export.match_class_folder_case(category, ["Scratch"])
    assert (category / "test" / "Scratch" / "a.png").read_bytes() == b"a"
    assert sorted(os.listdir(category / "test")) == [leftover.name, "Scratch"]


@pytest.mark.parametrize(
    ("left", "removed"),
    [
        ([".DS_Store"], True),  # the file browser's: the folder went on holding it for good
        ([".DS_Store", "Thumbs.db", "desktop.ini"], True),
        ([], True),
        (["notes.txt"], False),  # the user's: left as it is
        ([".DS_Store", "b.png"], False),
    ],
)
def test_a_hidden_case_folder_holding_only_browser_files_is_removed(tmp_path, left, removed):
    category = tmp_path / "cat"
    hidden = category / "ground_truth" / ".scratch.case-0f3a.tmp"
    hidden.mkdir(parents=True)
    for name in left:
        (hidden / name).write_bytes(b"x")
    (category / "ground_truth" / "Scratch").mkdir()
    export.remove_case_leftovers(category)
    assert hidden.exists() != removed
    assert (category / "ground_truth" / "Scratch").is_dir()


def test_a_users_hidden_folder_in_the_tree_survives_an_export(annotated):
    # every folder under test/ and ground_truth/ was a class folder: the copies kept in test/.backup were
    # taken for stale ones and deleted, or moved into a class folder, by the tree's sync
    tree = annotated.category_dir
    kept = {
        tree / "test/.backup/a.png": (tree / "test/scratch/a.png").read_bytes(),
        tree / "test/.backup/wide.png": b"not the app's",
        tree / "ground_truth/.backup/a_mask.png": (tree / "ground_truth/scratch/a_mask.png").read_bytes(),
    }
    for path, data in kept.items():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    annotated.add_instance("wide.png", class_name="dent", mask=blob((300, 640), (10, 10, 30, 20)))
    annotated.export()
    assert {path: path.read_bytes() for path in kept} == kept
    assert sorted(export.tree_files(tree)["a"]) == [
        tree / "ground_truth/scratch/a_mask.png",
        tree / "test/scratch/a.png",
    ]


def test_a_category_renamed_keeps_each_photo_in_its_split(photos, tmp_path):
    # the split keys begin with the category, which kept_splits matches on: every photo was drawn anew
    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["scratch"])
    for key, shape in [("a.png", (120, 160)), ("b.jpg", (150, 100)), ("wide.png", (300, 640))]:
        session.add_instance(key, class_name="scratch", mask=blob(shape, (5, 5, 30, 30)))
    session.export()
    path = session.out / "export" / "splits.json"
    before = json.loads(path.read_text())
    splits = before | {"train": before["val"], "val": before["train"]}  # as if another draw had made them
    path.write_text(json.dumps(splits))
    session.rename_category("lot_7")
    assert json.loads(path.read_text())["val"] == [k.replace("out/", "lot_7/", 1) for k in before["train"]]
    session.export()
    after = json.loads(path.read_text())
    for split in ("train", "val", "test"):
        assert after[split] == [key.replace("out/", "lot_7/", 1) for key in splits[split]]


def test_a_mask_drawn_over_nearly_all_the_photo_is_no_inverted_file(photos, tmp_path):
    # the converters' advice for an inverted file, 'save the defects non-zero on 0', fits no page mask
    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["scratch"])
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (0, 0, 160, 115)))  # 96%
    session.add_instance("b.jpg", class_name="scratch", mask=blob((150, 100), (5, 5, 30, 30)))
    [warning] = [line for line in session.export().warnings if "% of the" in line]
    assert warning == (
        "1 mask marks more than 90% of the photo as defect, e.g. a.png (96%): check it on the page, a mask "
        "of the background around a defect is exported as one defect (delete it and click the defect itself)"
    )
