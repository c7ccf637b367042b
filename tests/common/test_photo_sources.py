"""What a ``--source`` names: folders, patterns, and the refusal of what is no photo (masks, outputs)."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import UserError
from common.image_files import IMAGE_SUFFIXES, is_image_file
from common.photo_sources import (
    EVALUATION_MARKERS,
    PREDICTIONS,
    RUN_IMAGE_FOLDERS,
    RUN_MARKERS,
    TRAINING_FIGURES,
    TRAINING_IMAGE_FOLDERS,
    TRAINING_MARKERS,
    ULTRALYTICS_FIGURES,
    check_no_masks,
    check_not_ground_truth,
    glob_base,
    image_files_below,
    photo_files,
    photo_root,
)
from tests.common.test_images import write_png
from tests.conftest import assert_link_loop_line


def test_image_files_below_walks_folders_and_skips_hidden_names(tmp_path: Path) -> None:
    kept = [write_png(tmp_path / "a.png"), write_png(tmp_path / "lot_2" / "b.JPG")]
    write_png(tmp_path / "._a.png")  # a macOS resource fork
    write_png(tmp_path / ".ipynb_checkpoints" / "c.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert image_files_below(tmp_path) == sorted(kept)


def test_files_left_out_of_a_photo_folder_or_pattern_for_their_suffix_are_noted(
    tmp_path: Path, capsys
) -> None:
    # a lot with a phone's .heic photos beside the .jpg ones was inspected without them, without a word
    lot = tmp_path / "lot"
    kept = [write_png(lot / "a.png"), write_png(lot / "b.png")]
    for name in ("c.heic", "scan.jp2", "notes.txt", "Thumbs.db"):
        (lot / "sub" / name).parent.mkdir(parents=True, exist_ok=True)
        (lot / "sub" / name).write_bytes(b"x")
    (lot / "._a.heic").write_bytes(b"x")  # hidden: skipped by design, not counted
    assert photo_files(lot) == (kept, lot)
    suffixes = ", ".join(IMAGE_SUFFIXES)
    assert capsys.readouterr().err == (
        f"note: 4 files below {lot} left out, no image suffix read here ({suffixes}): "
        "Thumbs.db, c.heic, notes.txt, ...\n"
    )
    assert photo_files(f"{lot}/*") == (kept, lot)  # a folder the pattern matched is not counted
    assert capsys.readouterr().err == ""
    (lot / "d.heic").write_bytes(b"x")
    photo_files(f"{lot}/*")
    assert capsys.readouterr().err == (
        f"note: 1 file matched by '{lot}/*' left out, no image suffix read here ({suffixes}): d.heic\n"
    )
    photo_files(f"{lot}/*.png")  # nothing else matched: no note
    assert capsys.readouterr().err == ""


def test_a_file_a_pattern_reaches_through_a_link_loop_is_noted_once(tmp_path: Path, capsys) -> None:
    lot = tmp_path / "lot"
    a = write_png(lot / "a.png")
    (lot / "notes.txt").write_text("x")
    (lot / "line_2").mkdir()
    (lot / "line_2" / "up").symlink_to(lot, target_is_directory=True)  # a link back to a folder above
    assert photo_files(f"{lot}/**/*") == ([a], lot)
    assert capsys.readouterr().err.startswith(f"note: 1 file matched by '{lot}/**/*' left out, ")


def test_a_folder_or_a_link_to_one_named_like_a_photo_is_no_image_file(tmp_path: Path) -> None:
    # "lot.png/" made by hand, or a link to it: read as a photo, decoding it would fail
    (tmp_path / "lot.png").mkdir()
    (tmp_path / "link.png").symlink_to(tmp_path / "lot.png", target_is_directory=True)
    assert not is_image_file(tmp_path / "lot.png") and not is_image_file(tmp_path / "link.png")
    assert is_image_file(write_png(tmp_path / "a.png"))


def test_image_files_below_searches_linked_folders_once(tmp_path: Path) -> None:
    camera = write_png(tmp_path / "share" / "cam_1" / "x.png")
    lot = tmp_path / "lot"
    own = write_png(lot / "a.png")
    (lot / "cam_1").symlink_to(camera.parent, target_is_directory=True)  # a camera's share, linked in
    (lot / "cam_1" / "up").symlink_to(lot, target_is_directory=True)  # a loop: searched once
    # the linked folder's photos were skipped without a word, though "lot/**/*.png" matches them
    assert image_files_below(lot) == [own, lot / "cam_1" / "x.png"]


def test_a_pattern_through_a_link_loop_gives_each_photo_once(tmp_path: Path) -> None:
    lot = tmp_path / "lot"
    a, b = write_png(lot / "a.png"), write_png(lot / "line_2" / "b.png")
    (lot / "line_2" / "up").symlink_to(lot, target_is_directory=True)  # a link back to a folder above
    # each photo came back once per round of the loop ('line_2/up/line_2/up/.../a.png')
    assert photo_files(f"{lot}/**/*.png") == ([a, b], lot)


def test_image_files_below_refuses_a_folder_without_images(tmp_path: Path) -> None:
    write_png(tmp_path / ".hidden.png")
    with pytest.raises(UserError, match=rf"no image files \(.png, .*\) in {tmp_path}$"):
        image_files_below(tmp_path)


@pytest.mark.parametrize("source", [".", "hazelnut", "hazelnut/ground_truth/crack"])
def test_an_mvtec_categorys_masks_are_not_photos(tmp_path: Path, source: str) -> None:
    write_png(tmp_path / "hazelnut" / "test" / "crack" / "000.png")
    write_png(tmp_path / "hazelnut" / "ground_truth" / "crack" / "000_mask.png")
    masks = tmp_path / "hazelnut" / "ground_truth"
    with pytest.raises(UserError, match=rf"includes {masks}, an MVTec .* \(e.g. {tmp_path}/hazelnut/test\)$"):
        image_files_below(tmp_path / source)
    assert image_files_below(tmp_path / "hazelnut" / "test")  # the photos alone pass


def test_a_ground_truth_folder_without_test_beside_it_is_photos(tmp_path: Path) -> None:
    photo = write_png(tmp_path / "ground_truth" / "a.png")  # a user's own folder name, not MVTec's layout
    assert image_files_below(tmp_path) == [photo]
    check_not_ground_truth([photo], tmp_path)


@pytest.mark.parametrize(
    ("mask", "source"),
    [
        ("lot/000_mask.png", "lot"),  # copied in beside its photo
        ("test_public/ground_truth/bad/000_mask.png", "test_public"),  # MVTec AD 2: no test/ beside it
        ("lot/000_mask.png", "lot/*.png"),  # a pattern
    ],
)
def test_masks_beside_their_photos_are_not_photos(tmp_path: Path, mask: str, source: str) -> None:
    photo = write_png(tmp_path / mask.replace("ground_truth/", "").replace("_mask", ""))
    write_png(tmp_path / mask)
    write_png(tmp_path / "lot" / "001_mask.png")  # no photo 001: a photo of its own
    message = f"{tmp_path}/{source} includes {tmp_path}/{mask}, the mask of {photo} by MVTec's naming"
    with pytest.raises(UserError, match=f"^{re.escape(message)}"):
        photo_files(f"{tmp_path}/{source}")


def test_check_no_masks_counts_them_and_passes_photos_alone(tmp_path: Path) -> None:
    files = [tmp_path / name for name in ("a.png", "a_mask.png", "b.jpg", "b_mask.png", "c_mask.png")]
    with pytest.raises(UserError, match=r"a_mask.png and 1 more, the mask of .*/a.png by"):
        check_no_masks(files, tmp_path)
    check_no_masks([tmp_path / "a.png", tmp_path / "c_mask.png", tmp_path / "_mask.png"], tmp_path)


def test_photo_files_of_a_file_a_folder_and_patterns(tmp_path: Path) -> None:
    a, b = write_png(tmp_path / "lot" / "a.png"), write_png(tmp_path / "lot" / "line_2" / "b.png")
    c = write_png(tmp_path / "lot" / "c.jpg")  # beside the .png files: not matched by "*.png"
    (tmp_path / "lot" / "d.png.txt").write_text("not an image")
    assert photo_files(a) == ([a], None)
    assert photo_files(tmp_path / "lot") == ([a, c, b], tmp_path / "lot")
    assert photo_files(f"{tmp_path}/lot/*.png") == ([a], tmp_path / "lot")
    assert photo_files(f"{tmp_path}/lot/**/*.png") == ([a, b], tmp_path / "lot")  # recursive
    assert photo_files(f"{tmp_path}/l?t/*.*") == ([a, c], tmp_path)  # the base: before the first wildcard


def test_an_inspection_output_among_the_photos_is_named_as_one(tmp_path: Path) -> None:
    # inspection.predict --source lot/a.jpg --out lot/out (one file: allowed), then --source lot
    lot = tmp_path / "lot"
    write_png(lot / "a.jpg")
    write_png(lot / "out" / "masks" / "out" / "test" / "colour" / "a.jpg")
    write_png(lot / "out" / "masks" / "out" / "ground_truth" / "colour" / "a_mask.png")
    (lot / "out" / "images.json").write_text("{}")
    # it said to inspect lot/out/masks/out/test instead: links to the photos the run inspected
    message = (
        f"{lot} includes {lot / 'out'}, an inspection's output folder (its masks tree "
        f"{lot / 'out' / 'masks' / 'out' / 'ground_truth'} holds masks, not photos): move it out of the "
        "photos' folder"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(lot)
    (lot / "out" / "images.json").unlink()  # an MVTec tree kept in a folder named masks: its own message
    with pytest.raises(UserError, match="an MVTec category's defect masks, not photos"):
        photo_files(lot)


def test_an_inspection_output_given_itself_is_named_as_what_it_is(tmp_path: Path) -> None:
    # it read 'out includes out, an inspection's output folder (...): move it out of the photos' folder'
    out = tmp_path / "out"
    write_png(out / "masks" / "out" / "test" / "colour" / "a.jpg")
    write_png(out / "masks" / "out" / "ground_truth" / "colour" / "a_mask.png")
    (out / "images.json").write_text("{}")
    message = (
        f"{out} is an inspection's output folder (its masks tree {out / 'masks' / 'out' / 'ground_truth'} "
        "holds masks, not photos): name the folder of the photos it inspected instead"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(out)


@pytest.mark.parametrize("folder", RUN_IMAGE_FOLDERS)
def test_a_run_output_given_itself_is_named_as_what_it_is(tmp_path, monkeypatch, folder) -> None:
    # it read 'runs/r1 includes runs/r1, an earlier run's output folder (...)'
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "runs" / "r1", folder, "predict.json")
    message = (
        "runs/r1 is an earlier run's output folder (runs/r1/predictions.json): "
        f"its {folder}/ holds the images it wrote, not photos; name the photos' own folder instead"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files("runs/r1")


def test_an_mvtec_ground_truth_folder_given_itself_is_named_as_what_it_is(tmp_path: Path) -> None:
    masks = tmp_path / "hazelnut" / "ground_truth"
    write_png(masks / "crack" / "000_mask.png")
    write_png(tmp_path / "hazelnut" / "test" / "crack" / "000.png")
    message = (
        f"{masks} is an MVTec category's defect masks, not photos: name the photos' folder instead "
        f"(e.g. {tmp_path / 'hazelnut' / 'test'})"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(masks)


def write_run(out: Path, folder: str, marker: str) -> Path:
    """An earlier run's --out: its predictions.json, ``marker`` and an image in ``folder``."""
    image = write_png(out / folder / "sub" / "a__b.png")
    (out / "predictions.json").write_text("[]")
    (out / marker).write_text("{}")
    return image


