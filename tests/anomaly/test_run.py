"""A fit -> save -> load -> predict round trip on a tiny backbone, and what a broken run folder says."""

from __future__ import annotations

import json
import math
import re
import shlex
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import anomaly.backbones
import anomaly.run
from anomaly.data import SPLITS_FILE, eval_records, load_records
from anomaly.evaluate import evaluate_run, score_records
from anomaly.evaluate import main as evaluate_main
from anomaly.predict import predict_photos
from anomaly.run import (
    BANK_FILE,
    CONFIG_FILE,
    RUN_FILE,
    WEIGHTS_FILE,
    evaluate_command,
    fit_run,
    load_run,
    own_weights,
    protocol_data,
)
from common.errors import UserError
from common.io import sha256_file
from converters.splits import Splits, save_splits
from tests.anomaly.conftest import make_parts
from tests.conftest import assert_link_loop_line


def rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path))[..., ::-1].copy()


def test_two_image_round_trip(parts: Path, tmp_path: Path, tiny_config: dict) -> None:
    fitted = fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    info = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    assert info["fit_keys"] == ["part/train/good/000", "part/train/good/001"]
    assert info["image_shape"] == [64, 64] and info["protocol"]["mode"] == "mvtec"
    # 2 images x 8 x 8 patches, half kept by the coreset, stored as float16
    assert info["patches_seen"] == 128 and info["bank"]["rows"] == 64
    loaded = load_run(tmp_path / "run")
    assert loaded.model.bank.dtype == torch.float16 and torch.equal(loaded.model.bank, fitted.model.bank)
    photos = [rgb(p) for p in sorted((parts / "test" / "spot").iterdir())]
    before, after = fitted.predict(photos), loaded.predict(photos)
    for a, b in zip(before, after, strict=True):
        assert a.anomaly_map.shape == (64, 64) and a.score == b.score
        assert np.array_equal(a.anomaly_map, b.anomaly_map)
    # a training image is (nearly) in the bank: it scores below every defect photo
    [train] = loaded.predict([rgb(parts / "train" / "good" / "000.png")])
    assert train.score < min(p.score for p in after)


def test_a_photo_of_the_other_colour_than_the_fit_ones_is_warned_of_once(
    parts: Path, tmp_path: Path, tiny_config: dict, capsys
) -> None:
    # a run fit on grey photos scored colour ones (or the other way) without a word: every photo is far
    # from every good patch there, defective or not
    fitted = fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    assert json.loads((tmp_path / "run" / RUN_FILE).read_text())["fit_colour"] == "colour"
    photos = sorted((parts / "test" / "spot").iterdir())
    grey = [np.repeat(rgb(p)[..., :1], 3, axis=2) for p in photos]
    capsys.readouterr()
    fitted.predict([rgb(photos[0])], [photos[0]])
    assert capsys.readouterr().err == ""
    fitted.predict(grey, photos)
    assert capsys.readouterr().err == (
        f"warning: {tmp_path / 'run'} was fit on colour photos and {photos[0]} is a grey one: its scores "
        "there say how unlike a colour photo it is, not whether it is defective (fit on photos like these)\n"
    )
    load_run(tmp_path / "run").predict(grey[:1])  # once per loaded run
    assert capsys.readouterr().err.count("warning:") == 1
    info = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    del info["fit_colour"]  # a run fit before 2026-12-05: not checked
    (tmp_path / "run" / RUN_FILE).write_text(json.dumps(info))
    load_run(tmp_path / "run").predict(grey[:1])
    assert capsys.readouterr().err == ""


def test_fitting_on_fewer_than_ten_good_photos_is_warned_of(tmp_path: Path, tiny_config: dict, capsys):
    # on the synthetic set one good photo gave image AUROC 0.79 against 0.998 from 40, without a word
    from anomaly.run import FEW_FIT_PHOTOS

    for count, warned in [(1, "1 good photo"), (FEW_FIT_PHOTOS - 1, "9 good photos"), (FEW_FIT_PHOTOS, None)]:
        parts = make_parts(tmp_path / f"data{count}", n_train=count)
        fit_run(parts.parent, "part", tmp_path / f"run{count}", config=tiny_config, progress=False)
        err = capsys.readouterr().err
        if warned is None:
            assert "warning:" not in err
        else:
            assert err.startswith(f"warning: PatchCore is fit on only {warned}: normal variation they ")
            assert err.count("\n") == 1 and err.endswith("fit on more where you have them\n")


def test_a_run_fit_on_grey_photos_records_it(tmp_path: Path, tiny_config: dict) -> None:
    from common.pixels import photo_colour

    parts = make_parts(tmp_path / "data")
    for photo in parts.rglob("train/good/*.png"):
        cv2.imwrite(str(photo), cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE))
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    assert json.loads((tmp_path / "run" / RUN_FILE).read_text())["fit_colour"] == "grey"
    assert photo_colour(np.zeros((2, 2, 3), np.uint8)) == "grey"


def test_a_run_fit_on_grey_and_colour_photos_records_them_as_mixed(tmp_path: Path, tiny_config: dict) -> None:
    parts = make_parts(tmp_path / "data")
    photo = sorted(parts.rglob("train/good/*.png"))[0]  # one grey photo among colour ones
    cv2.imwrite(str(photo), cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE))
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    assert json.loads((tmp_path / "run" / RUN_FILE).read_text())["fit_colour"] == "mixed"


def test_fitting_on_grey_and_colour_photos_together_is_warned_of_naming_the_fewer_kind(
    tmp_path: Path, tiny_config: dict, capsys
) -> None:
    # one grey photo among colour ones was fit on without a word: the run records 'mixed', and then
    # evaluate and predict no longer warn of a photo of the other kind
    parts = make_parts(tmp_path / "data", n_train=5)
    photos = sorted(parts.rglob("train/good/*.png"))
    cv2.imwrite(str(photos[1]), cv2.imread(str(photos[1]), cv2.IMREAD_GRAYSCALE))
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "fit photos" in line]
    assert warnings == [
        f"warning: 1 of the 5 fit photos is grey ({photos[1]}), the others colour: the memory bank holds "
        "patches of both, so a grey photo to score is compared with the grey one and no warning says it is "
        "unlike the rest; fit on photos of one kind"
    ]
    for photo in photos[3:]:  # now the colour ones are the fewer: 2 of them
        cv2.imwrite(str(photo), cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE))
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False, overwrite=True)
    err = capsys.readouterr().err
    assert f"warning: 2 of the 5 fit photos are colour ({photos[0]}, ...), the others grey: " in err
    for photo in photos[:3]:  # every photo grey: nothing to warn of
        cv2.imwrite(str(photo), cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE))
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False, overwrite=True)
    assert "fit photos" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("grey", "colour", "said"),
    [
        (1, 1, "1 of the 2 fit photos is colour (c0.png), the other grey: the memory bank holds patches of "
         "both, so a colour photo to score is compared with the colour one and"),  # one of each
        (2, 3, "2 of the 5 fit photos are grey (g0.png, ...), the others colour: the memory bank holds "
         "patches of both, so a grey photo to score is compared with the grey ones and"),
        (3, 2, "2 of the 5 fit photos are colour (c0.png, ...), the others grey: "),
        (2, 1, "1 of the 3 fit photos is colour (c0.png), the others grey: "),
        (1, 2, "1 of the 3 fit photos is grey (g0.png), the others colour: "),
    ],
)  # fmt: skip
def test_the_mixed_colour_warning_counts_each_kind_in_its_own_number(
    grey: int, colour: int, said: str, capsys
) -> None:
    # one grey and one colour photo were told 'the others grey' and 'compared with the colour ones'
    kinds = {
        "grey": [Path(f"g{i}.png") for i in range(grey)],
        "colour": [Path(f"c{i}.png") for i in range(colour)],
    }
    anomaly.run.warn_mixed_colour(kinds)
    err = capsys.readouterr().err
    assert err.startswith(f"warning: {said}") and err.count("\n") == 1, err


