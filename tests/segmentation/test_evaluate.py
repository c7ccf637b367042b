"""Tests for segmentation.evaluate: scoring a split, the side-by-side table, overlays, devices, CLI errors."""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from common.errors import UserError
from common.extras import package_versions
from common.trained_images import record_trained_images
from segmentation.colour_head import ColourHead
from segmentation.data import load_split
from segmentation.evaluate import (
    ModelEvaluation,
    embed_for_models,
    evaluate_model,
    format_table,
    main,
    overlay,
    overlay_counts,
    overlays_note,
    predict_image,
    resolve_device,
    save_overlays,
    scoring_notes,
)
from segmentation.finetuned import DECODER_FORMAT
from segmentation.metrics import Summary
from tests.conftest import interrupting


def test_scores_cover_every_defect_image_and_class(tiny_sam, val_setup):
    split, embeddings = val_setup
    with torch.inference_mode():
        result = evaluate_model(tiny_sam, split, embeddings, name="tiny", progress=False)
    defect_images = [im for im in split.images if not im.is_background]
    assert [s.image_id for s in result.scores] == [im.image_id for im in defect_images]
    present = {split.categories[a["category_id"]] for im in defect_images for a in im.annotations}
    assert set(result.summary.iou) == present | {"all"}
    assert result.summary.n_images["all"] == len(defect_images)
    for value in [*result.summary.iou.values(), *result.summary.dice.values(), result.summary.mask_ap["all"]]:
        assert 0.0 <= value <= 1.0


def test_predictions_are_one_mask_per_ground_truth_box(tiny_sam, val_setup):
    split, embeddings = val_setup
    image, embedding = next((im, e) for im, e in zip(split.images, embeddings, strict=True) if im.annotations)
    with torch.inference_mode():
        masks, scores = predict_image(tiny_sam, image, embedding)
    assert masks.shape == (len(image.annotations), image.height, image.width) and masks.dtype == bool
    assert scores.shape == (len(image.annotations),)


def test_table_has_a_column_block_per_model(tiny_sam, val_setup):
    split, embeddings = val_setup
    with torch.inference_mode():
        a = evaluate_model(tiny_sam, split, embeddings, name="zero-shot", progress=False)
        b = evaluate_model(tiny_sam, split, embeddings, name="fine-tuned", progress=False)
    table = format_table([a, b]).splitlines()
    assert "zero-shot IoU" in table[0] and "fine-tuned mask AP" in table[0]
    assert table[2].startswith("| all |")
    assert len(table) == 2 + len(a.summary.iou)
    cells = table[2].split("|")[3:-1]
    assert len(cells) == 12
    assert float(cells[0]) == pytest.approx(a.summary.iou["all"], abs=5e-4)
    assert "zero-shot bIoU" in table[0]
    assert float(cells[2]) == pytest.approx(a.summary.boundary_iou["all"], abs=5e-4)
    assert not any(math.isnan(float(c)) for c in cells if c.strip() != "-")


def test_table_puts_all_first_and_marks_missing_values():
    values = {"all": 0.5, "Bent": 0.4, "cut": float("nan")}
    summary = Summary(
        values, values, values, values, {"all": 0.3}, {"all": 0.6}, {"all": 2, "Bent": 1, "cut": 1}
    )
    table = format_table([ModelEvaluation("m", summary, [])]).splitlines()
    assert table[2:] == [
        "| all | 2 | 0.500 | 0.500 | 0.500 | 0.500 | 0.300 | 0.600 |",
        "| Bent | 1 | 0.400 | 0.400 | 0.400 | 0.400 | - | - |",
        "| cut | 1 | - | - | - | - | - | - |",
    ]


def test_a_class_name_holding_a_bar_keeps_its_row_in_one_cell():
    # a COCO file of another tool's class "crack | deep": the row gained a column, each figure under the
    # header of the one before it
    values = {"all": 0.5, "crack | deep": 0.4}
    summary = Summary(values, values, values, values, values, values, {"all": 1, "crack | deep": 1})
    table = format_table([ModelEvaluation("m", summary, [])]).splitlines()
    assert table[3] == "| crack \\| deep | 1 | 0.400 | 0.400 | 0.400 | 0.400 | 0.400 | 0.400 |"


def test_mask_ap_ranks_each_mask_by_its_predicted_iou(tiny_sam, val_setup, monkeypatch):
    import segmentation.evaluate as evaluate

    split, embeddings = val_setup
    seen = []
    monkeypatch.setattr(evaluate, "coco_mask_ap", lambda path, detections: seen.extend(detections) or {})
    with torch.inference_mode():
        evaluate_model(tiny_sam, split, embeddings, name="tiny", progress=False)
        expected = [
            float(score)
            for image, embedding in zip(split.images, embeddings, strict=True)
            if not image.is_background
            for score in predict_image(tiny_sam, image, embedding)[1]
        ]
    assert [d["score"] for d in seen] == pytest.approx(expected)
    assert len(set(expected)) > 1


def test_overlays_are_written_for_the_worst_and_best_images(tiny_sam, val_setup, tmp_path):
    split, embeddings = val_setup
    # an earlier evaluation into the same folder (more overlays, other images): none of it may stay
    (tmp_path / "o").mkdir()
    for name in ("worst_3_other.png", "best_0_other.png"):
        (tmp_path / "o" / name).write_bytes(b"png of another evaluation")
    with torch.inference_mode():
        result = evaluate_model(tiny_sam, split, embeddings, name="tiny", progress=False)
        by_id = {im.image_id: e for im, e in zip(split.images, embeddings, strict=True)}
        written = save_overlays(
            [("a", tiny_sam), ("b", tiny_sam)], result, split, [by_id] * 2, tmp_path / "o", n=1
        )
    assert [p.name.split("_")[0] for p in written] == ["worst", "best"]
    assert sorted((tmp_path / "o").iterdir()) == sorted(written)
    image = cv2.imread(str(written[0]))
    assert image.shape[1] == 2 * split.images[0].width  # one panel per model
    assert np.any(image[..., 1] == 255)  # green ground-truth outline drawn