@pytest.mark.parametrize("marker", RUN_MARKERS)
@pytest.mark.parametrize("folder", RUN_IMAGE_FOLDERS)
@pytest.mark.parametrize("source", ["lots", "lots/**/*.png", "lots/*/*/*/*.png"])
def test_an_earlier_runs_output_linked_among_the_photos_is_refused(
    tmp_path, monkeypatch, source, folder, marker
) -> None:
    # was: lots/latest (a link to runs/r1, an --out given before) had its overlays, masks and anomaly maps
    # read as photos, named lots/latest/overlays/..., by a run with any other --out, without a word
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "cam" / "x" / "a.png")
    write_run(tmp_path / "runs" / "r1", folder, marker)
    (tmp_path / "lots" / "latest").symlink_to(tmp_path / "runs" / "r1", target_is_directory=True)
    message = (
        f"{source} includes lots/latest, an earlier run's output folder (lots/latest/predictions.json): "
        f"its {folder}/ holds the images it wrote, not photos; move it out of the photos' folder"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(source)


@pytest.mark.parametrize(
    ("source", "marker", "listed"),
    [
        ("runs/r1/overlays", "predict.json", "sub/a__b.png"),  # its image folder itself: asked for
        ("runs/r1/overlays/*/*.png", "predict.json", "sub/a__b.png"),
        ("runs", "notes.json", "r1/overlays/sub/a__b.png"),  # predictions.json alone: another tool's
    ],
)
def test_images_beside_no_run_output_or_asked_for_are_photos(tmp_path, monkeypatch, source, marker, listed):
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "runs" / "r1", "overlays", marker)
    assert photo_files(source) == ([Path(source.split("/*")[0], listed)], Path(source.split("/*")[0]))