def test_evaluate_writes_the_report(parts: Path, tmp_path: Path, tiny_config: dict) -> None:
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    result = evaluate_run(tmp_path / "run", progress=False)
    out = Path(result["out"])
    assert {p.name for p in out.iterdir()} == {"metrics.json", "report.md", "scores.csv", "anomaly_maps.png"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["image"]["images"] == 5 and metrics["image"]["defect_images"] == 3
    assert 0.0 <= metrics["pixel"]["aupro"] <= 1.0
    assert (out / "scores.csv").read_text().splitlines()[0] == "key,defect,score"


def test_the_pixel_metrics_have_a_bar_of_their_own_that_no_progress_keeps_quiet(
    parts: Path, tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture
) -> None:
    # after the scoring bar they ran without a word: 27 s on 100 maps of 1024 x 1024 at the time
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    argv = ["--run", str(tmp_path / "run"), "--no-figure"]
    assert evaluate_main([*argv, "--out", str(tmp_path / "shown")]) == 0
    out, err = capsys.readouterr()
    assert "pixel metrics of 5 photos" in err and "pixel F1-max" in err and "pixel metrics" not in out
    assert evaluate_main([*argv, "--out", str(tmp_path / "quiet"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "pixel metrics" not in err + out and out.startswith("5 images (3 defect): image AUROC")


def test_an_overwrite_replaces_the_run_whole_and_clears_a_killed_runs_leftovers(
    parts: Path, tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    (tmp_path / ".run.partial-4242").mkdir()  # a killed run's build: its writer is gone
    (tmp_path / ".run.old-4242").mkdir()  # the old copy of an interrupted replacement
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, overwrite=True, progress=False)
    assert "removed 1 unfinished build" in capsys.readouterr().err  # said, not silently kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "run"]
    assert load_run(tmp_path / "run").model.bank.shape[0] == 64


def test_existing_run_folder_is_refused(parts: Path, tmp_path: Path, tiny_config: dict) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("the user's")
    with pytest.raises(UserError, match="run folder exists"):
        fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)


def test_an_empty_run_folder_made_beforehand_is_fitted_into(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # `mkdir run && anomaly.train --out run` was refused as 'run folder exists', unlike every other --out
    (tmp_path / "run").mkdir()
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    assert {p.name for p in (tmp_path / "run").iterdir()} == {BANK_FILE, CONFIG_FILE, RUN_FILE}


def test_an_out_below_a_file_is_refused_before_fitting(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it used to fit first, then end in FileExistsError's traceback
    (tmp_path / "notes.txt").write_text("a file")
    monkeypatch.setattr(anomaly.run, "build_model", lambda *a, **k: pytest.fail("fitted"))
    with pytest.raises(UserError, match="cannot create folder .*notes.txt is a file"):
        fit_run(parts.parent, "part", tmp_path / "notes.txt" / "run", config=tiny_config, progress=False)


def test_a_file_named_like_the_run_is_refused_even_with_overwrite(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # it used to be replaced by the run folder and left behind as a hidden .run.old-<pid> file
    (tmp_path / "run").write_text("a file")
    with pytest.raises(UserError, match="run is a file, not a run folder"):
        fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, overwrite=True, progress=False)
    assert (tmp_path / "run").read_text() == "a file" and sorted(p.name for p in tmp_path.iterdir()) == [
        "data",
        "run",
    ]


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        ("category", "is inside the input tree"),  # exited 0 with the run inside the data set
        ("root", "is inside the input tree"),
        ("above root", "contains the input tree"),  # --overwrite would have deleted the data set
        ("data", "is inside the input tree"),  # the converter output --data names
    ],
)
def test_an_out_in_the_input_tree_is_refused_before_fitting(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch, where: str, fragment: str
) -> None:
    save_splits(Splits(test=["part/test/spot/000"]), tmp_path / "conv" / "splits.json")
    out = {
        "category": parts / "run",
        "root": parts.parent,
        "above root": tmp_path,
        "data": tmp_path / "conv" / "run",
    }[where]
    before = sorted(tmp_path.rglob("*"))
    monkeypatch.setattr(anomaly.run, "build_model", lambda *a, **k: pytest.fail("fitted"))
    with pytest.raises(UserError, match=fragment):
        fit_run(parts.parent, "part", out, config=tiny_config, data=tmp_path / "conv", overwrite=True)
    assert sorted(tmp_path.rglob("*")) == before


def test_a_splits_file_of_another_category_is_refused_before_fitting(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it fit on every good image of 'part', test/good included: nothing in the file held them out
    make_parts(tmp_path / "other", name="screw")
    save_splits(Splits(test=["screw/test/spot/000"]), tmp_path / "conv" / "splits.json")
    monkeypatch.setattr(anomaly.run, "build_model", lambda *a, **k: pytest.fail("fitted"))
    with pytest.raises(UserError, match=r"conv/splits\.json lists no image of category 'part'"):
        fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, data=tmp_path / "conv")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: (run / RUN_FILE).write_text("{not json"), "cannot read run.json"),
        (lambda run: (run / RUN_FILE).unlink(), "no run.json"),
        (lambda run: (run / BANK_FILE).unlink(), "memory_bank.pt is missing"),
        (lambda run: (run / BANK_FILE).write_bytes(b"x" * 100), "not the file run.json records"),
        (lambda run: _edit(run, bank=None), "lacks bank"),
        (lambda run: _edit(run, config={"backbone": "vgg"}), "unknown config key|backbone"),
        # fields of the wrong type (a hand-edited file) used to end in AttributeError or TypeError
        # tracebacks, or to load and fail later: one line naming the field instead
        (lambda run: _edit(run, bank="x"), "run.json has malformed bank"),
        (lambda run: _edit(run, image_shape=[64]), "run.json has malformed image_shape"),
        (lambda run: _edit(run, fit_keys=5), "run.json has malformed fit_keys"),
        (lambda run: _edit(run, config=[], root=3), "run.json has malformed config, root"),
        (lambda run: _edit(run, image_shape=[0, 64]), "run.json has malformed image_shape"),
        (lambda run: _edit(run, version=2), "is not a version-1"),
        # a list was a TypeError traceback in anomaly.evaluate; true read as 1 in '64xTrue images'
        (lambda run: _edit(run, fit_sha256=["abc"]), "run.json has malformed fit_sha256"),
        (lambda run: _edit(run, image_shape=[True, 64]), "run.json has malformed image_shape"),
        # an empty root read as the working folder, an empty category as no folder of it: both passed
        (lambda run: _edit(run, root=""), r"^corrupt run folder .*run: run\.json has an empty root \(''\)$"),
        (lambda run: _edit(run, category=" "), r"run\.json has an empty category \(' '\)$"),
        (lambda run: _edit(run, root="", category=""), r"run\.json has an empty root \(''\)$"),
        (lambda run: _bank(run, torch.zeros(3, 5).half()), r"holds no \(M, \d+\) memory bank"),
        (lambda run: _bank(run, torch.zeros(0, 128).half()), r"holds no \(M, \d+\) memory bank"),
    ],
)
def test_corrupt_run_folder(parts: Path, tmp_path: Path, tiny_config: dict, damage, message: str) -> None:
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    damage(tmp_path / "run")
    with pytest.raises(UserError, match=message):
        load_run(tmp_path / "run")