def test_overlays_of_a_split_smaller_than_n_are_numbered_from_the_best_and_the_worst(
    tiny_sam, val_setup, tmp_path
):
    split, embeddings = val_setup
    with torch.inference_mode():
        result = evaluate_model(tiny_sam, split, embeddings, name="tiny", progress=False)
        by_id = {im.image_id: e for im, e in zip(split.images, embeddings, strict=True)}
        n = len(result.scores) + 2  # more overlays asked for than there are defect images
        written = save_overlays([("a", tiny_sam)], result, split, [by_id], tmp_path / "o", n=n)
    stems = {im.image_id: im.path.stem for im in split.images}
    ordered = sorted(result.scores, key=lambda s: s.iou)
    k = len(ordered)
    # every image once, as a best one (was best_{k % n}, ...; then each image a second time as a worst one)
    assert sorted(p.name for p in written) == sorted(
        f"best_{i}_{stems[s.image_id]}.png" for i, s in enumerate(ordered[::-1])
    )
    assert {p.name.split("_")[1] for p in written} == {str(i) for i in range(k)}


def test_overlays_of_a_split_under_twice_n_draw_each_photo_once(tiny_sam, val_setup, tmp_path):
    # the same photos appeared as both best_ and worst_ overlays: the worst take the images left over
    split, embeddings = val_setup
    with torch.inference_mode():
        result = evaluate_model(tiny_sam, split, embeddings, name="tiny", progress=False)
        by_id = {im.image_id: e for im, e in zip(split.images, embeddings, strict=True)}
        k = len(result.scores)
        n = k // 2 + 1  # 2n > k >= n
        written = save_overlays([("a", tiny_sam)], result, split, [by_id], tmp_path / "o", n=n)
    kinds = [p.name.split("_")[0] for p in written]
    assert kinds == ["worst"] * (k - n) + ["best"] * n
    photos = [p.name.split("_", 2)[2] for p in written]
    assert sorted(photos) == sorted(f"{im.path.stem}.png" for im in split.images if not im.is_background)


def test_an_overlay_title_outside_ascii_is_drawn_as_itself():
    # the title went through OpenCV's Hershey font, which drew a model named 'μοντέλο' as '???????'
    image = np.zeros((40, 160, 3), np.uint8)
    mask = np.zeros((40, 160), bool)
    name = "μοντέλο  IoU 0.500"
    for marks in ("???????  IoU 0.500", "??????????????  IoU 0.500"):
        assert not np.array_equal(overlay(image, mask, mask, name), overlay(image, mask, mask, marks))


@pytest.mark.parametrize(
    ("n_images", "n", "counts", "note"),
    [
        (10, 4, (4, 4), None),
        (8, 4, (4, 4), None),
        (8, 0, (0, 0), None),
        (
            5,
            4,
            (1, 4),
            "the split's 5 scored images are drawn once each: 4 best and 1 worst overlays, not 4 "
            "of each (--n-overlays 4)",
        ),  # fmt: skip
        (
            3,
            4,
            (0, 3),
            "the split's 3 scored images are drawn once each: 3 best and 0 worst overlays, not 4 "
            "of each (--n-overlays 4)",
        ),  # fmt: skip
    ],
)
def test_a_split_under_twice_n_images_gets_fewer_worst_overlays_and_a_note(n_images, n, counts, note):
    assert overlay_counts(n_images, n) == counts
    assert overlays_note(n_images, n) == note


def test_a_coco_size_other_than_the_image_is_one_line_not_a_broadcast_error(tiny_dataset, tiny_sam, tmp_path):
    # a photo replaced by one of another size once the split was read (load_split checks the headers)
    split = load_split(tiny_dataset, "val")
    photo = tmp_path / "twice_as_tall.png"
    cv2.imwrite(str(photo), np.zeros((128, 64, 3), np.uint8))
    split.images[0] = replace(split.images[0], path=photo)
    with pytest.raises(UserError, match=r"is 64x128 px, but .*instances_val.json says 64x64"):
        embed_for_models([tiny_sam], split, [], model="tiny", cache_dir=tmp_path / "cache")