@pytest.mark.parametrize(
    "source",
    # its image folder itself, spelled with a '..': was refused as taken in (the second naming masks/)
    ["runs/*/../r1/overlays/*/*.png", "runs/r1/*/../overlays/*/*.png", "runs/r1/masks/../overlays/*/*.png"],
)
def test_a_run_image_folder_asked_for_through_a_parent_part_is_photos(tmp_path, monkeypatch, source) -> None:
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "runs" / "r1", "overlays", "predict.json")
    (tmp_path / "runs" / "r1" / "masks").mkdir()
    [photo] = photo_files(source)[0]
    assert photo.resolve() == (tmp_path / "runs" / "r1" / "overlays" / "sub" / "a__b.png").resolve()


@pytest.mark.parametrize(
    ("source", "out"),
    [
        ("runs/r1/masks/../*/*/*.png", "runs/r1"),  # was named runs/r1/masks/..: taken as spelled
        ("runs/*/../*/*/*/*.png", "runs/r1"),
        ("lots/x/../*/*/*.png", "lots/x/.."),  # x links to runs/r1/masks: x/.. is runs/r1, not lots
        # '**' matches no folder too: lots/../runs/r1 (read in without a word), not lots/runs as normpath
        # reads '**/..'
        ("lots/**/../runs/*/*/*/*.png", "lots/../runs/r1"),
    ],
)
def test_a_run_output_taken_in_through_a_parent_part_is_refused(tmp_path, monkeypatch, source, out) -> None:
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "runs" / "r1", "overlays", "predict.json")
    (tmp_path / "runs" / "r1" / "masks").mkdir()
    (tmp_path / "lots").mkdir()
    (tmp_path / "lots" / "x").symlink_to(tmp_path / "runs" / "r1" / "masks", target_is_directory=True)
    message = f"{source} includes {out}, an earlier run's output folder ({out}/predictions.json): its "
    message += "overlays/ holds"
    with pytest.raises(UserError, match=f"^{re.escape(message)}"):
        photo_files(source)