@pytest.mark.parametrize("key", ["coreset_max", "max_bank_patches", "sigma"])
def test_a_run_whose_config_lacks_a_key_is_one_line_naming_it(
    parts: Path, tmp_path: Path, tiny_config: dict, key: str
) -> None:
    # a run.json of an older version, or hand-edited: a nullable key missing (coreset_max) was a KeyError
    # traceback in build_model, another one 'needs a number >= 0, got null' though nothing said null
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    info = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    del info["config"][key]
    (tmp_path / "run" / RUN_FILE).write_text(json.dumps(info))
    with pytest.raises(UserError, match=rf"corrupt run folder .*run\.json config lacks {key}$"):
        load_run(tmp_path / "run")


def _edit(run: Path, **changes) -> None:
    info = json.loads((run / RUN_FILE).read_text())
    for key, value in changes.items():
        if value is None:
            del info[key]
        else:
            info[key] = value
    (run / RUN_FILE).write_text(json.dumps(info))


def _bank(run: Path, bank: torch.Tensor) -> None:
    torch.save({"bank": bank}, run / BANK_FILE)
    info = json.loads((run / RUN_FILE).read_text())
    info["bank"]["sha256"] = sha256_file(run / BANK_FILE)
    (run / RUN_FILE).write_text(json.dumps(info))