def test_cli_refuses_a_data_set_without_annotations(tmp_path, capsys):
    assert main(["--data", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no COCO annotations") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--checkpoint", "{garbage}"], "cannot read checkpoint"),
        (["--checkpoint", "{missing}"], "checkpoint not found"),
        # a run folder used to say 'checkpoint not found'
        (["--checkpoint", "{run}"], "checkpoint {run} is a folder, not a file: pass {run}/decoder.pt\n"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--n-overlays", "-1"], "--n-overlays must be 0 or more, got -1"),
        (["--tta", "--crop-fraction", "0.2"], "--tta and --crop-fraction do not combine"),
        (["--folds", "3", "--no-colour-head"], "drop --no-colour-head"),
        (
            ["--folds", "3", "--no-colour-prompt"],
            "--folds trains a colour prompt only with --set colour_prompt=true: drop --no-colour-prompt\n",
        ),
        (
            ["--colour-prompt", "--no-colour-prompt"],
            "--colour-prompt and --no-colour-prompt contradict each other: drop one of them\n",
        ),
        # zero-shot SAM has no colour head: the flag was accepted and changed nothing
        (
            ["--no-colour-head"],
            "--no-colour-head leaves out a fine-tuned decoder's colour head: it applies only "
            "with --checkpoint (zero-shot SAM has none)\n",
        ),
        (
            ["--no-colour-prompt"],
            "--no-colour-prompt leaves out a fine-tuned decoder's colour prompt: it applies only "
            "with --checkpoint (zero-shot SAM has none)\n",
        ),
        # without a fine-tuned model to compare, the flag was accepted and zero-shot scored alone
        (
            ["--compare-zero-shot"],
            "--compare-zero-shot scores the untuned model beside a fine-tuned one: it applies only with "
            "--checkpoint (without one, the zero-shot model is what is scored)\n",
        ),
        (["--folds", "3", "--fold-seed", "-1"], "--fold-seed must be an integer >= 0, got -1"),
        # ignored without a word: each round scored its test fold, and no overlay was drawn
        (
            ["--folds", "3", "--split", "val"],
            "--folds scores each round on its test fold of the pooled splits: drop --split val\n",
        ),
        (
            ["--folds", "3", "--n-overlays", "8"],
            "--folds draws no overlays (folds.png plots every test image): drop --n-overlays 8\n",
        ),
        # the rounds embedded in batches of the config's embed_batch_size, and scored zero-shot anyway
        (
            ["--folds", "3", "--batch-size", "8"],
            "--folds embeds in batches of the config's embed_batch_size: pass --set embed_batch_size=8 "
            "instead of --batch-size 8\n",
        ),
        # the defaults' value given passed without a word, and was ignored all the same
        (
            ["--folds", "3", "--n-overlays", "4"],
            "--folds draws no overlays (folds.png plots every test image): drop --n-overlays 4\n",
        ),
        (
            ["--folds", "3", "--batch-size", "4"],
            "--folds embeds in batches of the config's embed_batch_size: pass --set embed_batch_size=4 "
            "instead of --batch-size 4\n",
        ),
        (
            ["--folds", "3", "--split", "test"],
            "--folds scores each round on its test fold of the pooled splits: drop --split test\n",
        ),
        (
            ["--folds", "3", "--compare-zero-shot"],
            "--folds scores zero-shot SAM beside the fine-tuned decoder in every round: drop "
            "--compare-zero-shot\n",
        ),
        (["--set", "epochs=1"], "apply only with --folds"),  # not silently ignored
        (["--config", "{garbage}"], "apply only with --folds"),
        (["--folds", "0", "--set", "epochs=1"], "apply only with --folds K (K >= 3; 0, the default, is off)"),
        (["--device", "gpu"], "unknown device 'gpu'"),
        # detection's first GPU: it said "unknown device '0'", not how to write it here
        (
            ["--device", "0"],
            "error: --device takes a device name, not the number 0: write cuda:0 for that GPU, or use auto, "
            "cpu, cuda, cuda:N or mps\n",
        ),
        (
            ["--folds", "3", "--device", "1"],
            "config key 'device' takes a device name, not the number 1: write ",
        ),
        (["--out", "{garbage}"], "is a file"),
        # not a mkdir traceback:
        (["--out", "{garbage}/sub"], "cannot create folder {garbage}/sub: {garbage} is a file"),
        (["--cache-dir", "{garbage}"], "--cache-dir {garbage} is a file"),  # not NotADirectoryError
        # the cache made there at the first photo: a re-run refused --out as holding other files
        (
            ["--cache-dir", "{out}/cache"],
            "--cache-dir {out}/cache is inside --out {out}, which holds this run's results alone (a re-run "
            "replaces it whole)",
        ),
        # a bad flag value: one line, not argparse's usage block
        (["--split", "foo"], "argument --split: invalid choice: 'foo'"),
        # an evaluation inside the data set was in the way of its re-conversion with --overwrite
        (["--out", "{data}/eval"], "is inside the input tree"),
        # the converter's data.yaml names its folder; another YAML file is no data set
        (["--data", "{yaml}"], "--data {yaml} is a YAML file, not a data set folder the converters wrote"),
    ],
)
def test_cli_bad_inputs_are_one_line_and_write_nothing(tiny_dataset, tmp_path, capsys, argv, message):
    garbage = tmp_path / "decoder.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 8)
    run = tmp_path / "runs" / "sam" / "run"
    run.mkdir(parents=True)
    (run / "decoder.pt").write_bytes(b"")
    (tmp_path / "config.yaml").write_text("epochs: 1\n")
    paths = {"garbage": garbage, "missing": tmp_path / "missing.pt", "data": tiny_dataset, "run": run}
    paths["yaml"], paths["out"] = tmp_path / "config.yaml", tmp_path / "eval"
    argv = [arg.format(**paths) for arg in argv]
    message = message.format(**paths)
    out = tmp_path / "eval"
    before = sorted(tmp_path.rglob("*"))
    assert main(["--data", str(tiny_dataset), "--out", str(out), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    ("flag", "value"), [("--n-overlays", "4"), ("--batch-size", "4"), ("--split", "test")]
)
def test_folds_refuses_a_scoring_flag_given_at_its_default_value_and_a_plain_run_gets_the_default(
    flag, value
):
    # compared with the default: '--folds 3 --n-overlays 4' (or '--split test') passed without a word
    import segmentation.evaluate as evaluate_module

    args = evaluate_module.build_parser().parse_args(["--data", "d", "--folds", "3", flag, value])
    with pytest.raises(UserError, match=f"drop {flag} {value}$|instead of {flag} {value}$"):
        evaluate_module._refuse_flags_folds_ignores(args)
    args = evaluate_module.build_parser().parse_args(["--data", "d"])
    evaluate_module._fill_run_defaults(args)
    assert (args.n_overlays, args.batch_size, args.split) == (4, 4, "test")


@pytest.mark.parametrize(
    "content",
    [
        # a run without a kept head, or without a colour prompt
        {"format": DECODER_FORMAT, "model": "vit_t", "colour_head": None, "colour_prompt": None},
        {"mask_decoder.output_upscaling.0.bias": torch.zeros(2)},  # a full state dict has no place for one
    ],
    ids=["decoder.pt", "sam_finetuned.pth"],
)
@pytest.mark.parametrize(
    ("part", "carrier"),
    [
        ("colour head", "a decoder.pt of a run that kept one does"),
        ("colour prompt", "a decoder.pt of a colour_prompt=true run does"),
    ],
)
def test_no_colour_head_or_prompt_with_a_checkpoint_that_carries_none_is_refused(
    tiny_dataset, tmp_path, capsys, content, part, carrier
):
    # the flag was accepted and changed nothing: the scores read as those of a decoder without its head
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save(content, checkpoint)
    flag = "--no-" + part.replace(" ", "-")
    argv = ["--data", str(tiny_dataset), "--checkpoint", str(checkpoint), flag, "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "eval")]) == 2
    assert capsys.readouterr().err == (
        f"error: {flag} leaves out a fine-tuned decoder's {part}, but {checkpoint} carries "
        f"none ({carrier}): drop {flag}\n"
    )
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("origin", ["drawn", "layout", "made elsewhere"])
def test_a_split_of_good_photos_only_is_refused_naming_it(tiny_dataset, tmp_path, capsys, origin):
    # no defect instance to prompt SAM with: nothing to score; a converted data set was told to give its
    # COCO file annotated images, which converting it again would overwrite
    data = tmp_path / "good_only"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    record = json.loads((data / "splits.json").read_text())
    if origin == "layout":  # --split-from-layout: no seed, ratios nor background_ratio
        (data / "splits.json").write_text(
            json.dumps({k: record[k] for k in ("version", "train", "val", "test")})
        )
    elif origin == "made elsewhere":
        (data / "splits.json").unlink()
    path = data / "annotations" / "instances_test.json"
    coco = json.loads(path.read_text())
    coco["annotations"] = []
    path.write_text(json.dumps(coco))
    assert main(["--data", str(data), "--out", str(tmp_path / "eval"), "--no-progress"]) == 2
    way = {
        "drawn": "convert with more defect images or a larger test fraction (--split TRAIN VAL TEST)",
        "layout": "convert it again drawing a split (--split TRAIN VAL TEST, not --split-from-layout or "
        f"--splits: {data / 'splits.json'} records a split nobody drew), or with defect images in its test "
        "split",
        "made elsewhere": f"give {path} annotated images",
    }[origin]
    assert capsys.readouterr().err == (  # it ended without a next step
        f"error: split 'test' of {data} has no defect images to evaluate (SAM is prompted with each defect's "
        f"box): score another split with --split, or {way}\n"
    )
    assert not (tmp_path / "eval").exists()


def test_resolve_device_refuses_devices_this_machine_lacks(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    # cuda:00 and cuda:01 passed the name check and torch.device raised "Invalid device string", a traceback
    for name in ("gpu", "cuda:", "cuda:x", "CPU", "cpu:0", "", "cuda:00", "cuda:01"):
        with pytest.raises(UserError, match="unknown device"):
            resolve_device(name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(
        UserError,
        match=r"^--device cuda: no CUDA device is visible on this machine \(torch sees none\); pass cpu$",
    ):
        resolve_device("cuda")
    with pytest.raises(UserError, match=r"^config key 'device' \(cuda:1\): no CUDA device is visible"):
        resolve_device("cuda:1", what="config key 'device'")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(
        UserError, match=r"^--device cuda:2: CUDA device 2 asked for, but torch sees 2 here \(0 to 1\)"
    ):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(UserError, match="no MPS backend"):
        resolve_device("mps")


@pytest.mark.parametrize(
    ("device", "said"),
    [
        ("0", "--device takes a device name, not the number 0: write cuda:0 for that GPU, or use "),
        ("-1", "--device takes a device name, not the number -1: use "),
        ("+1", "--device: unknown device '+1': use "),  # not a number detection takes
    ],
)
def test_resolve_device_tells_a_number_the_name_of_its_gpu(device, said):
    # --device 0 (detection's first GPU) said "unknown device '0'", where the config key's device=0 is told
    # to write cuda:0 (segmentation.train_config.check_device): one helper, one wording
    with pytest.raises(UserError) as flag:
        resolve_device(device)
    assert str(flag.value) == f"{said}auto, cpu, cuda, cuda:N or mps"
    with pytest.raises(
        UserError, match=r"^argument 'device' takes a device name, not the number 2: write cuda:2"
    ):
        resolve_device("2", what="argument 'device'")  # inspection's Inspector(device=2)


def test_auto_names_the_cuda_device_as_detection_records_it(monkeypatch):
    """The cascade (``resolve_device``) recorded ``cuda`` where ``detection.predict`` (ultralytics'
    ``select_device``) recorded ``cuda:0`` for the same ``auto`` choice."""
    import ultralytics.utils.torch_utils as torch_utils

    from detection.train_config import chosen_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch_utils, "get_gpu_info", lambda index: "stand-in GPU")
    assert str(resolve_device("auto")) == chosen_device(None) == "cuda:0"
    assert str(resolve_device("cuda")) == "cuda:0"


def test_a_rerun_replaces_an_earlier_evaluation_whole(tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch):
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("zero-shot", tiny_sam)], "tiny")
    )
    out = tmp_path / "eval"
    argv = ["--data", str(tiny_dataset), "--split", "val", "--out", str(out), "--device", "cpu"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--n-overlays", "1", "--no-progress"]
    assert main(argv) == 0
    first = sorted(p.name for p in (out / "overlays").iterdir())
    (out / "overlays" / "worst_9_stale.png").write_bytes(b"an earlier run's")
    assert main(argv) == 0
    # built hidden and renamed into place: no overlay of the earlier run survives, nothing is left beside
    assert sorted(p.name for p in (out / "overlays").iterdir()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "eval"]
    (out / "notes.txt").write_text("the user's")  # not an evaluation folder any more: never replaced
    capsys.readouterr()
    assert main(argv) == 2
    assert "holds other files than an earlier evaluation's" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "the user's"


def test_a_ctrl_c_while_the_cache_fills_says_how_many_images_are_kept(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch
):
    # it printed 'interrupted' alone, as segmentation.embed did: whether the encoded images were lost
    import segmentation.evaluate as evaluate_module
    from segmentation.data import load_split

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("zero-shot", tiny_sam)], "tiny")
    )
    n = len(load_split(tiny_dataset, "val").images)
    forward = tiny_sam.image_encoder.forward
    interrupted_on_third_batch, calls = interrupting(forward, after=2)

    argv = ["--data", str(tiny_dataset), "--split", "val", "--out", str(tmp_path / "eval"), "--device", "cpu"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--batch-size", "1", "--no-progress"]
    with monkeypatch.context() as patch:
        patch.setattr(tiny_sam.image_encoder, "forward", interrupted_on_third_batch)
        assert main(argv) == 130
    (folder,) = [path for path in (tmp_path / "cache").iterdir() if path.is_dir()]
    assert capsys.readouterr().err.splitlines()[-2:] == [
        f"stopped: 2 of {n} images are in the cache {folder} (2 encoded by this run, kept); "
        f"the same command again encodes only the other {n - 2}",
        "interrupted",
    ]
    calls.clear()
    with monkeypatch.context() as patch:
        patch.setattr(tiny_sam.image_encoder, "forward", lambda x: calls.append(1) or forward(x))
        assert main(argv) == 0
    assert len(calls) == n - 2


def test_the_cli_says_when_a_small_split_gets_fewer_worst_overlays(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch
):
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("zero-shot", tiny_sam)], "tiny")
    )
    out = tmp_path / "eval"
    argv = ["--data", str(tiny_dataset), "--split", "val", "--out", str(out), "--device", "cpu"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache"), "--n-overlays", "50", "--no-progress"]) == 0
    k = len(list((out / "overlays").iterdir()))  # every scored image once, each a best one
    assert not list((out / "overlays").glob("worst_*"))
    stdout = capsys.readouterr().out
    assert (
        f"note: the split's {k} scored images are drawn once each: {k} best and 0 worst overlays, not 50 of "
        "each (--n-overlays 50)\n" in stdout
    )
    assert f"metrics, table and {k} overlays" in stdout


def test_a_class_without_instances_in_the_split_is_null_in_strict_metrics_json(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch, strict_json
):
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("zero-shot", tiny_sam)], "tiny")
    )
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data, symlinks=True)
    coco_file = data / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    coco["categories"].append({"id": 9, "name": "crack", "supercategory": "defect"})  # none in val: no AP
    coco_file.write_text(json.dumps(coco))
    out = tmp_path / "eval"
    argv = ["--data", str(data), "--split", "val", "--out", str(out), "--device", "cpu"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache"), "--n-overlays", "0", "--no-progress"]) == 0
    metrics = strict_json(out / "metrics.json")  # it held a bare NaN, which jq and JSON.parse refuse
    results = metrics["results"]["zero-shot"]
    assert results["mask_ap"]["crack"] is None and results["mask_ap50"]["crack"] is None
    assert isinstance(results["mask_ap"]["all"], float)


def test_data_may_name_the_converters_data_yaml(tiny_dataset, tiny_sam, tmp_path, monkeypatch):
    # it was refused ('is a file: pass the data set folder'): users copy the path they trained with
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("zero-shot", tiny_sam)], "tiny")
    )
    monkeypatch.chdir(tmp_path)  # the default --out, named after the data set folder
    argv = ["--split", "val", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(["--data", str(tiny_dataset / "data.yaml"), *argv, "--n-overlays", "0"]) == 0
    out = tmp_path / "runs" / "sam" / f"zero_shot_{tiny_dataset.name}" / "eval_val"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == str(tiny_dataset)  # as recorded when the folder is passed


def test_metrics_json_records_a_relative_checkpoint_absolute(tiny_dataset, tiny_sam, tmp_path, monkeypatch):
    # it recorded --checkpoint as typed beside an absolute data: read from elsewhere it named nothing
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("fine-tuned", tiny_sam)], "tiny")
    )
    monkeypatch.setattr(evaluate_module, "_colour_heads", lambda args: {})
    monkeypatch.setattr(evaluate_module, "_colour_prompts", lambda args: {})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "decoder.pt").write_bytes(b"its decoder")
    monkeypatch.chdir(tmp_path)
    argv = ["--data", str(tiny_dataset), "--split", "val", "--checkpoint", "run/decoder.pt", "--out", "eval"]
    argv += ["--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--n-overlays", "0", "--no-progress"]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["checkpoint"] == str(tmp_path / "run" / "decoder.pt")