@pytest.mark.parametrize(
    ("markers", "written"),
    [
        (("metrics.json", "report.md", "scores.csv"), "anomaly_maps.png"),  # anomaly.evaluate's figure
        (("evaluation.json", "report.txt"), "PR_curve.png"),  # detection.evaluate's, ultralytics' plots
        (("metrics.json", "table.md"), "overlays/a__b.png"),  # segmentation.evaluate's overlays
        (("folds.json", "folds.md"), "folds.png"),  # segmentation.evaluate --folds' figure
    ],
)
@pytest.mark.parametrize(
    "source", ["lots", "lots/**/*.png", "lots/*/{below}*.png"]
)  # {below}: one '*/' a folder
def test_an_earlier_evaluations_images_among_the_photos_are_refused(
    tmp_path, monkeypatch, markers, written, source
) -> None:
    # was: an evaluation's --out inside the photos' folder had its figures read as photos, without a word
    monkeypatch.chdir(tmp_path)
    source = source.format(below="*/" * written.count("/"))
    write_png(tmp_path / "lots" / "l1" / "a.png")
    write_png(tmp_path / "lots" / "l1" / "sub" / "b.png")
    write_png(tmp_path / "lots" / "eval" / written)
    for name in markers:
        (tmp_path / "lots" / "eval" / name).write_text("{}")
    what = (
        f"its {written.split('/')[0]}/ holds the images it wrote, not photos"
        if "/" in written
        else f"its {written} is a figure it wrote, not a photo"
    )
    message = (
        f"{source} includes lots/eval, an earlier evaluation's output folder (lots/eval/{markers[0]}): "
        f"{what}; move it out of the photos' folder"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(source)


def test_an_evaluation_folder_given_itself_is_refused_and_its_image_folder_passes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "eval" / "overlays" / "a.png")
    write_png(tmp_path / "eval" / "anomaly_maps.png")
    for name in ("metrics.json", "table.md"):
        (tmp_path / "eval" / name).write_text("{}")
    with pytest.raises(UserError, match="^eval is an earlier evaluation's output folder"):
        photo_files("eval")
    assert photo_files("eval/overlays") == ([Path("eval/overlays/a.png")], Path("eval/overlays"))
    (tmp_path / "eval" / "table.md").unlink()  # metrics.json alone: another tool's, its images photos
    assert len(photo_files("eval")[0]) == 2


def test_the_evaluation_markers_are_the_files_the_commands_write() -> None:
    from anomaly.report import REPORT_NAMES
    from detection.report import REPORT_JSON, REPORT_TEXT
    from inspection.report import REPORT_FILES
    from segmentation.crossval import SUMMARY_FILES
    from segmentation.evaluate import EVALUATION_FILES

    assert {
        ("metrics.json", "report.md"),
        ("metrics.json", "table.md"),
        SUMMARY_FILES[:2],
        (REPORT_JSON, REPORT_TEXT),
    } == set(EVALUATION_MARKERS)
    assert EVALUATION_MARKERS[SUMMARY_FILES[:2]] == SUMMARY_FILES[2:] == ("folds.png",)  # --folds' figure
    assert {"metrics.json", "report.md"} <= set(REPORT_NAMES) & set(REPORT_FILES)
    assert {"metrics.json", "table.md"} <= EVALUATION_FILES
    # the figures beside the report: anomaly.evaluate's; inspection's (REPORT_FILES), segmentation's: none
    figures = tuple(name for name in REPORT_NAMES if Path(name).suffix in IMAGE_SUFFIXES)
    assert EVALUATION_MARKERS[("metrics.json", "report.md")] == figures == ("anomaly_maps.png",)
    assert not any(Path(name).suffix in IMAGE_SUFFIXES for name in (*REPORT_FILES, *EVALUATION_FILES))


