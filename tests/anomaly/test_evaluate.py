"""anomaly.evaluate's checks: option values it would ignore or that score nothing, a report folder it
cannot write; each one line before any image is scored, nothing written."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import anomaly.evaluate as evaluate_module
from anomaly.data import load_records, read_rgb
from anomaly.evaluate import MIN_AREA, evaluate_run, figure_row, masks_summary, pick_threshold
from anomaly.report import map_figure
from anomaly.run import fit_run
from common.errors import UserError
from common.extras import package_versions
from common.io import sha256_file
from converters.mvtec import ImageRecord
from converters.splits import Splits, save_splits
from tests.anomaly.conftest import make_parts, repaint_as_another_product


@pytest.fixture
def run(parts: Path, tmp_path: Path, tiny_config: dict) -> Path:
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        # the MVTec protocol scores test/: a split without --data used to be ignored, test/ reported
        ({"split": "val"}, "--split val needs --data"),
        ({"split": "bogus"}, "--split bogus needs --data"),
        # a map cut at NaN flags no pixel: every mask empty, IoU 0 on defect images, no error
        ({"masks": True, "threshold": float("nan")}, "--threshold must be a finite number, got nan"),
        # maps are distances: below 0 every pixel is flagged, every good image fails
        ({"masks": True, "threshold": -1.0}, r"--threshold must be >= 0 .*got -1\.0"),
        ({"masks": True, "min_area": 0}, "--min-area must be at least 1, got 0"),
        # more pixels than a 64 x 64 photo: every region dropped, IoU 0.000 on every defect photo, no word
        (
            {"masks": True, "min_area": 4097},
            r"--min-area 4097 is more pixels than a whole photo \(64x64 = 4096\)",
        ),
        # without --masks no map is cut: both were ignored, the report as if neither had been given
        ({"threshold": 3.0}, r"--threshold needs --masks \(or --sam, --sam-zero-shot\)"),
        ({"min_area": 50}, r"--min-area needs --masks \(or --sam, --sam-zero-shot\)"),
        ({"threshold": 3.0, "min_area": 50}, r"^--threshold needs --masks"),  # the first named
    ],
)
def test_bad_options_are_refused_before_scoring(
    run: Path, monkeypatch: pytest.MonkeyPatch, options: dict, fragment: str
) -> None:
    monkeypatch.setattr(evaluate_module, "score_records", lambda *a, **k: pytest.fail("scored"))
    with pytest.raises(UserError, match=fragment):
        evaluate_run(run, progress=False, figure=False, **options)
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "memory_bank.pt", "run.json"]


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("1e400", "1e400, beyond any float"),  # float('1e400') is inf: it said 'got inf', as nobody typed
        ("-1e400", "-1e400, beyond any float"),
        ("nan", "nan"),
        ("-inf", "-inf"),
    ],
)
def test_a_threshold_flag_that_flags_nothing_is_named_as_typed(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, typed: str, said: str
) -> None:
    monkeypatch.setattr(evaluate_module, "score_records", lambda *a, **k: pytest.fail("scored"))
    argv = ["--run", str(run), "--masks", f"--threshold={typed}", "--no-progress", "--no-figure"]
    assert evaluate_module.main(argv) == 2
    assert capsys.readouterr().err == f"error: --threshold must be a finite number, got {said}\n"
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "memory_bank.pt", "run.json"]


@pytest.mark.parametrize("typed", ["-1", "-0.50"])
def test_a_negative_threshold_flag_is_named_as_typed(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, typed: str
) -> None:
    # it said the float read ('got -1.0', 'got -0.5'), as anomaly.predict did too
    monkeypatch.setattr(evaluate_module, "score_records", lambda *a, **k: pytest.fail("scored"))
    argv = ["--run", str(run), "--masks", f"--threshold={typed}", "--no-progress", "--no-figure"]
    assert evaluate_module.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --threshold must be >= 0 (anomaly maps are distances")
    assert err.endswith(f", got {typed}\n")
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "memory_bank.pt", "run.json"]


def test_a_threshold_flag_that_is_no_number_keeps_argparses_words(run: Path, capsys) -> None:
    assert evaluate_module.main(["--run", str(run), "--masks", "--threshold", "x"]) == 2
    assert capsys.readouterr().err.startswith("error: argument --threshold: invalid float value: 'x'")


def test_a_report_folder_that_is_a_file_is_refused_before_scoring(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # used to score every image, then end in FileExistsError's traceback
    (tmp_path / "report").write_text("a file")
    monkeypatch.setattr(evaluate_module, "score_records", lambda *a, **k: pytest.fail("scored"))
    with pytest.raises(UserError, match="--out .*report is a file, not a report folder"):
        evaluate_run(run, out=tmp_path / "report", progress=False)


def test_an_evaluation_without_figure_leaves_no_earlier_figure_behind(run: Path) -> None:
    # re-run with --no-figure into the same eval folder: the old anomaly_maps.png passed for this one's
    out = Path(evaluate_run(run, progress=False)["out"])
    assert (out / "anomaly_maps.png").is_file()
    evaluate_run(run, progress=False, figure=False)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.md", "scores.csv"]


def test_a_re_run_into_the_default_folder_says_what_it_replaces(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # a re-run without --masks replaced a --masks report (its masks scores, whose threshold anomaly.predict
    # takes) without a word, while the same folder given as --out is refused without --overwrite
    out = Path(evaluate_run(run, masks=True, progress=False)["out"])
    assert "note: replacing" not in capsys.readouterr().err  # nothing was there
    assert "masks" in json.loads((out / "metrics.json").read_text())
    evaluate_run(run, progress=False, figure=False)
    note = f"note: replacing the earlier report in {out} (it had --masks scores and their threshold, and "
    assert note + "anomaly_maps.png, which this run does not make)\n" in capsys.readouterr().err
    assert "masks" not in json.loads((out / "metrics.json").read_text())  # still replaced, as documented
    evaluate_run(run, progress=False, figure=False)  # nothing of it is lost: the folder alone is named
    assert capsys.readouterr().err.count(f"note: replacing the earlier report in {out}\n") == 1
    evaluate_run(run, out=tmp_path / "report", progress=False, figure=False)
    evaluate_run(run, out=tmp_path / "report", progress=False, figure=False, overwrite=True)
    assert "note: replacing" not in capsys.readouterr().err  # --overwrite said so itself


def test_an_existing_report_folder_needs_overwrite(run: Path, tmp_path: Path, monkeypatch) -> None:
    # an explicit --out used to be written into without --overwrite, unlike every other command's
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "anomaly_maps.png").write_text("an older report's")
    (tmp_path / "report" / "metrics.json").write_text("{}")  # written by every report: the marker
    with monkeypatch.context() as patch:
        patch.setattr(evaluate_module, "score_records", lambda *a, **k: pytest.fail("scored"))
        with pytest.raises(UserError, match=r"output folder exists: .*report \(pass --overwrite"):
            evaluate_run(run, out=tmp_path / "report", progress=False)
        (tmp_path / "report" / "notes.txt").write_text("mine")  # --overwrite would delete it
        with pytest.raises(UserError, match=r"report holds notes.txt, which this command does not write"):
            evaluate_run(run, out=tmp_path / "report", progress=False, overwrite=True)
    kept = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert kept == ["anomaly_maps.png", "metrics.json", "notes.txt"]
    (tmp_path / "report" / "notes.txt").unlink()
    evaluate_run(run, out=tmp_path / "report", progress=False, figure=False, overwrite=True)
    replaced = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert replaced == ["metrics.json", "report.md", "scores.csv"]  # the old figure went with the old folder


@pytest.mark.parametrize("default", [False, True])
def test_overwrite_refuses_a_folder_of_the_reports_names_without_metrics_json(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, default: bool
) -> None:
    # a folder of the user's holding a report.md of their own (no metrics.json: no evaluation wrote it) was
    # replaced whole, the file deleted with it; the run's own eval-mvtec alike, replaced by each re-run
    mine = run / "eval-mvtec" if default else tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my notes")
    monkeypatch.setattr(evaluate_module, "score_records", lambda *a, **k: pytest.fail("scored"))
    with pytest.raises(
        UserError, match=re.escape(f"{mine} holds report.md but no metrics.json, which every run")
    ):
        evaluate_run(run, out=None if default else mine, progress=False, overwrite=True)
    assert (mine / "report.md").read_text() == "my notes"


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("run", "holds the run"),  # --overwrite would replace the model with a report
        ("above run", "holds the run"),
        ("data", "is inside the input tree"),  # the image tree the run was fit from
        ("category", "is inside the input tree"),
    ],
)
def test_a_report_folder_that_would_clobber_inputs_is_refused(
    run: Path, parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, fragment: str
) -> None:
    out = {"run": run, "above run": tmp_path, "data": parts.parent, "category": parts / "eval"}[where]
    monkeypatch.setattr(evaluate_module, "score_records", lambda *a, **k: pytest.fail("scored"))
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UserError, match=fragment):
        evaluate_run(run, out=out, progress=False, overwrite=True)
    assert sorted(tmp_path.rglob("*")) == before


def test_the_default_report_folder_is_replaced_only_when_it_holds_a_report(run: Path) -> None:
    out = Path(evaluate_run(run, progress=False, figure=False)["out"])
    (out / "notes.txt").write_text("mine")  # the default folder is replaced without --overwrite
    with pytest.raises(UserError, match=r"holds notes.txt, which this command does not write") as refused:
        evaluate_run(run, progress=False, figure=False)
    assert (out / "notes.txt").is_file()
    # neither --out nor --overwrite was given: the message named both as if they had been
    message = str(refused.value)
    assert message.startswith(f"the run's report folder {out} holds notes.txt")
    assert "--overwrite" not in message
    assert "each re-run (without --out) replaces the folder whole" in message


def test_a_split_without_good_photos_writes_strict_json_that_reads_back_the_same(
    tmp_path: Path, tiny_config: dict, strict_json
) -> None:
    from anomaly.predict import resolve_threshold
    from anomaly.report import markdown

    category = make_parts(tmp_path / "data", n_good=0)  # no good photo: image AUROC and good_peak undefined
    fit_run(category.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    out = Path(evaluate_run(tmp_path / "run", figure=False, progress=False)["out"])
    metrics = strict_json(out / "metrics.json")  # it held bare NaNs, which jq and JSON.parse refuse
    assert metrics["image"]["auroc"] is None and metrics["pixel"]["good_peak"] is None
    assert markdown(metrics, metrics.pop("settings")) == (out / "report.md").read_text()  # "-" as for NaN
    threshold = resolve_threshold(None, tmp_path / "run", clean_goods=True)  # a null peak: not raised
    assert threshold == (metrics["pixel"]["f1_threshold"], f"from {out / 'metrics.json'}")


@pytest.mark.parametrize(
    ("counts", "printed", "note"),
    [
        # defect images only: image AUROC and F1-max were printed as "nan", masks' IoU on good ones too
        (
            {"n_good": 0},
            [
                "image AUROC undefined, F1-max undefined; pixel AUROC 0.",
                "on defect images, undefined on good ones",
            ],
            "note: no good image was scored: image AUROC, F1-max and the AUROC per defect type are undefined",
        ),
        # good images only: every figure was "nan"
        (
            {"n_defect": 0},
            ["image AUROC undefined, F1-max undefined; pixel AUROC undefined, AUPRO undefined;"],
            "note: no defect image was scored: image AUROC, F1-max, pixel AUROC, AUPRO and pixel F1-max are "
            "undefined",
        ),
    ],
)
def test_figures_not_defined_are_printed_as_undefined_and_said_why(
    tmp_path: Path, tiny_config: dict, capsys, counts: dict, printed: list[str], note: str
) -> None:
    category = make_parts(tmp_path / "data", **counts)
    fit_run(category.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    argv = ["--run", str(tmp_path / "run"), "--no-figure", "--no-progress"]
    masks = ["--masks", "--threshold", "0"] if counts.get("n_good") == 0 else []  # 0: every pixel flagged
    assert evaluate_module.main(argv + masks) == 0
    out = capsys.readouterr().out
    assert "nan" not in out
    assert all(part in out for part in printed), out
    assert f"\n{note}\n" in out
    report = (tmp_path / "run" / "eval-mvtec" / "report.md").read_text()
    assert f"\nNote: {note.removeprefix('note: ')}." in report  # report.md's "-" said nothing of why


@pytest.mark.parametrize("n_defect", [0, 3])
def test_a_figure_left_out_for_want_of_a_defect_image_is_said(
    tmp_path: Path, tiny_config: dict, capsys, n_defect: int
) -> None:
    # good test images only: anomaly_maps.png, whose rows are defect images, was left out without a word
    category = make_parts(tmp_path / "data", n_defect=n_defect)
    fit_run(category.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    assert evaluate_module.main(["--run", str(tmp_path / "run"), "--no-progress"]) == 0
    noted = "note: no anomaly_maps.png: its rows are the top-scoring defect images, and none was scored\n"
    assert (noted in capsys.readouterr().out) == (n_defect == 0)
    assert (tmp_path / "run" / "eval-mvtec" / "anomaly_maps.png").exists() == (n_defect > 0)
    assert evaluate_module.main(["--run", str(tmp_path / "run"), "--no-progress", "--no-figure"]) == 0
    assert "anomaly_maps.png" not in capsys.readouterr().out  # none asked for: nothing to say


def soften_mask(mask: Path, how: str) -> Path:
    """``mask`` (0/255) rewritten as a mask the converters warn of; returns its file."""
    pixels = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
    if how == "jpeg file":  # 0/255 as written, but the file is a JPEG: faint values around the defect
        mask.unlink()
        mask = mask.with_suffix(".jpg")
        cv2.imwrite(str(mask), pixels)
    elif how.startswith("jpeg"):  # jpeg [at quality Q] then png
        quality = int(how.split()[3]) if "quality" in how else 75
        jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        cv2.imwrite(str(mask), cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE))
    else:  # anti-aliased
        cv2.imwrite(str(mask), cv2.GaussianBlur(pixels, (5, 5), 1.5))
    return mask


@pytest.mark.parametrize(
    ("how", "fragment"),
    [
        ("anti-aliased", "3 masks hold more than 8 distinct defect values, e.g. "),
        ("jpeg then png", "3 masks hold more than 8 distinct defect values, e.g. "),
        ("jpeg file", "3 masks are JPEG files, e.g. "),
        ("jpeg at quality 100 then png", "3 masks hold faint defect values beside their largest, e.g. "),
    ],
)
def test_soft_or_jpeg_masks_are_one_warning_counting_them_and_naming_a_few(
    run: Path, parts: Path, capsys, how: str, fragment: str
) -> None:
    # every value > 0 is defect: such masks grew the defects the pixel figures were measured against,
    # without a word, where the converters warn of them
    masks = [soften_mask(m, how) for m in sorted((parts / "ground_truth" / "spot").glob("*_mask.png"))]
    evaluate_run(run, figure=False, progress=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if "every value > 0 is defect" in line]
    assert len(lines) == 1 and lines[0].startswith(f"warning: {fragment}{masks[0]}")
    assert all(str(mask) in lines[0] for mask in masks)
    assert (
        "so defects grow and the pixel figures (AUROC, AUPRO, F1) are measured against the grown masks"
        in (lines[0])
    )


@pytest.mark.parametrize("top", [255, 1])
def test_clean_masks_give_no_mask_warning(run: Path, parts: Path, capsys, top: int) -> None:
    for mask in (parts / "ground_truth" / "spot").glob("*_mask.png"):  # 0/255 as MVTec's, or 0/1
        cv2.imwrite(str(mask), (cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 0).astype(np.uint8) * top)
    evaluate_run(run, figure=False, progress=False)
    assert "every value > 0 is defect" not in capsys.readouterr().err


def test_a_mask_of_another_size_is_refused_before_any_image_is_scored(
    run: Path, parts: Path, monkeypatch
) -> None:
    # it was refused when the scoring reached its image: after SAM had loaded and the images before it scored
    mask = parts / "ground_truth" / "spot" / "002_mask.png"
    cv2.imwrite(str(mask), cv2.resize(cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE), (32, 32)))
    scored = []
    monkeypatch.setattr(evaluate_module, "score_records", lambda *args, **kwargs: scored.append(args))
    with pytest.raises(UserError) as refused:
        evaluate_run(run, figure=False, progress=False)
    assert str(refused.value) == (
        f"image/mask size mismatch: {parts / 'test' / 'spot' / '002.png'} is 64x64, {mask} is 32x32"
    )
    assert scored == [] and not (run / "eval-mvtec").exists()


def test_masks_on_images_without_defect_pixels_need_a_threshold(tmp_path: Path, tiny_config: dict) -> None:
    # the picked threshold was NaN: no pixel passed it, the report said "IoU 1.000 on good ones" and
    # its metrics.json gave anomaly.predict no threshold
    category = make_parts(tmp_path / "data", n_defect=0)
    fit_run(category.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    with pytest.raises(UserError, match=r"no defect pixel in the scored images .*: pass --threshold VALUE"):
        evaluate_run(tmp_path / "run", masks=True, figure=False, progress=False)
    assert not (tmp_path / "run" / "eval-mvtec").exists()
    metrics = evaluate_run(tmp_path / "run", masks=True, threshold=1e9, figure=False, progress=False)
    assert metrics["masks"]["iou_good"] == 1.0


def test_metrics_json_records_the_min_area_its_masks_kept(tmp_path: Path, tiny_config: dict) -> None:
    # --min-area changes the instances scored, but only anomaly.predict's predict.json recorded it
    category = make_parts(tmp_path / "data")
    fit_run(category.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    for min_area in (MIN_AREA, 40):
        evaluate_run(tmp_path / "run", masks=True, min_area=min_area, figure=False, progress=False)
        saved = json.loads((tmp_path / "run" / "eval-mvtec" / "metrics.json").read_text())
        assert saved["masks"]["min_area"] == min_area
    assert saved["versions"] == package_versions()  # what its figures depend on (none recorded before)


def test_masks_are_cut_from_the_maps_scored_once_a_photo(
    tmp_path: Path, tiny_config: dict, monkeypatch
) -> None:
    # evaluate --masks ran PatchCore a second time on every photo it had scored (run.predict in score_masks)
    # for the maps it already held; the masks must be those of run.predict's maps all the same
    from anomaly.data import eval_records, load_records, masked
    from anomaly.mask_scores import score_masks
    from anomaly.masks import Segmenter
    from anomaly.patchcore import PatchCore

    category = make_parts(tmp_path / "data", n_defect=4)
    (category / "ground_truth" / "spot" / "001_mask.png").unlink()  # maps of photos without one are skipped
    # 32 px: the maps are on a 32 x 32 grid, resized to the 64 x 64 photos
    run = fit_run(
        category.parent, "part", tmp_path / "run", config={**tiny_config, "image_size": 32}, progress=False
    )
    scored, score = [], PatchCore.score

    def counted(self, batch):  # noqa: ANN001, ANN202
        scored.append(len(batch))
        return score(self, batch)

    monkeypatch.setattr(PatchCore, "score", counted)
    metrics = evaluate_run(tmp_path / "run", masks=True, figure=False, progress=False)
    assert sum(scored) == 6  # each of the 2 good and 4 defect photos once
    assert metrics["pixel"]["defect_images_without_mask"] == 1 and metrics["masks"]["instances"] > 0
    records = masked(eval_records(load_records(category.parent, "part")))
    maps = [
        run.predict([read_rgb(r.image)], [r.image])[0].anomaly_map for r in records
    ]  # at the photos' size
    assert maps[0].shape == (64, 64)
    threshold = metrics["masks"]["threshold"]
    expected = score_masks(run, records, maps, Segmenter(), threshold, "", min_area=MIN_AREA, progress=False)
    for key in ("iou_defect", "iou_good", "iou_all", "dice_defect", "mask_ap", "mask_ap50", "instances"):
        assert metrics["masks"][key] == expected[key], key


def test_the_figure_shows_the_maps_scored_once_a_photo(run: Path, monkeypatch) -> None:
    # the figure ran PatchCore (run.predict) once more on each of its 4 photos for the maps and scores
    # score_records held; the figure must be the one those predictions drew all the same
    from anomaly.data import eval_records, load_records
    from anomaly.patchcore import PatchCore
    from anomaly.run import load_run

    scored, score = [], PatchCore.score

    def counted(self, batch):  # noqa: ANN001, ANN202
        scored.append(len(batch))
        return score(self, batch)

    monkeypatch.setattr(PatchCore, "score", counted)
    evaluate_run(run, progress=False)
    records = eval_records(load_records(run.parent / "data", "part"))
    assert sum(scored) == len(records) == 5  # each of the 2 good and 3 defect photos once
    monkeypatch.setattr(PatchCore, "score", score)
    loaded = load_run(run)
    scores, maps, _, _ = evaluate_module.score_records(loaded, records, progress=False)
    order = np.argsort(-scores)
    shown = [i for i in order if not records[i].is_good][:3] + [i for i in order if records[i].is_good][:1]
    rows = []
    for i in shown:  # as the figure was drawn: run.predict on each photo shown
        image = read_rgb(records[i].image)
        [prediction] = loaded.predict([image], [records[i].image])
        title = f"{records[i].defect}/{records[i].image.name} score {prediction.score:.2f}"
        mask = evaluate_module.read_mask(records[i], image.shape[:2])
        rows.append(figure_row(title, image, mask, prediction.anomaly_map))
    vmax = float(np.percentile(np.concatenate([m.ravel() for m in maps]), 99.9))
    assert (run / "eval-mvtec" / "anomaly_maps.png").read_bytes() == map_figure(rows, vmax)


def test_good_peak_is_taken_on_good_images_only(tmp_path: Path, tiny_config: dict) -> None:
    # a defect image whose mask is too small for the model's grid counted as good: its peak became "the
    # largest map value on a good image", which inspection --anomaly-run lifts its threshold above
    # (hazelnut_toy: 2.44 -> 4.56, over most defects' peaks). Its mask here: one pixel that the resize of
    # the 64 x 64 photos to the 32 x 32 grid skips (an all-zero mask, the case first tested, is not scored)
    category = make_parts(tmp_path / "data")
    speck = np.zeros((64, 64), np.uint8)
    speck[1, 1] = 255
    assert not cv2.resize(speck, (32, 32), interpolation=cv2.INTER_NEAREST).any()  # gone on the grid
    cv2.imwrite(str(category / "ground_truth" / "spot" / "000_mask.png"), speck)
    config = {**tiny_config, "image_size": 32}
    run = fit_run(category.parent, "part", tmp_path / "run", config=config, progress=False)
    records = [r for r in load_records(category.parent, "part") if r.subset == "test"]
    _, maps, truths, _ = evaluate_module.score_records(run, records, progress=False)
    peak = {f"{r.defect}/{Path(r.image).name}": float(m.max()) for r, m in zip(records, maps, strict=True)}
    metrics = evaluate_run(tmp_path / "run", figure=False, progress=False)
    assert metrics["image"]["defect_images"] == 3  # the speck's photo scored, as a defect photo
    assert not truths[list(peak).index("spot/000.png")].any()
    assert peak["spot/000.png"] > max(peak["good/000.png"], peak["good/001.png"])
    assert metrics["pixel"]["good_peak"] == pytest.approx(max(peak["good/000.png"], peak["good/001.png"]))


def test_masks_take_each_photos_embedding_from_the_cache_named(
    run: Path, tmp_path: Path, monkeypatch
) -> None:
    # evaluate --masks called SAM without the photo's file: no cache, its encoder ran on every photo each run
    from anomaly.masks import Segmenter

    asked, paths = [], []

    class Recording(Segmenter):
        def __call__(self, image, regions, *, min_area=1, path=None):
            paths.append(path)
            return super().__call__(image, regions, min_area=min_area)

    def load(sam, *, zero_shot=False, model=None, cache_dir=None, **colour):
        asked.append(cache_dir)
        return Recording(None)

    monkeypatch.setattr(evaluate_module, "load_segmenter", load)
    argv = ["--run", str(run), "--sam-zero-shot", "--threshold", "3", "--no-progress", "--no-figure"]
    assert evaluate_module.main([*argv, "--cache-dir", str(tmp_path / "c")]) == 0
    assert asked == [tmp_path / "c"]
    assert sorted(p.relative_to(run.parent / "data" / "part") for p in paths) == sorted(
        p.relative_to(run.parent / "data" / "part")
        for p in (run.parent / "data" / "part" / "test").rglob("*.png")
    )


def test_a_cache_dir_inside_out_is_refused_before_sam_loads(run: Path, tmp_path: Path, monkeypatch, capsys):
    # SAM's first photo made report/cache: every photo was scored, then the report refused as existing
    monkeypatch.setattr(evaluate_module, "load_segmenter", lambda *a, **k: pytest.fail("SAM loaded"))
    report = tmp_path / "report"
    argv = ["--run", str(run), "--sam-zero-shot", "--threshold", "3", "--no-progress", "--no-figure"]
    assert evaluate_module.main([*argv, "--out", str(report), "--cache-dir", str(report / "cache")]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: --cache-dir {(report / 'cache').resolve()} is inside --out "
    )
    assert not report.exists()


def test_other_images_need_an_out_of_their_own(run: Path, parts: Path, tmp_path: Path) -> None:
    # another --root went into the run's own eval-mvtec, where anomaly.predict takes its threshold from
    other = tmp_path / "other"
    make_parts(other)
    with pytest.raises(UserError, match=rf"^scoring --root {other}, not the images .* pass --out"):
        evaluate_run(run, root=other, figure=False, progress=False)
    assert not (run / "eval-mvtec").exists()
    metrics = evaluate_run(run, root=other, out=tmp_path / "eval_other", figure=False, progress=False)
    assert metrics["image"]["images"] == 5
    settings = json.loads((tmp_path / "eval_other" / "metrics.json").read_text())["settings"]
    assert settings["root"] == str(other)  # the tree scored, not the run's
    evaluate_run(
        run, root=parts.parent, figure=False, progress=False
    )  # the run's own tree, named: its folder
    assert (run / "eval-mvtec" / "metrics.json").is_file()


def test_a_mistyped_category_is_named_as_such_not_told_to_take_an_out(run: Path) -> None:
    # --category partt: "scoring --category partt, not the images ... pass --out", then, with an --out,
    # "unknown category"
    with pytest.raises(UserError, match=r"^unknown category 'partt' in .*; did you mean 'part'\?"):
        evaluate_run(run, category="partt", figure=False, progress=False)
    assert not (run / "eval-mvtec").exists()


def test_another_category_of_the_run_tree_needs_an_out_of_its_own(
    run: Path, parts: Path, tmp_path: Path
) -> None:
    # the same --root, another --category: its figures went into the run's own eval-mvtec too
    make_parts(parts.parent, name="other")
    with pytest.raises(UserError, match=rf"^scoring --category other, not the images {run} was fit with"):
        evaluate_run(run, category="other", figure=False, progress=False)
    assert not (run / "eval-mvtec").exists()
    metrics = evaluate_run(run, category="other", out=tmp_path / "eval_other", figure=False, progress=False)
    assert metrics["image"]["images"] == 5


def test_scoring_another_product_under_another_category_name_is_warned_about(
    run: Path, parts: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # a run fit on one product scoring --category <another product> gave figures that say nothing about
    # that product's defects, without a word (each photo's size and colour alike); the run's own photos
    # under another category name (the same bytes as its fit photos: a copy) are scored as before
    make_parts(parts.parent, name="copy")
    capsys.readouterr()
    evaluate_run(run, category="copy", out=tmp_path / "eval_copy", figure=False, progress=False)
    assert "warning:" not in capsys.readouterr().err
    repaint_as_another_product(make_parts(parts.parent, name="disc"))
    metrics = evaluate_run(run, category="disc", out=tmp_path / "eval_disc", figure=False, progress=False)
    assert metrics["image"]["images"] == 5
    assert capsys.readouterr().err == (
        f"warning: {run} was fit on 'part' photos and 'disc' holds none of them: if it is another product, "
        "each of its photos scores as unlike 'part' throughout, good or defective, and these metrics say "
        "nothing about its defects (fit a run on it with anomaly.train --category disc)\n"
    )


def test_another_category_in_another_tree_is_looked_up_there_by_its_own_name(
    run: Path, parts: Path, tmp_path: Path
) -> None:
    # --root elsewhere --category other, elsewhere holding no 'part': the run's category is not looked for
    elsewhere = tmp_path / "elsewhere"
    make_parts(elsewhere, name="other")
    with pytest.raises(UserError, match=rf"^scoring --root {elsewhere}, not the images {run} was fit with"):
        evaluate_run(run, root=elsewhere, category="other", figure=False, progress=False)
    metrics = evaluate_run(
        run, root=elsewhere, category="other", out=tmp_path / "eval_other", figure=False, progress=False
    )
    assert metrics["image"]["images"] == 5
    make_parts(parts.parent, name="other")  # the run's own tree named as --root: the category differs
    with pytest.raises(UserError, match=rf"^scoring --category other, not the images {run} was fit with"):
        evaluate_run(run, root=parts.parent, category="other", figure=False, progress=False)


def test_the_run_tree_named_another_way_is_the_runs_own(run: Path, parts: Path) -> None:
    # --root data/part/.. is the tree the run was fit with: its report goes to the run's eval-mvtec
    evaluate_run(run, root=parts / "..", figure=False, progress=False)
    assert (run / "eval-mvtec" / "metrics.json").is_file()


@pytest.mark.parametrize("fit_on_category_folder", [True, False])
def test_the_category_folder_and_its_data_root_are_the_same_images(
    parts: Path, tmp_path: Path, tiny_config: dict, fit_on_category_folder: bool
) -> None:
    # a run fit on --root data/part scored with --root data (or the other way) was refused as
    # 'scoring --root data, not the images run was fit with: pass --out', the same photos
    fit_root, score_root = (parts, parts / "..") if fit_on_category_folder else (parts.parent, parts)
    fit_run(fit_root, "part", tmp_path / "run2", config=tiny_config, progress=False)
    evaluate_run(tmp_path / "run2", root=score_root, figure=False, progress=False)
    assert (tmp_path / "run2" / "eval-mvtec" / "metrics.json").is_file()


def test_a_mistyped_root_is_named_as_such_not_told_to_take_an_out(
    run: Path, parts: Path, tmp_path: Path
) -> None:
    # --root data/prt (no such folder) was taken for another tree of the category's images:
    # 'scoring --root data/prt, not the images the run was fit with: pass --out'
    with pytest.raises(UserError, match=r"data root does not exist or is not a folder: .*prt$"):
        evaluate_run(run, root=tmp_path / "prt", figure=False, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"unknown category 'part' in .*empty; it holds no category folders"):
        evaluate_run(run, root=tmp_path / "empty", figure=False, progress=False)
    assert not (run / "eval-mvtec").exists()


def test_another_converter_output_needs_an_out_of_its_own(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # a run fit with --data conv, scored on --data conv2: its split went into the run's own eval-test
    splits = Splits(val=["part/test/spot/001"], test=["part/test/spot/002", "part/test/good/000"])
    for name in ("conv", "conv2"):
        save_splits(splits, tmp_path / name / "splits.json")
    fit_run(
        parts.parent, "part", tmp_path / "run", config=tiny_config, data=tmp_path / "conv", progress=False
    )
    with pytest.raises(UserError, match=rf"^scoring --data {tmp_path / 'conv2'}, not the images"):
        evaluate_run(tmp_path / "run", data=tmp_path / "conv2", figure=False, progress=False)
    assert not (tmp_path / "run" / "eval-test").exists()
    evaluate_run(tmp_path / "run", data=tmp_path / "conv" / ".", figure=False, progress=False)  # its own
    assert (tmp_path / "run" / "eval-test" / "metrics.json").is_file()


def test_scored_images_of_12_bit_data_in_16_bit_files_get_a_warning(
    run: Path, parts: Path, capsys: pytest.CaptureFixture
) -> None:
    # as anomaly.train warns of its fit images: read by dropping the low 8 bits, such a photo is
    # nearly black (grey levels 0-15), and its score measures that, not a defect
    evaluate_run(run, figure=False, progress=False)
    assert "warning:" not in capsys.readouterr().err
    photo = parts / "test" / "good" / "001.png"
    cv2.imwrite(str(photo), cv2.imread(str(photo)).astype(np.uint16) * 16)
    evaluate_run(run, figure=False, progress=False)
    err = capsys.readouterr().err.removeprefix(
        f"note: replacing the earlier report in {run / 'eval-mvtec'}\n"
    )
    assert err.startswith("warning: 1 photo is 16-bit with every value below 4096") and str(photo) in err


@pytest.mark.parametrize(("figure", "masks"), [(False, False), (True, False), (True, True)])
def test_grey_photos_scored_by_a_run_fit_on_colour_ones_are_one_warning(
    run: Path, parts: Path, capsys: pytest.CaptureFixture, figure: bool, masks: bool
) -> None:
    # score_records checked each photo's size alone: the run's colour warning came only from the figure's
    # photos (run.predict) or --masks, so --no-figure scored grey photos by a colour run without a word
    for photo in sorted((parts / "test" / "good").glob("*.png")):  # the figure shows the top good one
        assert cv2.imwrite(str(photo), cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2GRAY))
    capsys.readouterr()
    options = {"masks": True, "threshold": 3.0} if masks else {}
    evaluate_run(run, figure=figure, progress=False, **options)
    lines = [line for line in capsys.readouterr().err.splitlines() if "was fit on colour photos" in line]
    assert len(lines) == 1, lines  # once a run: the figure and the masks read the photos again
    assert lines[0].startswith(f"warning: {run} was fit on colour photos and {parts / 'test' / 'good'}")
    assert lines[0].endswith(" is a grey one: its scores there say how unlike a colour photo it is, not "
                             "whether it is defective (fit on photos like these)")  # fmt: skip


def test_a_run_whose_image_tree_was_moved_names_the_tree_and_the_way_out(
    run: Path, parts: Path, tmp_path: Path
) -> None:
    # it said "unknown category 'part' in <tree>; it holds no category folders" of a folder not there
    tree = parts.parent
    tree.rename(tmp_path / "moved")
    with pytest.raises(UserError) as refused:
        evaluate_run(run, figure=False, progress=False)
    assert str(refused.value) == (
        f"{run} was fit on the image tree {tree.resolve()}, which is not there now: pass --root with its new "
        "place, and an --out for the report"
    )
    assert not (run / "eval-mvtec").exists()
    # its new place alone: an --out is asked for, the tree the run names is not reported as gone
    with pytest.raises(
        UserError, match=rf"^scoring --root {tmp_path / 'moved'}, not the images .*: pass --out"
    ):
        evaluate_run(run, root=tmp_path / "moved", figure=False, progress=False)
    metrics = evaluate_run(
        run, root=tmp_path / "moved", out=tmp_path / "report", figure=False, progress=False
    )
    assert metrics["image"]["images"] == 5


def test_the_report_names_the_images_scored_not_those_fit_on(
    run: Path, parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --category other scored 'other' but metrics.json and report.md said the run's 'part', and
    # neither named the image tree (--root) or the run other than as typed (here relative)
    make_parts(parts.parent, name="other")
    monkeypatch.chdir(tmp_path)
    evaluate_run("run", root="data", category="other", out="other-report", progress=False, figure=False)
    settings = json.loads((tmp_path / "other-report" / "metrics.json").read_text())["settings"]
    assert settings["category"] == "other"
    assert settings["root"] == str(parts.parent.absolute()) and settings["run"] == str(run.absolute())
    assert settings["memory_bank_sha256"] == sha256_file(run / "memory_bank.pt")  # a refit in place differs
    assert (tmp_path / "other-report" / "report.md").read_text().startswith("# PatchCore on other (")


def test_the_report_names_a_converter_split_by_its_absolute_folder(
    run: Path, parts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --data conv gave 'protocol': 'split test of conv', a folder named relative to where it ran
    save_splits(Splits(test=["part/test/spot/000", "part/test/good/000"]), tmp_path / "conv" / "splits.json")
    monkeypatch.chdir(tmp_path)
    evaluate_run("run", data="conv", out="conv-report", progress=False, figure=False)
    settings = json.loads((tmp_path / "conv-report" / "metrics.json").read_text())["settings"]
    assert settings["protocol"] == f"split test of {tmp_path / 'conv'}"


@pytest.mark.parametrize("given", ["sets/conv", "sets/conv/splits.json"])
@pytest.mark.parametrize(
    ("out", "fragment"), [("sets/conv/ev", "is inside"), ("sets/conv", "is inside"), ("sets", "contains")]
)
def test_a_report_folder_inside_the_converter_output_scored_is_refused(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str, out: str, fragment: str
) -> None:
    # --data DS --out DS/ev was taken: the report written into the data set, in the way of its next
    # conversion, where every other command refuses an output inside its input data set
    splits = Splits(val=["part/test/spot/000", "part/test/good/000"])
    save_splits(splits, tmp_path / "sets" / "conv" / "splits.json")
    monkeypatch.setattr(evaluate_module, "score_records", lambda *a, **k: pytest.fail("scored"))
    before = sorted(tmp_path.rglob("*"))
    tree = (tmp_path / "sets" / "conv").resolve()
    message = (
        f"output folder {(tmp_path / out).resolve()} {fragment} the input tree {tree}; choose another --out"
    )
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        evaluate_run(
            run, data=tmp_path / given, split="val", out=tmp_path / out, progress=False, overwrite=True
        )
    assert sorted(tmp_path.rglob("*")) == before


def test_a_converter_split_holding_train_good_images_names_the_way_out(run: Path, tmp_path: Path) -> None:
    # the converters add train/good images to val and test; a run fit on train/good refused them with
    # 'the model was fit on it' alone, and docs/anomaly.md's 'anomaly.evaluate --data DIR --split test'
    # led nowhere
    val = ["part/train/good/000", "part/test/spot/001"]
    save_splits(
        Splits(val=val, test=["part/test/spot/002", "part/train/good/001"]), tmp_path / "a" / "splits.json"
    )
    save_splits(
        Splits(val=val, test=["part/test/spot/002"]), tmp_path / "b" / "splits.json"
    )  # val's: --masks
    for data, options in (("a", {"split": "test"}), ("a", {"split": "val"}), ("b", {"masks": True})):
        with pytest.raises(
            UserError, match=r"train/good/00\d.png: the model was fit on it; the run was fit on"
        ) as error:
            evaluate_run(run, data=tmp_path / data, out=tmp_path / "out", progress=False, **options)
        assert str(error.value).endswith(
            f"fit by anomaly.train --data {tmp_path / data}, or test/ without --data"
        )


def test_a_run_fit_with_data_refused_an_image_gets_no_mvtec_protocol_hint(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # the way out names train/good and the MVTec protocol: a run fit on a split's good images has neither
    save_splits(
        Splits(val=["part/test/spot/001"], test=["part/test/spot/002"]), tmp_path / "a" / "splits.json"
    )
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, data=tmp_path / "a", progress=False)
    save_splits(Splits(test=["part/test/good/001", "part/test/spot/000"]), tmp_path / "b" / "splits.json")
    with pytest.raises(UserError, match=r"test/good/001.png: the model was fit on it") as error:
        evaluate_run(
            tmp_path / "run", data=tmp_path / "b", out=tmp_path / "out", progress=False, figure=False
        )
    assert "MVTec protocol" not in str(error.value)


def test_a_category_of_good_photos_alone_names_the_way_to_a_threshold(
    tmp_path: Path, tiny_config: dict
) -> None:
    # train/good alone: anomaly.train said 'evaluate with: ...', evaluate said 'no images to score in
    # test/' and anomaly.predict 'evaluate the run first': no way on for the user of good photos alone
    parts = make_parts(tmp_path / "data", n_good=0, n_defect=0)
    shutil.rmtree(parts / "test")
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    with pytest.raises(UserError) as error:
        evaluate_run(tmp_path / "run", progress=False, figure=False)
    assert str(error.value).startswith(
        "no images to score in test/: category 'part' has none; with good photos alone, put some that the "
        "run was not fit on in test/good/"
    )


def test_the_train_split_of_the_runs_own_data_names_the_splits_to_score(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # --split train of the converter output the run was fit with: 'the model was fit on it' alone
    save_splits(
        Splits(train=["part/train/good/000"], val=["part/test/spot/001"], test=["part/test/spot/002"]),
        tmp_path / "a" / "splits.json",
    )
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, data=tmp_path / "a", progress=False)
    with pytest.raises(UserError, match=r"train/good/000.png: the model was fit on it") as error:
        evaluate_run(tmp_path / "run", split="train", progress=False, figure=False)
    assert str(error.value).endswith(
        f"; the run was fit by anomaly.train --data {tmp_path / 'a'} on its good images outside val and "
        "test, the train split's among them: score --split val or --split test"
    )


def test_a_ctrl_c_on_a_re_run_says_the_report_there_is_an_earlier_runs(
    run: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    # it printed 'interrupted' alone, and the earlier report in <run>/eval-mvtec read as this run's
    evaluate_run(run, progress=False, figure=False)
    before = (run / "eval-mvtec" / "metrics.json").read_text()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_module, "score_records", interrupted)
    capsys.readouterr()
    assert evaluate_module.main(["--run", str(run), "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert err == (
        f"note: replacing the earlier report in {run / 'eval-mvtec'}\n"  # said before any photo is scored
        f"stopped: {run / 'eval-mvtec'} is replaced only once the report is complete, so nothing of this "
        "run was kept there; what it holds is an earlier run's\ninterrupted\n"
    )
    assert (run / "eval-mvtec" / "metrics.json").read_text() == before
    fresh = ["--run", str(run), "--out", str(run.parent / "new"), "--no-progress"]
    assert evaluate_module.main(fresh) == 130  # no earlier report there: 'interrupted' says it all
    assert capsys.readouterr().err == "interrupted\n"


def test_a_ctrl_c_while_masks_are_scored_says_how_many_of_sams_embeddings_the_cache_kept(
    run: Path, tmp_path: Path, interrupted_sam, capsys
) -> None:
    # it printed 'interrupted' alone, as segmentation.embed did: whether the encoded photos were lost
    argv = ["--run", str(run), "--sam-zero-shot", "--threshold", "0", "--cache-dir", str(tmp_path / "cache")]
    argv += ["--no-progress", "--no-figure"]  # threshold 0: every photo flagged, each one encoded
    interrupted_sam(after=2)
    assert evaluate_module.main(argv) == 130
    (folder,) = [path for path in (tmp_path / "cache").iterdir() if path.is_dir()]
    assert capsys.readouterr().err == (
        f"stopped: 2 embeddings encoded by this run are kept in the cache {folder}; the same command again "
        "reuses them\ninterrupted\n"
    )
    assert len(list(folder.glob("*.pt"))) == 2 and not (run / "eval-mvtec").exists()
    calls = interrupted_sam(after=100)
    assert evaluate_module.main(argv) == 0
    assert len(calls) == 3  # 5 photos, the two kept not encoded again


def test_photo_hashing_shows_a_progress_bar_unless_no_progress(run: Path, capsys) -> None:
    # the scored photos are read whole to hash them against the fit photos', with no bar
    capsys.readouterr()
    assert evaluate_module.main(["--run", str(run), "--no-figure"]) == 0
    assert "hashing photos (vs PatchCore's fit photos): 100%" in capsys.readouterr().err
    assert evaluate_module.main(["--run", str(run), "--no-figure", "--no-progress"]) == 0
    assert "hashing photos" not in capsys.readouterr().err  # the replaced report's path holds 'hashing'


def test_masks_scored_with_a_decoders_colour_head_apply_it_and_record_it(
    run: Path, tmp_path: Path, colour_decoders, capsys
) -> None:
    # anomaly.evaluate --sam X scored masks without X's colour head, which segmentation.evaluate scored X with
    decoders, head, _ = colour_decoders
    argv = ["--run", run, "--sam", decoders["head"], "--threshold", "0", "--no-cache", "--no-progress"]
    scored = {}
    for name, flags in (("on", ()), ("left-out", ("--no-colour-head",))):
        out = tmp_path / name
        assert evaluate_module.main([str(a) for a in (*argv, "--no-figure", "--out", out, *flags)]) == 0
        scored[name] = json.loads((out / "metrics.json").read_text())["masks"]
        assert f"-> regions -> {scored[name]['segmenter']}:" in (out / "report.md").read_text()
        assert f"masks ({scored[name]['segmenter']}, threshold" in capsys.readouterr().out
    on, left_out = scored["on"], scored["left-out"]
    assert on["segmenter"] == f"vit_b fine-tuned ({decoders['head']}) + colour head"
    assert on["colour_head"] == head.to_dict() and on["no_colour_head"] is False
    assert on["colour_prompt"] is None and on["no_colour_prompt"] is False
    assert on["iou_defect"] == 1.0  # a whole-photo box (threshold 0): the head keeps each red square alone
    assert left_out["segmenter"].endswith(", its colour head left out (--no-colour-head)")
    assert left_out["colour_head"] is None and left_out["no_colour_head"] is True
    assert left_out["iou_defect"] < 1.0  # SAM's own masks


def test_a_figure_row_of_a_large_photo_is_shrunk_to_the_figures_size() -> None:
    # rows were held at the photo's size until the figure was drawn: some 100 MB a row at 12 MP, for
    # panels drawn about 225 px wide
    image = np.zeros((3000, 4000, 3), np.uint8)
    mask = np.zeros((3000, 4000), bool)
    mask[1000:1002, :] = True  # a 2-px scratch: an eighth of a shrunk pixel's height, still there in grey
    anomaly_map = np.ones((3000, 4000), np.float32)
    title, small, small_mask, small_map = figure_row("t", image, mask, anomaly_map)
    assert small.shape == (384, 512, 3) and small_mask.shape == small_map.shape == (384, 512)
    assert 0 < small_mask.max() < 1 and np.allclose(small_map, 1)
    assert map_figure([(title, small, small_mask, small_map)], vmax=1.0).startswith(b"\x89PNG")
    photo = np.zeros((100, 80, 3), np.uint8)  # small photos are drawn as they are
    assert figure_row("t", photo, mask[:100, :80], anomaly_map[:100, :80])[1] is photo


def test_a_defect_type_without_masks_is_fit_and_scored_by_image_alone(
    hazelnut_root: Path, tmp_path: Path, capsys
) -> None:
    # 'error: defect image has no mask: .../test/colour/00.jpg': PatchCore, which exists for defect types
    # nobody has labelled yet, refused to fit on train/good while test/colour had photos but no masks
    import shutil

    from anomaly.train import main as train

    category = tmp_path / "hazelnut_toy"
    shutil.copytree(hazelnut_root, category)
    shutil.rmtree(category / "ground_truth" / "colour")
    argv = ["--root", str(category), "--out", str(tmp_path / "run"), "--no-progress"]
    assert train([*argv, "pretrained=false", "image_size=64", "coreset_ratio=0.5", "num_neighbors=3"]) == 0
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("note:")] == [
        f"note: 17 defect photos have no mask (e.g. {category / 'test' / 'colour' / '00.jpg'}): the fit "
        "needs none; anomaly.evaluate scores them in the image figures and leaves them out of the pixel "
        "figures"
    ]
    assert evaluate_module.main(["--run", str(tmp_path / "run"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "23 images (17 defect): image AUROC " in out and "pixel AUROC undefined, AUPRO undefined" in out
    note = (
        "no defect image has a mask (none of 17): pixel AUROC, AUPRO and pixel F1-max are undefined; "
        "the image figures score them by their folder"
    )
    assert f"note: {note}\n" in out and "no defect pixel is left" not in out
    saved = json.loads((tmp_path / "run" / "eval-mvtec" / "metrics.json").read_text())
    assert saved["image"]["auroc"] is not None and saved["image"]["f1_max"] is not None  # every photo
    assert saved["image"]["per_defect_auroc"]["colour"] is not None
    assert saved["pixel"]["auroc"] is None and saved["pixel"]["defect_images_without_mask"] == 17
    assert f"Note: {note}." in (tmp_path / "run" / "eval-mvtec" / "report.md").read_text()
    # anomaly.predict takes a folder of photos as ever; the report holds no pixel threshold to default to
    from anomaly.predict import main as predict

    argv = ["--run", str(tmp_path / "run"), "--source", str(category / "test" / "colour"), "--no-progress"]
    assert predict([*argv, "--out", str(tmp_path / "refused")]) == 2
    assert "holds no pixel threshold" in capsys.readouterr().err and not (tmp_path / "refused").exists()
    threshold = str(saved["pixel"]["good_peak"])
    assert predict([*argv, "--out", str(tmp_path / "pred"), "--threshold", threshold]) == 0
    assert capsys.readouterr().out.startswith("17 photos, ")
    assert (tmp_path / "pred" / "predictions.json").is_file()


def test_pixel_figures_leave_out_the_defect_photos_without_a_mask(
    run: Path, parts: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    # a defect photo without a mask scored as three good photos' worth of good pixels, had it been let in
    import shutil

    from anomaly.masks import Segmenter

    full = evaluate_run(run, figure=False, progress=False)
    trimmed = tmp_path / "trimmed"
    shutil.copytree(parts.parent, trimmed)
    (trimmed / "part" / "test" / "spot" / "002.png").unlink()
    (trimmed / "part" / "ground_truth" / "spot" / "002_mask.png").unlink()
    without = evaluate_run(run, root=trimmed, out=tmp_path / "without", figure=False, progress=False)
    (parts / "ground_truth" / "spot" / "002_mask.png").unlink()
    segmented = []

    class Recording(Segmenter):
        def __call__(self, image, regions, *, min_area=1, path=None):
            segmented.append(path.name if path.parent.name == "good" else f"spot/{path.name}")
            return super().__call__(image, regions, min_area=min_area)

    monkeypatch.setattr(evaluate_module, "load_segmenter", lambda *a, **k: Recording(None))
    argv = ["--run", str(run), "--masks", "--threshold", "3", "--no-progress"]
    assert evaluate_module.main(argv) == 0
    out = capsys.readouterr().out
    saved = json.loads((run / "eval-mvtec" / "metrics.json").read_text())
    assert saved["image"] == full["image"]  # image figures: every photo, the unmasked one a defect
    for figure in ("auroc", "aupro", "f1_max"):
        assert saved["pixel"][figure] == pytest.approx(without["pixel"][figure])
        assert saved["pixel"][figure] is not None
    assert saved["pixel"]["defect_images_without_mask"] == 1
    assert sorted(segmented) == ["000.png", "001.png", "spot/000.png", "spot/001.png"]  # not spot/002
    note = (
        "1 of 3 defect images have no mask: scored in the image figures, left out of pixel AUROC, AUPRO, "
        "pixel F1-max and the mask scores"
    )
    assert f"note: {note}\n" in out
    assert f"Note: {note}." in (run / "eval-mvtec" / "report.md").read_text()


def test_a_colour_decoder_on_grey_photos_is_warned_about(
    parts: Path, tmp_path: Path, tiny_config, monkeypatch, capsys
):
    # anomaly.evaluate --sam X masked grey photos with X's colour head without a word
    from anomaly.masks import Segmenter
    from segmentation.colour_head import ColourHead

    grey = tmp_path / "grey" / "part"
    shutil.copytree(parts, grey)
    for photo in [*(grey / "train").rglob("*.png"), *(grey / "test").rglob("*.png")]:
        assert cv2.imwrite(str(photo), cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2GRAY))
    head = ColourHead((1.0, 0.1, 0.0))

    def stop(*args, **kwargs):
        raise UserError("stopped before scoring")

    monkeypatch.setattr(
        evaluate_module, "load_segmenter", lambda *a, **k: Segmenter(None, "d", colour_head=head)
    )
    monkeypatch.setattr(evaluate_module, "score_records", stop)
    for root, warned in ((grey, True), (parts, False)):
        run = tmp_path / f"run_{root.parent.name}"
        fit_run(root.parent, "part", run, config=tiny_config, progress=False)
        argv = ["--run", str(run), "--sam", "decoder.pt", "--threshold", "3", "--no-progress", "--no-figure"]
        assert evaluate_module.main(argv) == 2
        err = capsys.readouterr().err
        assert err.endswith("error: stopped before scoring\n")  # the segmenter was loaded
        lines = [line for line in err.splitlines() if "greyscale" in line]
        assert lines == (
            ["warning: the 3 photos read from the 5 are greyscale, and the decoder's colour head reads "
             "colour, which a grey photo does not have: use a decoder trained without it, or pass "
             "--no-colour-head"]
            if warned else []
        )  # fmt: skip


def test_an_empty_defect_folder_is_one_warning_that_its_type_is_not_scored(
    run: Path, parts: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # test/crack/ made before its photos were copied: a conversion warns of it, an evaluation of the tree
    # scored every other type without a word
    (parts / "test" / "crack").mkdir()
    (parts / "test" / "crack" / ".DS_Store").write_bytes(b"")
    evaluate_run(run, figure=False, progress=False)
    warning = (
        f"warning: empty folder {parts / 'test' / 'crack'}: no photos, so no 'crack' photos are "
        "scored (add them or remove it)"
    )
    assert [line for line in capsys.readouterr().err.splitlines() if "empty folder" in line] == [warning]


def test_several_empty_folders_are_a_warning_each_naming_its_own_type(
    run: Path, parts: Path, capsys: pytest.CaptureFixture
) -> None:
    # "2 empty folders, e.g. .../test/crack: no photos, so no 'crack' photos are scored (add them or remove
    # it)": the claim was the first folder's alone, and no word said 'hole' photos were not scored either
    for name in ("crack", "hole"):
        (parts / "test" / name).mkdir()
    for photo in (parts / "test" / "good").iterdir():  # held in train/good, but test/ alone is scored
        photo.unlink()
    evaluate_run(run, figure=False, progress=False)
    kinds = {"crack": "'crack' photos", "good": "good photos", "hole": "'hole' photos"}
    warnings = [
        f"warning: empty folder {parts / 'test' / name}: no photos, so no {kind} are scored "
        "(add them or remove it)"
        for name, kind in kinds.items()
    ]
    assert [line for line in capsys.readouterr().err.splitlines() if "empty folder" in line] == warnings


def test_an_empty_test_good_folder_beside_train_good_warns_that_no_good_photo_is_scored(
    run: Path, parts: Path, capsys: pytest.CaptureFixture
) -> None:
    # the MVTec protocol scores test/ alone: train/good/'s photos, which the run was fit on, made the line
    # claim nothing ("no photos") though no good photo was scored
    from anomaly.run import load_run

    for photo in (parts / "test" / "good").iterdir():
        photo.unlink()
    chosen, _, _ = evaluate_module.scored_records(load_run(run))
    assert chosen and not any(r.is_good for r in chosen)
    warning = (
        f"warning: empty folder {parts / 'test' / 'good'}: no photos, so no good photos are scored "
        "(add them or remove it)"
    )
    assert [line for line in capsys.readouterr().err.splitlines() if "empty folder" in line] == [warning]


def test_masks_on_a_converter_split_read_the_tree_and_its_split_once(
    run: Path, parts: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the val split's threshold read the image tree and splits.json again: every note of the layout's (a
    # .heic photo left out) was printed twice
    import anomaly.data

    save_splits(
        Splits(val=["part/test/spot/000", "part/test/good/000"], test=["part/test/spot/001"]),
        tmp_path / "conv" / "splits.json",
    )
    (parts / "test" / "good" / "phone.heic").write_bytes(b"not read")
    reads = []
    real = anomaly.data.load_splits
    monkeypatch.setattr(anomaly.data, "load_splits", lambda path: reads.append(path) or real(path))
    result = evaluate_run(run, data=tmp_path / "conv", masks=True, figure=False, progress=False)
    assert result["masks"]["threshold_from"].startswith("pixel F1-max on the val split (2 images)")
    notes = [line for line in capsys.readouterr().err.splitlines() if "phone.heic" in line]
    assert len(notes) == 1 and notes[0].startswith("note: 1 file in ")
    assert reads == [tmp_path / "conv" / "splits.json"]


def test_each_defect_mask_is_decoded_once_before_it_is_scored(
    run: Path, parts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the empty-mask check and the mask warnings each decoded every defect mask before the scoring did
    import anomaly.data

    decoded: list[Path] = []
    real = anomaly.data.read_record_parts
    monkeypatch.setattr(
        anomaly.data,
        "read_record_parts",
        lambda record, shape: decoded.extend(record.mask_files) or real(record, shape),
    )
    evaluate_run(run, figure=False, progress=False)
    masks = sorted((parts / "ground_truth").rglob("*.png"))
    assert masks and sorted(decoded) == sorted(masks * 2)  # once before scoring, once scored


def test_a_defect_photo_whose_mask_values_are_all_named_good_is_not_scored_as_a_conversion_skips_it(
    tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture
) -> None:
    # a 3D-AD class_ids.json naming every value of a mask good: the converters skip the photo ('no defect
    # value in the mask'), and here it was scored as a defect photo with an empty mask
    from converters.mvtec2yolo import main as convert_main
    from tests.converters.layout_trees import CATEGORY, N_DEFECT, make_layout_tree

    root = make_layout_tree(tmp_path, "mvtec_3d")
    class_map = root / CATEGORY / "class_ids.json"
    class_map.write_text(json.dumps({"255": "crack", "128": "good"}))
    gt = root / CATEGORY / "test" / "crack" / "gt" / "001.png"
    cv2.imwrite(str(gt), np.where(cv2.imread(str(gt), cv2.IMREAD_GRAYSCALE) > 0, 128, 0).astype(np.uint8))
    assert convert_main(["--root", str(root), "--out", str(tmp_path / "conv"), "--no-progress"]) == 0
    reason = f"no defect value in the mask ({class_map} names its values good)"
    assert f"1 x {reason}" in capsys.readouterr().out
    fit_run(root, CATEGORY, tmp_path / "run", config=tiny_config, progress=False)
    metrics = evaluate_run(tmp_path / "run", figure=False, progress=False)
    assert metrics["image"]["defect_images"] == N_DEFECT - 1
    notes = [line for line in capsys.readouterr().err.splitlines() if "as a conversion skips" in line]
    assert notes == [f"note: 1 defect photo not scored, as a conversion skips it: {reason} (e.g. {gt})"]


def test_a_defect_photo_whose_mask_is_all_zero_is_not_scored_as_a_conversion_skips_it(
    run: Path, parts: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # ground_truth/spot/000_mask.png saved all black: the converters skip its photo ('empty mask'), and here
    # it was scored as a defect photo without a defect pixel (in the image figures, and in the val split's
    # threshold)
    from converters.mvtec2yolo import main as convert_main

    empty = parts / "ground_truth" / "spot" / "000_mask.png"
    cv2.imwrite(str(empty), np.zeros((64, 64), np.uint8))
    assert convert_main(["--root", str(parts.parent), "--out", str(tmp_path / "conv"), "--no-progress"]) == 0
    assert "1 x empty mask (e.g. part/test/spot/000)" in capsys.readouterr().out
    metrics = evaluate_run(run, figure=False, progress=False)
    assert metrics["image"]["defect_images"] == 2
    notes = [line for line in capsys.readouterr().err.splitlines() if "as a conversion skips" in line]
    assert notes == [f"note: 1 defect photo not scored, as a conversion skips it: empty mask (e.g. {empty})"]

    save_splits(
        Splits(
            val=["part/test/spot/000", "part/test/spot/001", "part/test/good/000"],
            test=["part/test/spot/002"],
        ),
        tmp_path / "split" / "splits.json",
    )
    evaluate_run(run, data=tmp_path / "split", figure=False, progress=False)  # no threshold picked on val
    assert "as a conversion skips" not in capsys.readouterr().err  # it said 'not used for the threshold'
    result = evaluate_run(run, data=tmp_path / "split", masks=True, figure=False, progress=False)
    assert result["masks"]["threshold_from"].startswith("pixel F1-max on the val split (2 images)")
    notes = [line for line in capsys.readouterr().err.splitlines() if "as a conversion skips" in line]
    assert notes == [
        "note: 1 defect photo of split 'val' not used for the threshold, as a conversion skips it: "
        f"empty mask (e.g. {empty})"
    ]


def test_a_split_of_defect_photos_whose_masks_are_all_zero_is_refused_in_one_line(
    run: Path, parts: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for index in (0, 1):
        cv2.imwrite(
            str(parts / "ground_truth" / "spot" / f"{index:03d}_mask.png"), np.zeros((64, 64), np.uint8)
        )
    save_splits(
        Splits(val=["part/test/good/000"], test=["part/test/spot/000", "part/test/spot/001"]),
        tmp_path / "split" / "splits.json",
    )
    argv = ["--run", str(run), "--data", str(tmp_path / "split"), "--no-progress", "--no-figure"]
    assert evaluate_module.main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (
        "error: no images to score in split 'test': each is a defect photo whose mask holds no defect value "
        "(the note above says why)"
    )
    assert err[-2].startswith("note: 2 defect photos not scored, as a conversion skips them: empty mask")


def test_a_test_folder_of_defect_photos_whose_masks_are_all_zero_is_refused_as_test(
    tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture
) -> None:
    # the MVTec protocol (no --data) scores test/, as eval_records names it: this said "in split 'test'"
    parts = make_parts(tmp_path / "data", n_good=0)
    shutil.rmtree(parts / "test" / "good")
    for mask in (parts / "ground_truth" / "spot").iterdir():
        cv2.imwrite(str(mask), np.zeros((64, 64), np.uint8))
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    capsys.readouterr()
    assert evaluate_module.main(["--run", str(tmp_path / "run"), "--no-progress", "--no-figure"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: no images to score in test/: each is a defect photo whose mask holds no defect value "
        "(the note above says why)"
    )


def test_none_left_to_score_after_two_notes_points_at_both() -> None:
    # two reasons (an empty mask, a mask of values its value map names good) are two notes: "the note above"
    with pytest.raises(UserError, match=r"\(the notes above say why\)$"):
        evaluate_module.scorable([], where="split 'test'", notes=2)


def test_a_val_photo_left_out_of_the_threshold_is_not_checked_against_the_fit_photos(
    run: Path, parts: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # the val split's fit-overlap check ran on every val photo before those whose mask holds no defect value
    # were left out: a fit photo filed as a defect with an all-black mask, never scored, refused the pick
    shutil.copyfile(parts / "train" / "good" / "000.png", parts / "test" / "spot" / "000.png")
    cv2.imwrite(str(parts / "ground_truth" / "spot" / "000_mask.png"), np.zeros((64, 64), np.uint8))
    save_splits(
        Splits(
            val=["part/test/spot/000", "part/test/spot/001", "part/test/good/000"],
            test=["part/test/spot/002", "part/test/good/001"],
        ),
        tmp_path / "split" / "splits.json",
    )
    result = evaluate_run(run, data=tmp_path / "split", masks=True, figure=False, progress=False)
    assert result["masks"]["threshold_from"].startswith("pixel F1-max on the val split (2 images)")
    assert "split 'val' not used for the threshold" in capsys.readouterr().err
    # one the pick scores is refused as before
    shutil.copyfile(parts / "train" / "good" / "001.png", parts / "test" / "good" / "000.png")
    with pytest.raises(UserError, match=r"test/good/000.png: its bytes are those of part/train/good/001"):
        evaluate_run(run, data=tmp_path / "split", masks=True, figure=False, progress=False, overwrite=True)


def test_every_scored_photo_whose_header_does_not_read_is_named_in_one_line(
    run: Path, parts: Path, capsys: pytest.CaptureFixture
) -> None:
    # the first stopped the evaluation: two broken photos took two runs to find
    broken = [parts / "test" / "good" / name for name in ("007.png", "008.png")]
    for path in broken:
        path.write_bytes(b"")
    assert evaluate_module.main(["--run", str(run), "--no-progress", "--no-figure"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith(f"error: cannot read 2 photos: {broken[0]} (") and str(broken[1]) in err[-1]


@pytest.mark.parametrize("split", [False, True], ids=["test folder", "split"])
def test_none_left_to_score_says_the_notes_above_and_they_are_there(
    tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture, split: bool
) -> None:
    # "the notes above say why" was tested on scorable alone, never against the lines printed above it:
    # two reasons (an all-zero mask, a mask of values its value map names good) are two notes, then the line
    from tests.converters.layout_trees import CATEGORY, make_layout_tree

    root = make_layout_tree(tmp_path, "mvtec_3d")
    (root / CATEGORY / "class_ids.json").write_text(json.dumps({"255": "crack", "128": "good"}))
    shutil.rmtree(root / CATEGORY / "test" / "good")
    gt = root / CATEGORY / "test" / "crack" / "gt"
    for name, value in (("000.png", 0), ("001.png", 128), ("002.png", 0)):
        mask = cv2.imread(str(gt / name), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(gt / name), np.where(mask > 0, value, 0).astype(np.uint8))
    fit_run(root, CATEGORY, tmp_path / "run", config=tiny_config, progress=False)
    argv = ["--run", str(tmp_path / "run"), "--no-progress", "--no-figure"]
    if split:
        keys = [f"{CATEGORY}/test/crack/{index:03d}" for index in range(3)]
        save_splits(Splits(test=keys), tmp_path / "conv" / "splits.json")
        argv += ["--data", str(tmp_path / "conv")]
    capsys.readouterr()
    assert evaluate_module.main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    where = "split 'test'" if split else "test/"
    assert err[-1] == (
        f"error: no images to score in {where}: each is a defect photo whose mask holds no defect value "
        "(the notes above say why)"
    )
    assert err[-3].startswith("note: 2 defect photos not scored, as a conversion skips them: empty mask (")
    assert err[-2].startswith("note: 1 defect photo not scored, as a conversion skips it: no defect value ")


def test_the_highest_map_value_of_the_note_keeps_six_significant_digits(capsys) -> None:
    # it read 3.61 (:.4g): above the peak 3.60981, so passed back as --threshold it still flagged nothing
    records = [ImageRecord(Path("000.png"), "part", "test", "hole", None)]
    evaluate_module.note_above_every_map(5.0, records, [np.full((2, 2), 3.6098123)])
    assert "(the highest: 3.60981): no pixel is flagged" in capsys.readouterr().err


def test_a_threshold_above_every_map_value_is_noted_where_defect_photos_are_scored(
    run: Path, tmp_path: Path, tiny_config: dict, capsys
) -> None:
    # IoU 0.000 on every defect photo, every mask empty, and no word of why
    metrics = evaluate_run(run, masks=True, threshold=1e9, figure=False, progress=False)
    assert metrics["masks"]["iou_defect"] == 0.0
    note = [line for line in capsys.readouterr().err.splitlines() if "--threshold" in line]
    assert len(note) == 1
    assert re.fullmatch(
        r"note: --threshold 1e\+09 is above every map value scored \(the highest: [0-9.e-]+\): no pixel is "
        r"flagged and every mask is empty; without --threshold one is picked \(pixel F1-max\)",
        note[0],
    )
    evaluate_run(run, masks=True, threshold=1e-9, figure=False, progress=False, overwrite=True)
    assert "--threshold" not in capsys.readouterr().err
    category = make_parts(tmp_path / "good", n_defect=0)  # nothing to flag: an empty mask is right there
    fit_run(category.parent, "part", tmp_path / "good_run", config=tiny_config, progress=False)
    evaluate_run(tmp_path / "good_run", masks=True, threshold=1e9, figure=False, progress=False)
    assert "--threshold" not in capsys.readouterr().err


def test_photos_of_fewer_pixels_than_the_default_min_area_are_scored_without_masks(
    tmp_path: Path, tiny_config: dict
) -> None:
    # "--min-area 16 is more pixels than a whole photo (3x3 = 9)", though neither --masks nor --min-area
    # was given and no region is cut without --masks
    folder = tmp_path / "data" / "part"
    rng = np.random.default_rng(0)
    for subset, count in (("train/good", 3), ("test/good", 2), ("test/spot", 2)):
        (folder / subset).mkdir(parents=True)
        for i in range(count):
            photo = (120 + rng.integers(-10, 10, (3, 3, 3))).astype(np.uint8)
            if subset == "test/spot":
                photo[1, 1] = (0, 0, 255)
                (folder / "ground_truth" / "spot").mkdir(parents=True, exist_ok=True)
                mask = np.zeros((3, 3), np.uint8)
                mask[1, 1] = 255
                cv2.imwrite(str(folder / "ground_truth" / "spot" / f"{i:03d}_mask.png"), mask)
            cv2.imwrite(str(folder / subset / f"{i:03d}.png"), photo)
    fit_run(folder.parent, "part", tmp_path / "run", config={**tiny_config, "image_size": 32}, progress=False)
    metrics = evaluate_run(tmp_path / "run", figure=False, progress=False)
    assert metrics["image"]["images"] == 4
    with pytest.raises(UserError, match=r"--min-area 16 is more pixels than a whole photo \(3x3 = 9\)"):
        evaluate_run(tmp_path / "run", masks=True, figure=False, progress=False, overwrite=True)


@pytest.mark.parametrize("threshold, shown", [(0.00001, "1e-05"), (12.345678, "12.3457"), (3.5, "3.5")])
def test_the_masks_line_gives_the_threshold_to_six_significant_digits(threshold: float, shown: str) -> None:
    # --threshold 0.00001 read 'threshold 0.0000, given' (four decimals), a value that was not given
    masks = {"segmenter": "map threshold", "threshold": threshold, "threshold_from": "given"}
    masks |= dict.fromkeys(("iou_defect", "iou_good", "mask_ap", "mask_ap50"), 0.5)
    assert masks_summary(masks).startswith(f"masks (map threshold, threshold {shown}, given): per-image IoU ")


def test_the_threshold_to_pass_names_a_small_good_peak_as_it_is() -> None:
    # a largest map value of 0.00001234 on a good image was named as 0.0000 (four decimals)
    metrics = {"pixel": {"f1_threshold": float("nan"), "good_peak": 0.00001234}}
    with pytest.raises(UserError, match=r"the largest map value on a good image here is 1\.234e-05\)$"):
        pick_threshold(None, metrics)