def test_a_run_fit_with_other_backbone_weights_is_refused(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    _edit(tmp_path / "run", backbone={"weights_sha256": "a" * 64})
    monkeypatch.setattr(anomaly.run, "weights_sha256", lambda name, weights: "b" * 64)
    with pytest.raises(UserError, match="backbone weights differ"):
        load_run(tmp_path / "run", weights=tmp_path / "other.pth")


def test_a_run_fit_with_the_users_own_weights_says_the_commands_cannot_load_it(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # anomaly.train --weights FILE: anomaly.evaluate, anomaly.predict and --anomaly-run take no --weights
    # and load the official ones; it said "backbone weights differ from those ... was fit with", no way out
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    _edit(tmp_path / "run", backbone={"weights_sha256": "a" * 64})
    monkeypatch.setattr(anomaly.run, "weights_sha256", lambda name, weights: "b" * 64)  # the official
    with pytest.raises(UserError) as refused:
        load_run(tmp_path / "run")
    assert str(refused.value) == (
        f"{tmp_path / 'run'} was fit with other mobilenet_v2 weights than the official ones (sha256 "
        f"{'a' * 64}, given to anomaly.train --weights before runs kept a copy of them), and the anomaly "
        "commands and --anomaly-run load only the official ones: fit it again, or load it from Python "
        "(anomaly.run.load_run(run, weights=FILE))"
    )


def _own_weights(path: Path, seed: int = 3) -> Path:
    """A mobilenet_v2 state dict of the user's own: the architecture, seeded random weights."""
    from anomaly.backbones import backbone_spec

    torch.manual_seed(seed)
    torch.save(backbone_spec("mobilenet_v2").build().state_dict(), path)
    return path


def test_a_run_fit_on_the_users_own_weights_keeps_a_copy_and_loads_without_them(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # anomaly.evaluate, anomaly.predict and --anomaly-run take no --weights: such a run loaded nowhere
    weights = _own_weights(tmp_path / "my_backbone.pth")
    config = {**tiny_config, "pretrained": True}
    fitted = fit_run(parts.parent, "part", tmp_path / "run", config=config, weights=weights, progress=False)
    copy = tmp_path / "run" / WEIGHTS_FILE
    assert copy.read_bytes() == weights.read_bytes()
    assert json.loads((tmp_path / "run" / RUN_FILE).read_text())["backbone"]["weights_file"] == WEIGHTS_FILE
    weights.unlink()
    (tmp_path / "run").rename(tmp_path / "moved")  # the run folder alone, elsewhere
    loaded = load_run(tmp_path / "moved")
    image = np.full((64, 64, 3), 128, np.uint8)
    image[20:30, 20:30] = 250  # a bright spot: a score well above 0
    [now], [then] = loaded.predict([image]), fitted.predict([image])
    assert now.score == pytest.approx(then.score, rel=1e-6) and now.score > 0
    copy = tmp_path / "moved" / WEIGHTS_FILE
    copy.unlink()
    with pytest.raises(UserError, match=rf"^corrupt run folder .*moved: {WEIGHTS_FILE} \(the backbone "):
        load_run(tmp_path / "moved")
    _own_weights(copy, seed=4)  # other weights under its name
    with pytest.raises(UserError, match="^backbone weights differ from those"):
        load_run(tmp_path / "moved")


def test_a_run_holding_its_copy_of_the_users_weights_is_replaced_by_overwrite(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # the copy is a file the run writes: --overwrite replaces such a run, not "holds ..., choose another"
    weights = _own_weights(tmp_path / "my_backbone.pth")
    config = {**tiny_config, "pretrained": True}
    fit_run(parts.parent, "part", tmp_path / "run", config=config, weights=weights, progress=False)
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, overwrite=True, progress=False)
    assert not (tmp_path / "run" / WEIGHTS_FILE).exists()  # the new run is of the official weights


@pytest.mark.parametrize("name", ["../my_backbone.pth", "other.pth"])
def test_a_run_json_naming_another_weights_file_than_its_copy_is_corrupt(tmp_path: Path, name: str) -> None:
    # run.json edited to point out of the run folder: refused, not loaded from there
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / name).write_bytes(b"weights")
    malformed = r"^corrupt run folder .*run: run\.json has malformed backbone weights_file$"
    with pytest.raises(UserError, match=malformed):
        own_weights(tmp_path / "run", {"backbone": {"weights_file": name}})
    assert own_weights(tmp_path / "run", {"backbone": {"weights_file": None}}) is None
    assert own_weights(tmp_path / "run", {}) is None  # a run.json from before the copy


def _fit_on_official_weights_by_path(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A run at ``tmp_path/run`` fit on a file made the official one (cache: ``tmp_path/cache``)."""
    from dataclasses import replace

    weights = _own_weights(tmp_path / "official.pth")
    spec = anomaly.run.backbone_spec("mobilenet_v2")
    official = replace(spec, weights=replace(spec.weights, sha256=sha256_file(weights), filename="mnv2.pth"))
    for module in (anomaly.run, anomaly.backbones):  # this file is the official one
        monkeypatch.setattr(module, "backbone_spec", lambda name: official)
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    config = {**tiny_config, "pretrained": True}
    fit_run(parts.parent, "part", tmp_path / "run", config=config, weights=weights, progress=False)
    return weights


def test_the_official_weights_given_by_path_go_to_the_cache_not_the_run(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # anomaly.train --weights official.pth offline: evaluate and predict load from the cache, which was empty
    weights = _fit_on_official_weights_by_path(parts, tmp_path, tiny_config, monkeypatch)
    assert (tmp_path / "cache" / "weights" / "mnv2.pth").read_bytes() == weights.read_bytes()
    assert not (tmp_path / "run" / WEIGHTS_FILE).exists()


def test_a_run_on_official_weights_missing_from_the_cache_names_the_cache_not_a_flag(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # anomaly.evaluate, anomaly.predict and --anomaly-run take no --weights: the message sent users to it
    _fit_on_official_weights_by_path(parts, tmp_path, tiny_config, monkeypatch)
    (tmp_path / "cache" / "weights" / "mnv2.pth").unlink()  # another machine, or a cleared cache
    with pytest.raises(UserError) as error:
        load_run(tmp_path / "run", download=False)
    message = str(error.value)
    assert "no verified mnv2.pth for mobilenet_v2" in message and "--weights" not in message
    assert message.endswith(f"and put it in {tmp_path / 'cache' / 'weights'}")
    with pytest.raises(UserError, match=r"^checkpoint not found: .*gone\.pth .*leave --weights out"):
        load_run(tmp_path / "run", weights=tmp_path / "gone.pth")  # Python's weights= keeps the spec's flag


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_a_weights_file_that_is_not_there_is_refused_before_the_tree_is_read(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # a missing --weights was refused only after the image tree was read and every fit photo hashed
    weights = tmp_path / "gone.pth"
    if kind == "folder":
        weights.mkdir()

    def read(*args, **kwargs):
        raise AssertionError("the image tree was read")

    monkeypatch.setattr(anomaly.run, "load_records", read)
    config = {**tiny_config, "pretrained": True}  # a file is read only with pretrained weights
    expected = r"^checkpoint not found: .*gone\.pth " if kind == "missing" else r"^.*gone\.pth is a folder"
    with pytest.raises(UserError, match=expected):
        fit_run(parts.parent, "part", tmp_path / "run", config=config, weights=weights, progress=False)
    assert not (tmp_path / "run").exists()


def test_a_run_fit_on_the_official_weights_keeps_no_copy(parts: Path, tmp_path: Path, tiny_config: dict):
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    assert not (tmp_path / "run" / WEIGHTS_FILE).exists()
    assert json.loads((tmp_path / "run" / RUN_FILE).read_text())["backbone"]["weights_file"] is None


def test_scoring_in_batches_scores_every_image_as_alone(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    run = fit_run(
        parts.parent, "part", tmp_path / "run", config={**tiny_config, "batch_size": 2}, progress=False
    )
    records = eval_records(load_records(parts.parent, "part"))
    scores, maps, masks, _ = score_records(run, records, progress=False)
    assert len(scores) == len(maps) == len(masks) == len(records) == 5
    alone = [run.predict([rgb(r.image)])[0].score for r in records]
    assert scores == pytest.approx(alone, rel=1e-4)


def fit_on_split(parts: Path, tmp_path: Path, config: dict) -> None:
    """A run at ``tmp_path/run`` fit with ``--data tmp_path/conv`` (val and test: two photos each)."""
    splits = Splits(
        val=["part/test/spot/001", "part/test/good/000"], test=["part/test/spot/002", "part/test/spot/000"]
    )
    save_splits(splits, tmp_path / "conv" / "splits.json")
    fit_run(parts.parent, "part", tmp_path / "run", config=config, data=tmp_path / "conv", progress=False)


def test_the_mask_threshold_is_picked_on_the_val_split(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch
) -> None:
    import common.metrics

    fit_on_split(parts, tmp_path, tiny_config)
    aupro_runs = []  # every PRO curve, that of pixel_figures (its AUPRO) and of aupro alike
    pro_curve = common.metrics._pro_curve
    monkeypatch.setattr(common.metrics, "_pro_curve", lambda *args: aupro_runs.append(1) or pro_curve(*args))
    metrics = evaluate_run(tmp_path / "run", data=tmp_path / "conv", masks=True, figure=False, progress=False)
    assert metrics["masks"]["threshold_from"] == "pixel F1-max on the val split (2 images)"
    assert len(aupro_runs) == 1  # the test split's; val's F1-max needs none (it computed all three)


def test_the_val_split_picking_the_mask_threshold_is_hashed_behind_a_bar_too(
    parts: Path, tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    # the test split's photos and then the val split's are hashed against the fit photos (77c5f25)
    fit_on_split(parts, tmp_path, tiny_config)
    capsys.readouterr()
    evaluate_run(tmp_path / "run", data=tmp_path / "conv", masks=True, figure=False, progress=True)
    assert capsys.readouterr().err.count("hashing photos (vs PatchCore's fit photos): 100%") == 2


def test_scoring_the_val_split_itself_picks_its_threshold_on_the_scored_images(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # --split val: the images the threshold is picked on are those scored, and the report says so
    fit_on_split(parts, tmp_path, tiny_config)
    metrics = evaluate_run(
        tmp_path / "run", data=tmp_path / "conv", split="val", masks=True, figure=False, progress=False
    )
    assert metrics["masks"]["threshold_from"] == "pixel F1-max on the scored images themselves (optimistic)"


def test_val_masks_that_vanish_on_the_model_grid_leave_the_threshold_to_the_scored_images(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # one defect pixel at an odd row and column: the nearest-neighbour resize to 32 px drops it
    mask = np.zeros((64, 64), np.uint8)
    mask[33, 33] = 255
    cv2.imwrite(str(parts / "ground_truth" / "spot" / "001_mask.png"), mask)
    fit_on_split(parts, tmp_path, {**tiny_config, "image_size": 32})
    metrics = evaluate_run(tmp_path / "run", data=tmp_path / "conv", masks=True, figure=False, progress=False)
    assert metrics["masks"]["threshold_from"] == "pixel F1-max on the scored images themselves (optimistic)"
    assert math.isfinite(metrics["masks"]["threshold"])


@pytest.mark.parametrize(
    ("val_good", "message"),
    [
        ("part/train/good/000", r"refusing to score .*000\.png: the model was fit on it"),
        # the threshold's val images get the copy check too, not only the key check
        ("part/test/good/001", r"good/001\.png: its bytes are those of part/train/good/000, which"),
    ],
    ids=["a fit photo", "a copy of one"],
)
def test_a_val_image_the_run_was_fit_on_is_refused_for_the_threshold(
    parts: Path, tmp_path: Path, tiny_config: dict, val_good: str, message: str
) -> None:
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    splits = Splits(val=[val_good, "part/test/spot/001"], test=["part/test/spot/002"])
    save_splits(splits, tmp_path / "conv" / "splits.json")
    shutil.copy(parts / "train" / "good" / "000.png", parts / "test" / "good" / "001.png")
    with pytest.raises(UserError, match=message):
        evaluate_run(tmp_path / "run", data=tmp_path / "conv", masks=True, figure=False, progress=False)


def test_an_overwrite_replaces_a_run_with_its_evaluations_but_no_folder_of_other_files(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    for made_inside in ("eval-val", "predict-lot_1"):  # anomaly.evaluate's and anomaly.predict's defaults
        (tmp_path / "run" / made_inside).mkdir()
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, overwrite=True, progress=False)
    (tmp_path / "run" / "notes.txt").write_text("mine")  # --overwrite would delete it
    monkeypatch.setattr(anomaly.run, "build_model", lambda *a, **k: pytest.fail("fitted"))
    with pytest.raises(UserError, match=r"run holds notes.txt, which this command does not write"):
        fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, overwrite=True, progress=False)
    assert (tmp_path / "run" / "notes.txt").is_file()


def test_an_overwrite_replaces_a_run_with_evaluations_and_predictions_written_inside_it_by_name(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # anomaly.evaluate --out <run>/sub, then anomaly.train --overwrite: refused as a folder this command
    # "does not write", though the run's own command wrote it, as it writes the eval-* it replaces
    run = tmp_path / "run"
    fit_run(parts.parent, "part", run, config=tiny_config, progress=False)
    evaluate_run(run, out=run / "sub", figure=True, progress=False)
    predict_photos(run, parts / "test" / "spot", run / "lot [1]", threshold="0", progress=False)  # a glob
    fit_run(parts.parent, "part", run, config=tiny_config, overwrite=True, progress=False)
    assert sorted(p.name for p in run.iterdir()) == [CONFIG_FILE, BANK_FILE, RUN_FILE]
    # a folder with anything else in it is the user's: still refused, whatever it also holds
    evaluate_run(run, out=run / "sub", figure=False, progress=False)
    (run / "sub" / "notes.txt").write_text("mine")
    (run / "mine").mkdir()
    (run / "mine" / "scores.csv").write_text("no marker: not known to be an evaluation\n")
    with pytest.raises(UserError, match=r"run holds mine, sub, which this command does not write"):
        fit_run(parts.parent, "part", run, config=tiny_config, overwrite=True, progress=False)
    assert (run / "sub" / "notes.txt").is_file() and (run / "mine" / "scores.csv").is_file()


def test_an_overwrite_replaces_a_run_holding_a_killed_build_of_a_folder_named_by_the_user(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # anomaly.evaluate --out <run>/sub killed (SIGKILL) half-way leaves .sub.partial-* in the run, which
    # holds no metrics.json yet; anomaly.train --overwrite refused the run as holding what it "does not
    # write", though it replaces the hidden builds of eval-* and predict-* with the run
    run = tmp_path / "run"
    fit_run(parts.parent, "part", run, config=tiny_config, progress=False)
    report, predictions = run / ".sub.partial-4242", run / ".lot_1.partial-4242"  # writers gone
    report.mkdir()
    (report / "scores.csv").write_text("image,score\n")
    (report / ".metrics.json.host-4242-abcd.tmp").write_text("{")  # killed while written
    (predictions / "masks").mkdir(parents=True)
    fit_run(parts.parent, "part", run, config=tiny_config, overwrite=True, progress=False)
    assert sorted(p.name for p in run.iterdir()) == [CONFIG_FILE, BANK_FILE, RUN_FILE]
    # a hidden folder with anything else in it is not known to be a build of the run's commands
    (run / ".notes.partial-4242").mkdir()
    (run / ".notes.partial-4242" / "notes.txt").write_text("mine")
    with pytest.raises(
        UserError, match=r"run holds \.notes\.partial-4242, which this command does not write"
    ):
        fit_run(parts.parent, "part", run, config=tiny_config, overwrite=True, progress=False)
    assert (run / ".notes.partial-4242" / "notes.txt").is_file()


@pytest.mark.parametrize(
    ("content", "tail"),
    [
        ({"protocol": {"data": "my data"}}, " --data 'my data' --split val"),  # fit with --data: its val
        ({"protocol": {"data": None}}, ""),  # the MVTec protocol
        ({"protocol": {"data": ""}}, ""),
        ({"protocol": {"data": ["d"]}}, ""),  # a corrupt run: load_run names it
        ({"protocol": ["d"]}, ""),
        ({}, ""),
        (["d"], ""),
        (None, ""),  # no run.json
        ("{not json", ""),
    ],
)
def test_the_evaluate_command_scores_a_run_fit_with_data_on_its_val_split(
    tmp_path, content, tail, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my data").mkdir()
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        text = content if isinstance(content, str) else json.dumps(content)
        (run / RUN_FILE).write_text(text)
    assert evaluate_command(run) == f"python -m anomaly.evaluate --run {run}{tail}"
    assert protocol_data(run) == ("my data" if tail else None)  # what anomaly.evaluate defaults --data to


def test_the_evaluate_command_of_a_run_whose_data_set_moved_asks_for_it(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / RUN_FILE).write_text(json.dumps({"protocol": {"data": str(tmp_path / "gone data")}}))
    # it printed --data '<gone data>', which anomaly.evaluate refused: 'no splits.json in ...'
    assert evaluate_command(run) == (
        f"python -m anomaly.evaluate --run {run} --data DATA --split val, DATA the data set it was fit with, "
        f"no longer at '{tmp_path / 'gone data'}'"
    )


def test_the_evaluate_command_of_a_data_set_without_val_images_scores_its_test_split(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # a small category's converter split left val empty ('warning: split 'val' has no images'), and the
    # command anomaly.train printed, --split val, stopped at "no images to score in split 'val'"
    save_splits(Splits(test=["part/test/spot/002", "part/test/spot/000"]), tmp_path / "conv" / "splits.json")
    conv = tmp_path / "conv"
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, data=conv, progress=False)
    command = evaluate_command(tmp_path / "run")
    assert command.endswith(f"--data {tmp_path / 'conv'} --split test")
    [*_, data, _, split] = shlex.split(command)
    evaluate_run(tmp_path / "run", data=data, split=split, progress=False, figure=False)  # it runs


@pytest.mark.parametrize(
    ("val", "split"),
    [
        pytest.param(["other/test/spot/001"], "test", id="val holds only another category's images"),
        pytest.param(["other/test/spot/001", "part/test/spot/001"], "val", id="val holds one of its own"),
    ],
)
def test_the_evaluate_command_looks_for_val_images_of_the_runs_category(
    tmp_path: Path, val: list[str], split: str
) -> None:
    # a data set of several categories: val images of another one leave this run's val empty all the same
    save_splits(Splits(val=val, test=["part/test/spot/002"]), tmp_path / "conv" / "splits.json")
    run = tmp_path / "run"
    run.mkdir()
    info = {"category": "part", "protocol": {"data": str(tmp_path / "conv")}}
    (run / RUN_FILE).write_text(json.dumps(info))
    assert evaluate_command(run).endswith(f"--data {tmp_path / 'conv'} --split {split}")


def test_a_run_fit_on_a_split_is_scored_on_its_own_data_set_by_default(
    parts: Path, tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture
) -> None:
    # without --data it scored test/ of the category and refused: "the model was fit on" its good images
    fit_on_split(parts, tmp_path, tiny_config)
    assert (
        evaluate_main(["--run", str(tmp_path / "run"), "--split", "val", "--no-progress", "--no-figure"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith(
        f"scoring split val of {tmp_path / 'conv'}, the converter output the run was fit with"
    )
    assert "2 images (1 defect)" in out and (tmp_path / "run" / "eval-val" / "report.md").is_file()
    (tmp_path / "conv" / "splits.json").rename(tmp_path / "conv" / "moved.json")
    with pytest.raises(UserError, match=r"run was fit with --data .*conv, which holds no splits\.json now"):
        evaluate_run(tmp_path / "run", figure=False, progress=False)


def test_an_unknown_split_is_refused_before_the_run_says_which_split_it_scores(
    parts: Path, tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture
) -> None:
    # it printed "scoring split foo of <conv>, the converter output the run was fit with" and then erred
    fit_on_split(parts, tmp_path, tiny_config)
    assert evaluate_main(["--run", str(tmp_path / "run"), "--split", "foo", "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error: argument --split: invalid choice: 'foo'" in captured.err
    assert not any(p.name.startswith("eval") for p in (tmp_path / "run").iterdir())


def test_a_run_fit_with_a_relative_data_path_is_scored_from_any_folder(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run.json kept "--data conv" as typed: evaluate started elsewhere said the data set had moved
    splits = Splits(val=["part/test/spot/001"], test=["part/test/spot/002"])
    save_splits(splits, tmp_path / "conv" / "splits.json")
    monkeypatch.chdir(tmp_path)
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, data="conv", progress=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert protocol_data(tmp_path / "run") == str((tmp_path / "conv").resolve())
    metrics = evaluate_run(tmp_path / "run", figure=False, progress=False)
    assert metrics["image"]["images"] == 1 and metrics["settings"]["protocol"].startswith("split test of /")


def test_run_json_records_root_and_data_as_every_record_writes_a_path(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run.json resolved them (Path.resolve), following links, where every other record keeps the name given
    save_splits(
        Splits(val=["part/test/spot/001"], test=["part/test/spot/002"]), tmp_path / "conv" / "splits.json"
    )
    (tmp_path / "linked").symlink_to(parts.parent)
    (tmp_path / "conv_link").symlink_to(tmp_path / "conv")
    monkeypatch.chdir(tmp_path)
    fit_run("conv/../linked", "part", tmp_path / "run", config=tiny_config, data="conv_link", progress=False)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["root"] == str(tmp_path / "linked")
    assert info["protocol"] == {"mode": "split", "data": str(tmp_path / "conv_link")}
    metrics = evaluate_run(tmp_path / "run", figure=False, progress=False)
    assert metrics["settings"]["root"] == str(tmp_path / "linked")


def test_data_may_name_the_converters_data_yaml_and_is_recorded_as_its_folder(
    parts: Path, tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture
) -> None:
    # anomaly.train said "cannot read splits file .../data.yaml: not JSON"; users copy the path they
    # trained the detector with
    from anomaly.train import main as train_main

    splits = Splits(val=["part/test/spot/001", "part/test/good/000"], test=["part/test/spot/002"])
    save_splits(splits, tmp_path / "conv" / "splits.json")
    (tmp_path / "conv" / "data.yaml").write_text(f"path: {tmp_path / 'conv'}\nnames: {{0: spot}}\n")
    config = [f"{key}={str(value).lower()}" for key, value in tiny_config.items()]
    argv = ["--root", str(parts), "--out", str(tmp_path / "run"), "--no-progress", *config]
    assert train_main([*argv, "--data", str(tmp_path / "conv" / "data.yaml")]) == 0
    assert protocol_data(tmp_path / "run") == str((tmp_path / "conv").resolve())  # as for --data conv
    assert f"--data {tmp_path / 'conv'} --split val" in capsys.readouterr().out
    scored = {}
    for name, data in (("folder", tmp_path / "conv"), ("yaml", tmp_path / "conv" / "data.yaml")):
        argv = ["--run", str(tmp_path / "run"), "--data", str(data), "--out", str(tmp_path / name)]
        assert evaluate_main([*argv, "--no-progress", "--no-figure"]) == 0
        scored[name] = json.loads((tmp_path / name / "metrics.json").read_text())["settings"]["protocol"]
    assert scored["yaml"] == scored["folder"] == f"split test of {tmp_path / 'conv'}"


@pytest.mark.parametrize("fit_with", ["folder", "splits.json"])
def test_a_run_is_scored_into_its_own_folder_whichever_spelling_of_its_data_set_is_given(
    parts: Path, tmp_path: Path, tiny_config: dict, fit_with: str
) -> None:
    # a run fit with --data conv/splits.json (as docs/anomaly.md offers) and scored with --data conv, or the
    # other way round, was refused: "scoring --data conv, not the images run was fit with: pass --out"
    save_splits(
        Splits(val=["part/test/spot/001"], test=["part/test/spot/002"]), tmp_path / "conv" / SPLITS_FILE
    )
    data = tmp_path / "conv" / (SPLITS_FILE if fit_with == "splits.json" else "")
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, data=data, progress=False)
    for given in (tmp_path / "conv", tmp_path / "conv" / SPLITS_FILE):
        metrics = evaluate_run(tmp_path / "run", data=given, figure=False, progress=False)
        assert metrics["image"]["images"] == 1 and (tmp_path / "run" / "eval-test" / "report.md").is_file()


def test_a_yaml_file_other_than_the_converters_data_yaml_is_one_line_naming_it(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    fit_on_split(parts, tmp_path, tiny_config)
    (tmp_path / "config.yaml").write_text("coreset_ratio: 0.5\n")
    (tmp_path / "yolo").mkdir()
    (tmp_path / "yolo" / "data.yaml").write_text("path: .\nnames: [spot]\n")  # no splits.json beside it
    monkeypatch.setattr(anomaly.run, "build_model", lambda *a, **k: pytest.fail("fitted"))
    for data, message in (
        (tmp_path / "config.yaml", "is a YAML file, not a data set folder the converters wrote"),
        (tmp_path / "yolo" / "data.yaml", "has no splits.json beside it: not a data set the converters"),
    ):
        expected = f"^--data {re.escape(str(data))} {message}"
        with pytest.raises(UserError, match=expected):
            fit_run(parts.parent, "part", tmp_path / "run2", config=tiny_config, data=data, progress=False)
        with pytest.raises(UserError, match=expected):
            evaluate_run(tmp_path / "run", data=data, out=tmp_path / "eval", figure=False, progress=False)
    assert not (tmp_path / "run2").exists() and not (tmp_path / "eval").exists()


def test_an_overwrite_refuses_a_link_to_an_evaluation_and_a_folder_mixing_two_commands_outputs(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # both look like a command's output by their names, but neither is what one command wrote in the run:
    # the link's folder (elsewhere) is the user's, and no command writes metrics.json beside masks/
    run = tmp_path / "run"
    fit_run(parts.parent, "part", run, config=tiny_config, progress=False)
    elsewhere = tmp_path / "eval"
    elsewhere.mkdir()
    (elsewhere / "metrics.json").write_text("{}")
    (run / "linked").symlink_to(elsewhere, target_is_directory=True)
    (run / "mixed").mkdir()
    (run / "mixed" / "metrics.json").write_text("{}")
    (run / "mixed" / "masks").mkdir()
    with pytest.raises(UserError, match=r"run holds linked, mixed, which this command does not write"):
        fit_run(parts.parent, "part", run, config=tiny_config, overwrite=True, progress=False)
    assert (run / "linked").is_symlink() and (run / "mixed" / "masks").is_dir()


def test_an_overwrite_replaces_a_run_holding_a_killed_predictions_build(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # anomaly.predict killed (SIGKILL, SIGTERM) while writing <run>/predict-x leaves its hidden build in
    # the run; anomaly.train --overwrite then refused the run as holding files it "does not write"
    run = tmp_path / "run"
    fit_run(parts.parent, "part", run, config=tiny_config, progress=False)
    for leftover in (".predict-lot_1.partial-4242", ".eval-mvtec.old-4242"):  # writers gone
        (run / leftover).mkdir()
    fit_run(parts.parent, "part", run, config=tiny_config, overwrite=True, progress=False)
    assert sorted(p.name for p in run.iterdir()) == [CONFIG_FILE, BANK_FILE, RUN_FILE]


def test_the_mask_threshold_is_picked_on_the_val_images_of_the_tree_scored(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # evaluate --root NEW --masks scored NEW's test images, then read the val images from the tree the
    # run was fit on: moved away, that failed after the scoring, naming a folder the user had not passed
    fit_on_split(parts, tmp_path, tiny_config)
    moved = tmp_path / "moved"
    parts.parent.rename(moved)
    # another --root than the run's: an --out of its own
    options = {"data": tmp_path / "conv", "masks": True, "figure": False, "progress": False}
    metrics = evaluate_run(tmp_path / "run", root=moved, out=tmp_path / "eval_moved", **options)
    assert metrics["masks"]["threshold_from"] == "pixel F1-max on the val split (2 images)"


@pytest.mark.parametrize(
    ("convert", "described"),
    [
        (lambda photo: photo[..., 0], "a (64, 64) uint8 array"),  # grey: a traceback from torch's permute
        (lambda photo: np.dstack([photo, photo[..., :1]]), "a (64, 64, 4) uint8 array"),  # RGBA (PIL's PNG)
        (lambda photo: photo.astype(np.float32) / 255, "a (64, 64, 3) float32 array"),  # scored near-black
        (lambda photo: photo.astype(np.uint16) * 257, "a (64, 64, 3) uint16 array"),  # scored overexposed
        (lambda photo: photo.tolist(), "list"),
    ],
)
def test_predict_refuses_arrays_other_than_rgb_uint8(
    parts: Path, tmp_path: Path, tiny_config: dict, convert, described: str
) -> None:
    run = fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    photo = rgb(parts / "test" / "spot" / "000.png")
    message = f"image #0 is {described}: PatchCore takes (H, W, 3) uint8 RGB"
    with pytest.raises(UserError, match="^" + re.escape(message)):
        run.predict([convert(photo)])


@pytest.mark.parametrize("through", ["", "x"])
def test_a_run_through_a_link_loop_is_one_line_naming_the_link(link_loop: Path, through: str, capsys) -> None:
    # it said "run folder not found: loop" of a path that is there (Path.is_dir is False through a loop)
    given = str(link_loop / through) if through else str(link_loop)
    assert evaluate_main(["--run", given, "--no-progress"]) == 2
    assert_link_loop_line(capsys.readouterr().err, f"--run {given}", link_loop)


@pytest.mark.parametrize("name", [RUN_FILE, BANK_FILE])
def test_a_file_of_the_run_given_as_the_run_names_its_folder(
    parts: Path, tmp_path: Path, tiny_config: dict, name: str
) -> None:
    # --run runs/x/run.json said "run folder not found: runs/x/run.json", a file that is there
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    message = f"{tmp_path / 'run' / name} is a file, not a run folder: pass the folder that holds it"
    with pytest.raises(UserError, match="^" + re.escape(message) + r" \("):
        load_run(tmp_path / "run" / name)


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("patchcore.yaml", "backbone: mobilenet_v2\n", ""),  # configs/anomaly/patchcore.yaml
        ("best.pt", {"model": "ultralytics.nn.tasks.DetectionModel"}, " (an ultralytics model"),
    ],
)
def test_a_file_outside_any_run_is_not_told_to_pass_its_folder(
    tmp_path: Path, name: str, content: object, kind: str
) -> None:
    # --run configs/anomaly/patchcore.yaml or a detector's best.pt said "is a file, not a run folder: pass
    # the folder that holds it (configs/anomaly)", a folder that is no run either
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    else:
        torch.save(content, path)
    with pytest.raises(UserError, match="^" + re.escape(f"{path} is a file{kind}")) as error:
        load_run(path)
    assert "not an anomaly run folder: pass a folder anomaly.train wrote" in str(error.value)
    assert "pass the folder that holds it" not in str(error.value)
    if not kind:  # no empty brackets for a file torch does not read
        assert f"{path} is a file, not an anomaly run folder" in str(error.value)


def test_a_folder_inside_the_run_given_as_the_run_names_the_run(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # --anomaly-run runs/x/eval-val said "not an anomaly run folder (...; make one with anomaly.train)"
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    (tmp_path / "run" / "eval-val").mkdir()
    message = f"{tmp_path / 'run' / 'eval-val'} is a folder inside the anomaly run {tmp_path / 'run'}: "
    with pytest.raises(UserError, match="^" + re.escape(message + "pass the run folder") + "$"):
        load_run(tmp_path / "run" / "eval-val")


def test_an_evaluate_or_predict_output_given_as_the_run_names_the_command_and_the_run(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # --run reports/x (an anomaly.evaluate --out) said only "not an anomaly run folder: ... (no run.json; ..."
    run = tmp_path / "run"
    fit_run(parts.parent, "part", run, config=tiny_config, progress=False)
    evaluate_run(run, out=tmp_path / "report", figure=False, progress=False)
    predict_photos(run, parts / "test", tmp_path / "found", threshold="1", maps=False, progress=False)
    for out, command, record in [
        (tmp_path / "report", "anomaly.evaluate", "metrics.json"),
        (tmp_path / "found", "anomaly.predict", "predict.json"),
    ]:
        text = f"{out} is an {command} output folder (its {record}), not an anomaly run folder"
        with pytest.raises(
            UserError, match="^" + re.escape(f"{text}: pass the run it was made with, {run}") + "$"
        ):
            load_run(out)
    shutil.rmtree(run)  # moved or deleted since
    with pytest.raises(UserError, match=re.escape(f"made with the run {run}, which holds no run.json now")):
        load_run(tmp_path / "found")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "metrics.json").write_text('{"settings": {"model": "a detector"}}')  # not anomaly's
    with pytest.raises(UserError, match="^not an anomaly run folder: .*other .no run.json; make one"):
        load_run(tmp_path / "other")


def test_a_folder_of_many_runs_names_five_and_a_count(tmp_path: Path) -> None:
    for index in range(7):
        (tmp_path / "runs" / f"r{index}").mkdir(parents=True)
        (tmp_path / "runs" / f"r{index}" / "run.json").write_text("{}")
    with pytest.raises(
        UserError, match=r"runs is a folder of anomaly runs \(r0, r1, r2, r3, r4 and 2 more\), not"
    ):
        load_run(tmp_path / "runs")


def test_a_folder_of_runs_given_as_the_run_names_them(parts: Path, tmp_path: Path, tiny_config: dict) -> None:
    # --run runs/anomaly (its runs inside) said "not an anomaly run folder (...; make one with anomaly.train)"
    for name in ("carpet", "hazelnut"):
        fit_run(parts.parent, "part", tmp_path / "runs" / name, config=tiny_config, progress=False)
    (tmp_path / "runs" / "notes").mkdir()
    message = (
        f"{tmp_path / 'runs'} is a folder of anomaly runs (carpet, hazelnut), not a run: pass one of them"
    )
    with pytest.raises(UserError, match="^" + re.escape(message) + "$"):
        load_run(tmp_path / "runs")


def test_a_run_kept_inside_another_run_folder_is_a_run(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    # only a folder without run.json is named as a folder inside its parent's run
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    inner = shutil.copytree(tmp_path / "run", tmp_path / "copy").rename(tmp_path / "run" / "inner")
    assert anomaly.run.read_run_info(inner) == anomaly.run.read_run_info(tmp_path / "run")


def test_a_fit_on_12_bit_photos_in_16_bit_files_warns_as_the_converters_do(
    parts: Path, tmp_path: Path, tiny_config: dict, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    # the converters warn of them; a fit read them as grey levels 0-15 and said nothing
    monkeypatch.setattr(anomaly.run, "FEW_FIT_PHOTOS", 2)  # the two photos of the fixture: no such warning
    fit_run(parts.parent, "part", tmp_path / "eight", config=tiny_config, progress=False)
    assert "warning:" not in capsys.readouterr().err
    for photo in sorted((parts / "train" / "good").iterdir()):
        cv2.imwrite(str(photo), cv2.imread(str(photo)).astype(np.uint16) * 16)  # 12-bit camera data
    fit_run(parts.parent, "part", tmp_path / "twelve", config=tiny_config, progress=False)
    err = capsys.readouterr().err
    assert err.startswith("warning: 2 photos are 16-bit with every value below 4096") and err.count("\n") == 1


def test_a_test_photo_copied_into_the_fit_images_is_refused_before_the_fit(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a copy under another name passed the key check: fit on as normal, scored as a defect (hazelnut_toy:
    # image AUROC 1.000 -> 0.824 with three copies in train/good)
    shutil.copy(parts / "test" / "spot" / "001.png", parts / "train" / "good" / "c01.png")
    monkeypatch.setattr(anomaly.run.PatchCore, "fit", lambda *a, **k: pytest.fail("fit before the check"))
    # nothing is fit yet: the message named the fit photo by record key and said the model was fit on it
    scored, copy = parts / "test" / "spot" / "001.png", parts / "train" / "good" / "c01.png"
    message = f"refusing to fit on {copy}: its bytes are those of {scored}, which evaluation scores; remove"
    with pytest.raises(UserError, match="^" + re.escape(message) + " the copy from the fit images$"):
        fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    assert not (tmp_path / "run").exists()


def test_evaluation_refuses_a_copy_of_a_fit_photo_put_among_the_scored_ones_later(
    parts: Path, tmp_path: Path, tiny_config: dict
) -> None:
    run = fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    assert sorted(run.fit_hashes) == ["part/train/good/000", "part/train/good/001"]
    shutil.copy(parts / "train" / "good" / "000.png", parts / "test" / "good" / "009.png")
    with pytest.raises(UserError, match=r"good/009\.png: its bytes are those of part/train/good/000, which"):
        evaluate_run(tmp_path / "run", figure=False, progress=False)
    info = json.loads((tmp_path / "run" / RUN_FILE).read_text())
    del info["fit_sha256"]  # a run fit before the hashes were recorded: scored by key alone, as then
    (tmp_path / "run" / RUN_FILE).write_text(json.dumps(info))
    assert evaluate_run(tmp_path / "run", figure=False, progress=False)["image"]["images"] == 6


def test_photo_sizes_are_checked_before_any_photo_is_hashed(
    parts: Path, tmp_path: Path, tiny_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # hashing reads every byte (minutes on a large category): a photo of another size, which its header
    # tells, was refused only after every photo had been hashed (135ef1d)
    fit_run(parts.parent, "part", tmp_path / "run", config=tiny_config, progress=False)
    cv2.imwrite(str(parts / "test" / "good" / "000.png"), np.zeros((64, 100, 3), np.uint8))
    cv2.imwrite(str(parts / "train" / "good" / "000.png"), np.zeros((64, 100, 3), np.uint8))
    monkeypatch.setattr("anomaly.data.sha256_file", lambda *a, **k: pytest.fail("hashed before the sizes"))
    with pytest.raises(UserError, match="the images to fit on differ in size"):
        fit_run(parts.parent, "part", tmp_path / "refit", config=tiny_config, progress=False)
    with pytest.raises(UserError, match="000.png"):
        evaluate_run(tmp_path / "run", progress=False, figure=False)


@pytest.mark.parametrize(("image_size", "warned"), [(64, False), (80, False), (96, True), (256, True)])
def test_an_image_size_that_enlarges_the_fit_photos_is_warned_of(
    tmp_path: Path, tiny_config: dict, capsys, image_size: int, warned: bool
) -> None:
    # image_size=512 on 100-px photos enlarged them 5x without a word: no detail added, 26x the patches
    parts = make_parts(tmp_path / "data", n_train=10)  # 64 x 64 photos; ten: no few-photos warning
    config = {**tiny_config, "image_size": image_size}
    fit_run(parts.parent, "part", tmp_path / "run", config=config, progress=False)
    err = capsys.readouterr().err
    if not warned:
        assert err == ""
        return
    scale = image_size / 64
    assert err == (
        f"warning: image_size {image_size} is {scale:.1f}x the fit photos' size (64x64): each photo is "
        f"enlarged to {image_size}x{image_size}, which adds no detail, and the fit and every score take "
        f"{scale * scale:.0f}x the patches; image_size=64 keeps the photos at about their size\n"
    )


def test_a_word_for_an_integer_key_is_named_as_its_option(tmp_path: Path) -> None:
    # fit_run merges a Python dict: 'needs a number' for image_size, which takes a multiple of 16
    with pytest.raises(UserError) as error:
        anomaly.run.fit_run(tmp_path, "part", tmp_path / "run", config={"image_size": "big"}, progress=False)
    assert str(error.value) == (
        "config key 'image_size' needs an integer in [32, 2048], a multiple of 16, got 'big'"
    )


def test_photos_below_the_smallest_image_size_are_not_told_to_take_the_image_size_given(
    tmp_path: Path, tiny_config: dict, capsys
) -> None:
    # 8 x 8 photos at image_size=32: "image_size=32 keeps the photos at about their size", the value given
    folder = tmp_path / "data" / "part" / "train" / "good"
    folder.mkdir(parents=True)
    for i in range(10):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((8, 8, 3), 100 + i, np.uint8))
    config = {**tiny_config, "image_size": 32}
    fit_run(tmp_path / "data", "part", tmp_path / "run", config=config, progress=False)
    assert capsys.readouterr().err == (
        "warning: image_size 32 is 4.0x the fit photos' size (8x8): each photo is enlarged to 32x32, which "
        "adds no detail, and 32 is the smallest image_size: fit on larger photos where you have them\n"
    )