def write_folds_out(out: Path, data: Path, figure: str) -> None:
    """A ``segmentation.evaluate --folds`` --out of two rounds over the data set ``data``: its summary,
    ``fold<i>/`` data folders (``images`` a link to ``data/images``), ``runs/fold<i>/`` training runs
    each with ``figure``."""
    for name in ("folds.json", "folds.md"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("{}")
    for index in range(2):
        (out / f"fold{index}" / "annotations").mkdir(parents=True)
        (out / f"fold{index}" / "annotations" / "instances_train.json").write_text("{}")
        (out / f"fold{index}" / "images").symlink_to(data / "images", target_is_directory=True)
        run = out / "runs" / f"fold{index}"
        write_png(run / figure)
        for name in TRAINING_MARKERS:
            (run / name).write_text("epoch\n")


@pytest.mark.parametrize("figure", ["curves.png", "results.png", "train_batch0.jpg"])
@pytest.mark.parametrize("source", ["lots", "lots/**/*.*g", "lots/cv/runs/*/*.*g"])
def test_a_training_runs_figures_among_the_photos_are_refused(tmp_path, monkeypatch, source, figure) -> None:
    # segmentation.train's curves.png (the rounds of --folds train in runs/fold<i>), ultralytics' plots of
    # detection.train: a --source taking in a training run read them as photos without a word
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "data" / "images" / "train" / "a.png")
    write_png(tmp_path / "lots" / "l1" / "b.png")
    write_folds_out(tmp_path / "lots" / "cv", tmp_path / "data", figure)
    message = (
        f"{source} includes lots/cv/runs/fold0, an earlier training run's output folder "
        f"(lots/cv/runs/fold0/args.yaml): its {figure} is a figure it wrote, not a photo; move it out of "
        "the photos' folder"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(source)


@pytest.mark.parametrize(
    "written",
    [
        "visualizations/a.png",  # ultralytics' plots with visualize: a val photo drawn, under its own name
        "tiles/images/train/a_x0_y0.png",  # detection.train's tile: the data set cut into tiles
    ],
)
@pytest.mark.parametrize("source", ["lots", "lots/**/*.png", "lots/*/*/{below}*.png"])
def test_a_training_runs_image_folders_among_the_photos_are_refused(tmp_path, monkeypatch, written, source):
    # were read as photos without a word: only the overlays, masks and anomaly maps folders were looked at
    monkeypatch.chdir(tmp_path)
    source = source.format(below="*/" * written.count("/"))
    write_png(tmp_path / "lots" / "l1" / "a.png")
    write_png(tmp_path / "lots" / "runs" / "train" / written)
    for name in TRAINING_MARKERS:
        (tmp_path / "lots" / "runs" / "train" / name).write_text("epoch\n")
    message = (
        f"{source} includes lots/runs/train, an earlier training run's output folder "
        f"(lots/runs/train/args.yaml): its {written.split('/')[0]}/ holds the images it wrote, not photos; "
        "move it out of the photos' folder"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        photo_files(source)
    (tmp_path / "lots" / "runs" / "train" / "args.yaml").unlink()  # results.csv alone: another tool's
    assert len(photo_files(source)[0]) == (1 if "*/*/*" in source else 2)  # the pattern: the run's alone


@pytest.mark.parametrize("folder", TRAINING_IMAGE_FOLDERS)
@pytest.mark.parametrize("markers", [("predictions.json", "predict.json"), ("evaluation.json", "report.txt")])
def test_a_training_runs_image_folder_names_below_other_outputs_hold_photos(
    tmp_path, monkeypatch, folder, markers
):
    # only a training run writes tiles/ and visualizations/: below a predict run or an evaluation they are
    # folders of photos put there (as they were before)
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "out" / folder / "a.png")
    for name in markers:
        (tmp_path / "lots" / "out" / name).write_text("{}")
    assert photo_files("lots")[0] == [Path("lots/out", folder, "a.png")]


@pytest.mark.parametrize("source", ["lots", "lots/**/*.png"])
def test_the_photos_of_a_folds_rounds_are_the_data_sets_read_once(tmp_path, monkeypatch, source) -> None:
    # each fold<i>/images is a link to the data set's images/: its photos, read as the data set's are,
    # once however many rounds link them; the rounds' runs hold no figure here (a killed run's first epoch)
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "data" / "images" / "train" / "a.png")
    write_png(tmp_path / "lots" / "l1" / "b.png")
    write_folds_out(tmp_path / "lots" / "cv", tmp_path / "data", "curves.png")
    for index in range(2):
        (tmp_path / "lots" / "cv" / "runs" / f"fold{index}" / "curves.png").unlink()
    assert photo_files(source)[0] == [Path("lots/cv/fold0/images/train/a.png"), Path("lots/l1/b.png")]
    (tmp_path / "lots" / "l1" / "results.csv").write_text("")  # results.csv alone: another tool's, a photo
    assert len(photo_files(source)[0]) == 2