@pytest.mark.parametrize("base", [None, "base.pth"], ids=["official", "given"])
def test_metrics_json_records_the_base_checkpoint_absolute(
    tiny_dataset, tiny_sam, tmp_path, monkeypatch, base
):
    # --base-checkpoint was not recorded: a reader could not tell which SAM weights were scored
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("zero-shot", tiny_sam)], "tiny")
    )
    monkeypatch.chdir(tmp_path)
    argv = ["--data", str(tiny_dataset), "--split", "val", "--out", "eval", "--device", "cpu"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--n-overlays", "0", "--no-progress"]
    assert main(argv + (["--base-checkpoint", base] if base else [])) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["base_checkpoint"] == (str(tmp_path / base) if base else None)


@pytest.mark.parametrize("fraction", [0.0, 0.5])
def test_metrics_json_records_the_crop_fraction(tiny_dataset, tiny_sam, tmp_path, monkeypatch, fraction):
    # it recorded --tta but not --crop-fraction: a run with zoomed crops read like one without
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("zero-shot", tiny_sam)], "tiny")
    )
    argv = ["--data", str(tiny_dataset), "--split", "val", "--out", str(tmp_path / "eval"), "--device", "cpu"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--n-overlays", "0", "--no-progress"]
    assert main([*argv, "--crop-fraction", str(fraction)]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["crop_fraction"] == fraction
    # and table.md says so under the table: it read like a run without crops
    crops = "- every model: boxes under 0.5 of the long side decoded on zoomed crops"
    assert ((tmp_path / "eval" / "table.md").read_text().endswith(f"|\n\n{crops}\n")) == bool(fraction)


def test_table_notes_name_the_colour_head_and_the_flips() -> None:
    # a fine-tuned column refined by its colour head, or both models scored with flips, read as plain ones
    head = ColourHead(weights=(1.0, 0.1, 0.0))
    notes = scoring_notes(tta=True, crop_fraction=0.0, colour_head=head)
    assert notes == [
        "fine-tuned: its colour head refines the logits on the photo's colours (colour_head)",
        "every model: logits averaged over the photo and its flips (--tta)",
    ]
    assert scoring_notes(tta=False, crop_fraction=0.0, colour_head=None) == []


def test_table_notes_name_what_the_decoder_carries_and_was_left_out() -> None:
    # with --no-colour-head / --no-colour-prompt the table read like that of a decoder trained without them
    notes = scoring_notes(
        tta=False, crop_fraction=0.0, colour_head=None, left_out=["--no-colour-head", "--no-colour-prompt"]
    )
    assert notes == [
        "fine-tuned: scored without the colour head its decoder.pt carries (--no-colour-head)",
        "fine-tuned: scored without the colour prompt its decoder.pt carries (--no-colour-prompt)",
    ]


def test_a_split_holding_photos_the_decoder_was_trained_on_is_warned_of(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch
) -> None:
    import segmentation.evaluate as evaluate_module

    models = [("fine-tuned", tiny_sam)]
    monkeypatch.setattr(evaluate_module, "_load_models", lambda args, device: (models, "tiny"))
    monkeypatch.setattr(evaluate_module, "_colour_heads", lambda args: {})
    monkeypatch.setattr(evaluate_module, "_colour_prompts", lambda args: {})
    run = tmp_path / "run"
    run.mkdir()
    (run / "decoder.pt").write_bytes(b"its decoder")
    val = sorted((tiny_dataset / "images" / "val").iterdir())
    record_trained_images(run, sorted((tiny_dataset / "images" / "train").iterdir()))
    argv = ["--data", str(tiny_dataset), "--split", "val", "--checkpoint", str(run / "decoder.pt")]
    argv += ["--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--n-overlays", "0", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "eval")]) == 0
    assert "trained on" not in capsys.readouterr().err
    record_trained_images(run, val[:2])  # as if the data set had been converted again since
    assert main([*argv, "--out", str(tmp_path / "eval-2")]) == 0
    warning = f"warning: 2 of the {len(val)} val photos ({val[0].name}, ...) are photos the decoder was"
    assert warning in capsys.readouterr().err