def test_the_training_markers_are_the_files_segmentation_train_writes() -> None:
    from segmentation.run_folder import UNSTARTED_NAMES
    from segmentation.train import CLOSING_FILES

    assert TRAINING_MARKERS == ("args.yaml", "results.csv")
    assert TRAINING_MARKERS[0] in UNSTARTED_NAMES and TRAINING_MARKERS[1] in CLOSING_FILES
    assert [name for name in CLOSING_FILES if Path(name).suffix in IMAGE_SUFFIXES] == ["curves.png"]


@pytest.mark.parametrize("markers", [TRAINING_MARKERS, ("evaluation.json", "report.txt")])
def test_photos_beside_a_runs_marker_files_of_their_own_are_read(tmp_path, monkeypatch, markers) -> None:
    # were refused as a training run's (or detection.evaluate's) figures: a lot folder holding its capture
    # settings (args.yaml) and measurements (results.csv), every image beside them taken for one
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "a.png")
    write_png(tmp_path / "lots" / "l1" / "labels_7.jpg")
    for name in markers:
        (tmp_path / "lots" / "l1" / name).write_text("epoch\n")
    photos = [Path("lots/l1/a.png"), Path("lots/l1/labels_7.jpg")]
    assert photo_files("lots")[0] == photos == photo_files("lots/l1")[0] == photo_files("lots/*/*.*g")[0]
    kind = "training run" if markers == TRAINING_MARKERS else "evaluation"
    figures = ["results.png", "BoxPR_curve.png", "confusion_matrix_normalized.png", "val_batch0_pred.jpg"]
    for figure in ["curves.png", *figures] if kind == "training run" else figures:
        write_png(tmp_path / "lots" / "l1" / figure)
        with pytest.raises(
            UserError, match=f"earlier {kind}'s .*: its {re.escape(figure)} is a figure it wrote"
        ):
            photo_files("lots")
        (tmp_path / "lots" / "l1" / figure).unlink()


#: Images the installed ultralytics' training and validation code names that it does not draw in a run's
#: folder: defaults of functions called with a name, the tuner's and the multi-data-set trainer's figures
#: (their own folders), the class-activation maps of predict, the semantic task's IoU chart (not trained
#: here). Each is named so the test fails when ultralytics renames a figure it does draw.
_NOT_RUN_FIGURES = {
    "image.jpg", "im.jpg", "images.jpg", "pr_curve.png", "mc_curve.png", "multitrain_results.png",
    "tune_scatter_plots.png", "tune_fitness.png", "*_cam.jpg", "iou_bar_chart.png",
}  # fmt: skip


def _ultralytics_image_names() -> dict[str, str]:
    """The image file names in the string literals of the installed ultralytics' training and validation
    code (an f-string's fields as ``*``), each with the module naming it."""
    import ast

    import ultralytics

    root = Path(ultralytics.__file__).parent
    modules = [root / "engine" / "trainer.py", root / "engine" / "validator.py"]
    modules += [root / "utils" / "plotting.py", root / "utils" / "metrics.py"]
    for task in ("detect", "segment", "world", "yoloe"):
        modules += sorted((root / "models" / "yolo" / task).glob("*.py"))
    names = {}
    for module in modules:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        parts = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "*" for v in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
                text = node.value
            else:
                continue
            if Path(text).suffix in IMAGE_SUFFIXES and Path(text).stem and not re.search(r"[\s/]", text):
                names[text] = str(module.relative_to(root))
    return names


def test_the_ultralytics_figures_are_those_the_installed_version_draws() -> None:
    import ultralytics

    from detection.train import ULTRALYTICS_OUTPUTS

    names = _ultralytics_image_names()
    assert {"results.png", "labels.jpg", "train_batch*.jpg", "*PR_curve.png"} <= set(names)  # read at all
    # the confusion matrices: f"{title.lower().replace(' ', '_')}.png" of their titles
    assert names.pop("*.png") == "utils/metrics.py"
    metrics = Path(ultralytics.__file__).parent / "utils" / "metrics.py"
    assert 'title = "Confusion Matrix" + " Normalized" * normalize' in metrics.read_text(encoding="utf-8")
    drawn = {"confusion_matrix.png", "confusion_matrix_normalized.png"}
    drawn |= {name.replace("*", "Box") for name in names if name not in _NOT_RUN_FIGURES}
    for name in sorted(drawn):
        assert any(fnmatch.fnmatch(name, figure) for figure in ULTRALYTICS_FIGURES), name
    assert set(ULTRALYTICS_FIGURES) <= set(TRAINING_FIGURES) and set(ULTRALYTICS_FIGURES) <= set(
        ULTRALYTICS_OUTPUTS
    )
    assert EVALUATION_MARKERS[("evaluation.json", "report.txt")] == ULTRALYTICS_FIGURES
    assert not any(fnmatch.fnmatch(name, figure) for name in _NOT_RUN_FIGURES for figure in TRAINING_FIGURES)