def test_the_default_out_is_never_inside_the_weights_cache(tmp_path: Path, monkeypatch) -> None:
    from segmentation.evaluate import _default_out, build_parser

    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))

    def default(*args: str) -> Path:
        return _default_out(build_parser().parse_args(["--data", "datasets/metal_nut", *args]))

    assert default("--checkpoint", "runs/sam/a/decoder.pt") == Path("runs/sam/a/eval_test")  # a run's own
    cached = tmp_path / "cache" / "weights" / "mobile_sam.pt"  # was: <cache>/weights/eval_val
    assert default("--checkpoint", str(cached), "--split", "val") == Path("runs/sam/mobile_sam/eval_val")
    assert default() == Path("runs/sam/zero_shot_metal_nut/eval_test")


def test_every_set_flag_reaches_the_folds_training() -> None:
    # `--set epochs=1 --set colour_head=true` trained the rounds with the config's 10 epochs and no head:
    # argparse kept the last --set alone
    from segmentation.evaluate import _folds_overrides, build_parser

    argv = ["--data", "d", "--folds", "3", "--set", "epochs=1", "--set", "colour_head=true", "seed=2"]
    overrides, flags = _folds_overrides(build_parser().parse_args(argv))
    assert {"epochs=1", "colour_head=true", "seed=2"} <= set(overrides)
    assert flags == {"data='d'": "--data d", "device=auto": "--device auto"}  # named so in an error


def test_a_bad_device_with_folds_is_named_by_its_flag(tmp_path, capsys) -> None:
    # --folds hands --device to the rounds' training config as device=gpu, an override nobody typed
    argv = ["--data", str(tmp_path / "d"), "--folds", "3", "--device", "gpu", "--out", str(tmp_path / "f")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    names = "use auto, cpu, cuda, cuda:N or mps"
    assert err == f"error: --device gpu: config key 'device': unknown device 'gpu': {names}\n"


def test_help_gives_each_default_once_and_the_split_its_own_help() -> None:
    from segmentation.evaluate import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "(default: None)" not in text and "split to score (default: test)" in text
    assert "(default: [])" not in text and "with --folds: train overrides --no-progress" in text


def test_a_quoted_tilde_in_out_and_cache_dir_is_the_home_folder(tmp_path, monkeypatch) -> None:
    # --out '~/e' wrote into a folder named '~' in the working folder, unlike out: ~/e in a training config
    from segmentation.evaluate import build_parser

    monkeypatch.setenv("HOME", str(tmp_path))
    args = build_parser().parse_args(["--data", "d", "--out", "~/e", "--cache-dir", "~/c"])
    assert (args.out, args.cache_dir) == (tmp_path / "e", tmp_path / "c")
    assert "$MVTEC_FINETUNE_CACHE/embeddings" in " ".join(build_parser().format_help().split())


def test_missing_official_weights_for_zero_shot_name_the_base_checkpoint_flag(tmp_path, monkeypatch):
    # segmentation.evaluate's --checkpoint is the tuned decoder: the base weights are --base-checkpoint
    import argparse
    import urllib.request

    from common.weights import CheckpointError
    from segmentation.evaluate import _load_models

    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    args = argparse.Namespace(model="vit_b", checkpoint=None, base_checkpoint=None, compare_zero_shot=False)
    with pytest.raises(CheckpointError) as error:
        _load_models(args, torch.device("cpu"))
    assert str(error.value).endswith(
        f"pass --base-checkpoint PATH or put it in {tmp_path / 'cache' / 'weights'}"
    )


def test_a_ctrl_c_with_an_earlier_evaluation_in_out_says_it_is_the_earlier_ones(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch
):
    # it printed 'interrupted' alone: the earlier metrics.json, left whole, read as this run's
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("zero-shot", tiny_sam)], "tiny")
    )
    out = tmp_path / "eval"
    argv = ["--data", str(tiny_dataset), "--split", "val", "--out", str(out), "--device", "cpu"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(argv) == 0
    before = (out / "metrics.json").read_bytes()
    capsys.readouterr()

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate_module, "save_overlays", stop)
    assert main(argv) == 130
    assert capsys.readouterr().err.splitlines()[-2:] == [
        f"stopped: {out} is replaced only once the evaluation is complete, so nothing of this run was kept "
        "there; what it holds is an earlier run's",
        "interrupted",
    ]
    assert (out / "metrics.json").read_bytes() == before


@pytest.mark.parametrize("quiet", [False, True])
def test_the_trained_photo_check_has_a_bar_unless_no_progress(tiny_dataset, tmp_path, monkeypatch, quiet):
    # every byte of the split is hashed before the first model loads: minutes without a word
    from segmentation import evaluate

    seen = []

    def check(*args, **kwargs):
        seen.append(kwargs.get("progress", False))
        raise KeyboardInterrupt  # stop before any model loads

    monkeypatch.setattr(evaluate, "trained_overlap_warning", check)
    argv = [
        "--data",
        str(tiny_dataset),
        "--out",
        str(tmp_path / "out"),
        *(["--no-progress"] if quiet else []),
    ]
    assert evaluate.main(argv) == 130
    assert seen == [not quiet]


def test_help_says_a_full_state_dict_needs_model(capsys):
    # it said 'read from decoder.pt, else vit_t', but a sam_finetuned.pth without --model is refused
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "needed for a full state dict (sam_finetuned.pth); without --checkpoint: vit_t" in text


def test_help_gives_the_folds_default_out(capsys):
    # --out's help gave the plain evaluation's defaults alone; a --folds run goes to runs/sam/folds_<data>
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "runs/sam/<its name>/eval_<split>; with --folds runs/sam/folds_<data>)" in text


def test_a_cache_dir_inside_the_data_set_is_refused(tiny_dataset, tmp_path, capsys, monkeypatch):
    # the cache was written into the data set, in the way of its re-conversion (an --out there is refused)
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "_load_models", lambda *a, **k: pytest.fail("a model was loaded"))
    argv = ["--data", str(tiny_dataset), "--out", str(tmp_path / "eval"), "--no-progress"]
    assert main([*argv, "--cache-dir", str(tiny_dataset / "cache")]) == 2
    assert "is inside the input tree" in capsys.readouterr().err and not (tiny_dataset / "cache").exists()