@pytest.mark.parametrize("report", ["report.md", "table.md"])
def test_photos_beside_a_metrics_json_and_a_report_of_their_own_are_read(
    tmp_path, monkeypatch, report
) -> None:
    # were refused as an evaluation's figures: a lot folder holding its own QA metrics.json and report.md
    # (every image beside them was taken for one), where anomaly.evaluate writes anomaly_maps.png alone
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "a.png")
    write_png(tmp_path / "lots" / "l1" / "b.png")
    for name in ("metrics.json", report):
        (tmp_path / "lots" / "l1" / name).write_text("{}")
    photos = [Path("lots/l1/a.png"), Path("lots/l1/b.png")]
    assert photo_files("lots")[0] == photos == photo_files("lots/l1")[0] == photo_files("lots/*/*.png")[0]
    if report == "report.md":  # the figure anomaly.evaluate writes there is still refused
        write_png(tmp_path / "lots" / "l1" / "anomaly_maps.png")
        with pytest.raises(UserError, match=r"its anomaly_maps\.png is a figure it wrote, not a photo"):
            photo_files("lots")


def test_the_run_image_folders_are_those_the_commands_write() -> None:
    from anomaly import outputs as anomaly_outputs
    from detection import predict as detection_predict
    from inspection import outputs as inspection_outputs

    written = {detection_predict.OVERLAYS_DIR, *anomaly_outputs.IMAGE_FOLDERS}
    written |= {
        inspection_outputs.OVERLAYS_DIR,
        inspection_outputs.MASKS_DIR,
        inspection_outputs.ANOMALY_MAPS_DIR,
    }
    assert written == set(RUN_IMAGE_FOLDERS)
    assert {detection_predict.PREDICTIONS_FILE, anomaly_outputs.PREDICTIONS_FILE} == {PREDICTIONS}
    assert inspection_outputs.PREDICTIONS_FILE == PREDICTIONS
    assert {
        detection_predict.SETTINGS_FILE,
        anomaly_outputs.IMAGES_FILE,
        inspection_outputs.IMAGES_FILE,
    } <= set(RUN_MARKERS)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nowhere", r"^--source not found: .*/nowhere$"),  # a plain path: no pattern
        ("lot/*.PNG", r"^the pattern '.*/lot/\*\.PNG' matches no image files \(\.png, .*\.webp\)$"),
        ("nowhere/**/*.png", r"^the pattern '.*/nowhere/\*\*/\*\.png' matches no image files"),
        ("hazelnut/*/*/*.png", r"includes .*/hazelnut/ground_truth, an MVTec category's defect masks"),
    ],
)
def test_bad_photo_sources_are_one_line_errors(tmp_path: Path, source: str, message: str) -> None:
    write_png(tmp_path / "lot" / "a.jpg")
    write_png(tmp_path / "hazelnut" / "test" / "crack" / "000.png")
    write_png(tmp_path / "hazelnut" / "ground_truth" / "crack" / "000_mask.png")
    with pytest.raises(UserError, match=message):
        photo_files(f"{tmp_path}/{source}")


def test_a_source_in_a_folder_that_cannot_be_searched_is_not_called_missing_on_python_3_13(
    tmp_path: Path, unsearchable
) -> None:
    # 3.13's Path.is_file and is_dir are False there: '--source not found: <it>' of a photo that is there,
    # and its root taken for the folder above (as a pattern's)
    photo = write_png(tmp_path / "lot" / "a.png")
    unsearchable(tmp_path / "lot")
    for read in (photo_files, photo_root):
        with pytest.raises(PermissionError) as raised:  # the commands' line: 'Permission denied: <path>'
            read(photo)
        assert raised.value.filename == str(photo)


@pytest.mark.parametrize("name", ["x.npy", "scan", "a.PNG.bak"])
def test_a_source_file_without_an_image_suffix_is_named_as_a_folder_note_names_it(tmp_path, name) -> None:
    np.save(tmp_path / "x.npy", np.zeros((4, 4)))  # 'cannot read image <it>: ... (PIL cannot identify it)'
    (tmp_path / name).write_bytes((tmp_path / "x.npy").read_bytes())
    suffixes = re.escape(", ".join(IMAGE_SUFFIXES))
    with pytest.raises(UserError, match=rf"^--source {re.escape(str(tmp_path / name))} has no image suffix "):
        photo_files(tmp_path / name)
    with pytest.raises(UserError, match=rf"read here \({suffixes}\)$"):
        photo_files(str(tmp_path / name))


def test_a_source_file_with_an_upper_case_image_suffix_is_read(tmp_path: Path) -> None:
    photo = write_png(tmp_path / "a.PNG")
    assert photo_files(photo) == ([photo], None)