def test_a_crowd_is_refused_before_any_model_loads(tiny_dataset, tmp_path, capsys, monkeypatch):
    # COCOeval ignored it for mask AP, while it was prompted and counted in IoU, Dice and instance IoU
    import segmentation.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "_load_models", lambda *a, **k: pytest.fail("a model was loaded"))
    data = json.loads((tiny_dataset / "annotations" / "instances_test.json").read_text())
    data["annotations"][0]["iscrowd"] = 1
    (tmp_path / "data" / "annotations").mkdir(parents=True)
    (tmp_path / "data" / "annotations" / "instances_test.json").write_text(json.dumps(data))
    (tmp_path / "data" / "images").symlink_to(tiny_dataset / "images")
    argv = ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "eval"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: annotation ") and err.count("\n") == 1 and "has iscrowd 1: a crowd" in err
    assert not (tmp_path / "eval").exists()


def test_folds_refuse_a_set_without_a_value(tiny_dataset, tmp_path, capsys) -> None:
    # --set goes through the same overrides as segmentation.train: `--set cache_dir=` is not null
    from segmentation.evaluate import main

    argv = ["--data", str(tiny_dataset), "--folds", "3", "--out", str(tmp_path / "folds")]
    argv += ["--set", "cache_dir="]
    assert main(argv) == 2
    assert "override 'cache_dir=' has no value" in capsys.readouterr().err
    assert not (tmp_path / "folds").exists()


@pytest.mark.parametrize(
    ("more", "refusal"),
    [
        (["--batch-size", "0"], "error: --batch-size must be at least 1, got 0"),
        (["--set", "epochs=many"], "error: override 'epochs=many'"),
        (["--tta", "--set", "crops.max_fraction=0.2"], "and --tta do not combine"),
    ],
    ids=["an argument", "the config", "tta with crops"],
)
def test_a_killed_folds_runs_hidden_folder_is_shown_before_an_early_refusal(
    tiny_dataset, tmp_path, capsys, more, refusal
) -> None:
    # shown only by cross_validate, after these refusals: the command refused said nothing of it
    import subprocess
    import sys

    from common.io import temporary_path

    out = tmp_path / "folds"
    process = subprocess.Popen([sys.executable, "-c", "pass"])  # a pid that is gone: the run was killed
    process.wait()
    hidden = temporary_path(tmp_path / "folds.earlier").with_suffix("")
    hidden = hidden.with_name(hidden.name.replace(f"-{os.getpid()}-", f"-{process.pid}-"))
    (hidden / "runs").mkdir(parents=True)
    argv = ["--data", str(tiny_dataset), "--folds", "3", "--out", str(out), "--no-progress", *more]
    assert main(argv) == 2
    (shown,) = tmp_path.glob("folds.earlier-*")
    assert (shown / "runs").is_dir() and not hidden.exists()
    err = capsys.readouterr().err
    assert f"note: {shown} holds an earlier --folds run of {out}" in err and refusal in err, err


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            ["colour_head=true", "crops.max_fraction=0.2"],
            "error: override 'colour_head=true': config key 'colour_head' (true) works on whole-photo logits",
        ),
        (
            ["loss.focal_weight=0", "loss.dice_weight=0", "loss.iou_weight=0"],
            "error: override 'loss.iou_weight=0': config key 'loss': focal_weight, dice_weight and "
            "iou_weight are all 0: the loss would be 0",
        ),
    ],
)
def test_folds_refuse_settings_that_do_not_go_together_before_an_earlier_run_is_removed(
    tiny_dataset, tmp_path, capsys, settings, message
) -> None:
    # round 0's training refused them, once the earlier run in --out had been removed
    from segmentation.evaluate import main
    from segmentation.folds import write_plan

    out = tmp_path / "folds"
    write_plan(out, 3, 0)
    (out / "folds.json").write_text("{}")
    argv = ["--data", str(tiny_dataset), "--folds", "3", "--out", str(out), "--no-progress"]
    for setting in settings:
        argv += ["--set", setting]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert sorted(path.name for path in out.iterdir()) == ["folds.json", "folds_plan.json"]


@pytest.mark.parametrize(
    ("carried", "extra", "left"),
    [
        ("head", [], "the colour head of its run"),
        ("prompt", [], "the colour prompt of its run"),
        ("both", [], "the colour prompt and the colour head of its run"),
        ("both", ["--colour-prompt"], "the colour head of its run"),  # the same maps: not left behind
        ("prompt", ["--colour-prompt"], None),
    ],
)
def test_a_full_state_dict_beside_a_decoder_with_colour_parts_is_noted_before_any_model_loads(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch, carried, extra, left
) -> None:
    # sam_finetuned.pth was scored without the colour parts the run's own evaluation applied, silently
    import segmentation.evaluate as evaluate_module
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.finetuned import save_decoder, save_full

    seen = []

    def stop(args, device):  # what was said before the models load; the scores are not the point
        seen.append(capsys.readouterr().err)
        raise UserError("stopped before the models")

    monkeypatch.setattr(evaluate_module, "_load_models", stop)
    head = ColourHead((1.0, 0.1, 0.0)) if carried != "prompt" else None
    prompt = ColourPrompt() if carried != "head" else None
    run = tmp_path / "run"
    decoder = save_decoder(
        tiny_sam, run / "decoder.pt", model="vit_t", colour_head=head, colour_prompt=prompt
    )
    full = save_full(tiny_sam, run / "sam_finetuned.pth")
    argv = ["--data", str(tiny_dataset), "--split", "val", "--out", str(tmp_path / "eval"), "--no-progress"]
    assert main([*argv, "--checkpoint", str(full), "--model", "vit_t", *extra]) == 2
    notes = [line for line in seen[0].splitlines() if line.startswith("note:")]
    if left is None:
        assert notes == []
    else:
        assert len(notes) == 1 and notes[0].startswith(f"note: sam_finetuned.pth has no place for {left}")
        assert notes[0].endswith(
            f"pass --checkpoint {decoder} to apply " + ("them" if " and " in left else "it")
        )
    assert main([*argv, "--checkpoint", str(decoder), *extra]) == 2  # the decoder.pt applies them: no note
    assert "note:" not in seen[1]


def test_a_colour_decoder_on_grey_photos_is_warned_about_before_any_model_loads(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch
) -> None:
    # a decoder.pt with a colour prompt scored grey photos without a word: its maps read nothing there
    import shutil

    import cv2

    import segmentation.evaluate as evaluate_module
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.finetuned import save_decoder

    seen = []

    def stop(args, device):
        seen.append(capsys.readouterr().err)
        raise UserError("stopped before the models")

    monkeypatch.setattr(evaluate_module, "_load_models", stop)
    grey = Path(shutil.copytree(tiny_dataset, tmp_path / "grey", symlinks=False))
    for photo in (grey / "images").rglob("*.png"):
        assert cv2.imwrite(str(photo), cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2GRAY))
    decoder = save_decoder(
        tiny_sam, tmp_path / "run" / "decoder.pt", model="vit_t", colour_prompt=ColourPrompt()
    )
    plain = save_decoder(tiny_sam, tmp_path / "plain" / "decoder.pt", model="vit_t")
    argv = ["--split", "val", "--out", str(tmp_path / "eval"), "--no-progress"]
    for data, checkpoint, warned in (
        (grey, decoder, True),
        (tiny_dataset, decoder, False),
        (grey, plain, False),
    ):
        assert main([*argv, "--data", str(data), "--checkpoint", str(checkpoint)]) == 2
        warnings = [line for line in seen[-1].splitlines() if line.startswith("warning:")]
        assert warnings == (
            ["warning: the 3 photos read from the 5 are greyscale, and the decoder's colour prompt reads "
             "colour, which a grey photo does not have: use a decoder trained without it, or pass "
             "--no-colour-prompt"]
            if warned else []
        )  # fmt: skip


@pytest.mark.parametrize(
    ("tuned", "given", "noted"),
    [(0.2, [], True), (0.2, ["--crop-fraction", "0.1"], True), (0.2, ["--crop-fraction", "0.2"], False),
     (0.0, [], False), (0.0, ["--crop-fraction", "0.2"], True), (None, [], False)],
)  # fmt: skip
def test_a_decoder_tuned_with_another_crop_rule_is_noted(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch, tuned, given, noted
) -> None:
    # a decoder tuned on zoomed crops was scored on whole photos (--crop-fraction 0) without a word
    import segmentation.evaluate as evaluate_module
    from segmentation.finetuned import save_decoder

    def stop(args, device):  # what was said before the models load; the scores are not the point
        raise UserError("stopped before the models")

    monkeypatch.setattr(evaluate_module, "_load_models", stop)
    config = {} if tuned is None else {"crops": {"max_fraction": tuned}}  # None: an old decoder.pt's config
    decoder = save_decoder(tiny_sam, tmp_path / "run" / "decoder.pt", model="vit_t", config=config)
    argv = ["--data", str(tiny_dataset), "--split", "val", "--out", str(tmp_path / "eval"), "--no-progress"]
    assert main([*argv, "--checkpoint", str(decoder), *given]) == 2
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    if not noted:
        assert notes == []
        return
    fraction = given[1] if given else "0"
    assert notes == [
        f"note: {decoder} was tuned with crops.max_fraction={tuned:g}, scored here with --crop-fraction "
        f"{fraction}: pass --crop-fraction {tuned:g} to score it as it was tuned"
    ]


def test_the_official_weights_given_as_the_checkpoint_are_noted(
    tmp_path, capsys, monkeypatch, official_vit_t
) -> None:
    # --checkpoint mobile_sam.pt --model vit_t scored SAM's stock weights as 'fine-tuned' without a word
    import argparse

    import segmentation.evaluate as evaluate_module

    official, tuned = official_vit_t, tmp_path / "sam_finetuned.pth"
    tuned.write_bytes(b"weights tuned on a lot")
    monkeypatch.setattr(evaluate_module, "load_finetuned", lambda path, model, **kw: ("sam", model))
    for checkpoint, noted in ((official, True), (tuned, False)):
        args = argparse.Namespace(
            checkpoint=str(checkpoint), model="vit_t", base_checkpoint=None, compare_zero_shot=False
        )
        models, name = evaluate_module._load_models(args, torch.device("cpu"))
        assert models == [("fine-tuned", "sam")] and name == "vit_t"
        notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
        expected = [
            f"note: --checkpoint {official} is SAM's official vit_t weights, not a fine-tune: the model "
            "scored as fine-tuned is zero-shot SAM"
        ]
        assert notes == (expected if noted else [])


@pytest.mark.parametrize("official", [True, False], ids=["official", "tuned"])
def test_metrics_json_and_table_record_official_weights_as_the_checkpoint(
    tiny_dataset, tiny_sam, tmp_path, monkeypatch, official_vit_t, official
) -> None:
    # the note went to stderr only: metrics.json and table.md read like a fine-tune's scores
    import segmentation.evaluate as evaluate_module

    tuned = tmp_path / "sam_finetuned.pth"
    tuned.write_bytes(b"weights tuned on a lot")
    checkpoint = official_vit_t if official else tuned
    monkeypatch.setattr(
        evaluate_module, "_load_models", lambda args, device: ([("fine-tuned", tiny_sam)], "vit_t")
    )
    monkeypatch.setattr(evaluate_module, "_colour_heads", lambda args: {})
    monkeypatch.setattr(evaluate_module, "_colour_prompts", lambda args: {})
    monkeypatch.setattr(evaluate_module, "_note_colour_left_behind", lambda args, prompts: None)
    argv = ["--data", str(tiny_dataset), "--split", "val", "--checkpoint", str(checkpoint)]
    argv += ["--model", "vit_t", "--device", "cpu", "--cache-dir", str(tmp_path / "cache")]
    argv += ["--n-overlays", "0", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["checkpoint"] == str(checkpoint) and metrics["checkpoint_official"] is official
    assert metrics["device"] == "cpu"  # as --device gave it, recorded as the cascade records its
    assert metrics["versions"] == package_versions()  # what its figures depend on (none recorded before)
    note = "- fine-tuned: its --checkpoint is SAM's official weights, so it is zero-shot SAM"
    assert (note in (tmp_path / "eval" / "table.md").read_text().splitlines()) is official