def test_a_source_that_is_neither_a_file_nor_a_folder_is_named_so(tmp_path: Path) -> None:
    pipe = tmp_path / "photos"
    os.mkfifo(pipe)  # it was '--source not found: <it>', of what is there
    with pytest.raises(UserError, match=rf"^--source {re.escape(str(pipe))} is neither a file nor a folder$"):
        photo_files(pipe)


@pytest.mark.parametrize("source", ["", " "])  # --source "$PHOTOS" with the variable unset
@pytest.mark.parametrize("read", [photo_files, photo_root])
def test_an_empty_source_is_refused_not_read_as_the_working_folder(tmp_path, monkeypatch, read, source):
    write_png(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)  # Path("") is ".": its photos would be read
    with pytest.raises(UserError, match=rf"^--source is empty \({re.escape(repr(source))}; an unset shell"):
        read(source)


def test_photo_roots(tmp_path: Path) -> None:
    photo = write_png(tmp_path / "one.png")
    assert glob_base("/data/lot_*/x.png") == Path("/data")
    assert glob_base("*.jpg") == Path(".")
    assert photo_root(tmp_path) == tmp_path
    assert photo_root(photo) == photo
    assert photo_root(f"{tmp_path}/*.png") == tmp_path
    assert photo_root(f"{tmp_path}/**/*.png") == tmp_path


def test_glob_base_stops_at_the_first_wildcard():
    assert glob_base("lot/*/line_2/*.png") == Path("lot")


def test_a_broken_link_to_a_photo_is_one_line_naming_it(tmp_path: Path) -> None:
    """A photo deleted from the share its link points into: skipped, it would leave the lot unsaid."""
    write_png(tmp_path / "lot" / "001.png")
    (tmp_path / "lot" / "002.png").symlink_to(tmp_path / "share" / "002.png")  # never written
    with pytest.raises(UserError, match=r"broken link: .*lot/002.png points to .*share/002.png, which does"):
        image_files_below(tmp_path / "lot")


def test_a_photo_or_its_link_in_a_folder_that_cannot_be_searched_is_named_so_on_python_3_13(
    tmp_path: Path, unsearchable, monkeypatch
) -> None:
    # 3.13's Path.exists and is_symlink are False there: the link was 'broken link: ... which does not exist',
    # and the photo in a folder that may be listed but not searched was no photo, left out of the lot unsaid
    photo = write_png(tmp_path / "share" / "002.png")
    link = tmp_path / "lot" / "002.png"
    link.parent.mkdir()
    link.symlink_to(photo)
    unsearchable(tmp_path / "share")
    looked_up = os.stat  # the fixture's: the kernel refuses the link's target too

    def stat(path, *args, follow_symlinks=True, **kwargs):
        if follow_symlinks and Path(os.fspath(path)) == link:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return looked_up(path, *args, follow_symlinks=follow_symlinks, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    for path in (link, photo):
        with pytest.raises(PermissionError) as raised:  # the commands' line: 'Permission denied: <path>'
            is_image_file(path)
        assert raised.value.filename == str(path)


def test_a_photo_link_that_loops_is_named_as_a_link_loop(tmp_path: Path) -> None:
    # it said "broken link: .../002.png points to 002.png, which does not exist" of a link to itself
    write_png(tmp_path / "lot" / "001.png")
    (tmp_path / "lot" / "002.png").symlink_to("002.png")
    with pytest.raises(UserError) as error:
        image_files_below(tmp_path / "lot")
    assert_link_loop_line(
        f"error: {error.value}\n", str(tmp_path / "lot" / "002.png"), tmp_path / "lot" / "002.png"
    )


def test_a_photo_link_into_a_looping_folder_names_the_folder(tmp_path: Path) -> None:
    # it named the photo link (lot/002.png is a link loop), which leads into the loop but is none of it
    write_png(tmp_path / "lot" / "001.png")
    (tmp_path / "loopdir").symlink_to("loopdir")
    (tmp_path / "lot" / "002.png").symlink_to(tmp_path / "loopdir" / "x.png")
    with pytest.raises(UserError) as error:
        image_files_below(tmp_path / "lot")
    given = tmp_path / "lot" / "002.png"
    assert_link_loop_line(f"error: {error.value}\n", f"{given}: ", tmp_path / "loopdir")


@pytest.mark.parametrize("source", ["~/lot_7", "~/lot_7/*.png", "~/lot_7/**/*.png"])
def test_a_quoted_tilde_in_a_source_is_the_home_folder(tmp_path: Path, monkeypatch, source: str) -> None:
    # --source '~/lot_7/*.png' (quoted, so no shell expanded it) matched nothing: no folder named '~'
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "lot_7").mkdir()
    photo = tmp_path / "lot_7" / "a.png"
    cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
    assert photo_files(source) == ([photo], tmp_path / "lot_7")
    assert photo_files(Path(source)) == ([photo], tmp_path / "lot_7")
