"""``inspection.options``: the checks and records of the options both commands share."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from common.errors import UserError
from inspection.options import CascadeOptions, add_model_arguments, check_cascade
from segmentation.crops import CropRule


def options(**fields) -> CascadeOptions:
    return CascadeOptions(detector=Path("best.pt"), **fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"imgsz": 31}, "--imgsz must be in [32, 8192] pixels, got 31"),
        ({"imgsz": 100000}, "--imgsz must be in [32, 8192] pixels, got 100000"),  # an OpenCV OOM traceback
        ({"crop_fraction": 1.5}, "--crop-fraction must be in [0, 1], got 1.5"),
        ({"crop_fraction": -0.1}, "--crop-fraction must be in [0, 1], got -0.1"),
        ({"max_det": 0}, "--max-det must be >= 1, got 0"),
        ({"mask_iou": 1.5}, "--mask-iou must be in [0, 1], got 1.5"),
        ({"mask_iou": float("nan")}, "--mask-iou must be in [0, 1], got nan"),
        ({"speck_cells": -1.0}, "--speck-cells must be a number >= 0, got -1.0"),
        ({"speck_cells": float("inf")}, "--speck-cells must be a number >= 0, got inf"),
        ({"runtime": "tensorrt"}, "--runtime must be one of"),
        ({"model": "vit_q"}, "unknown SAM model 'vit_q'"),
    ],
)
def test_out_of_range_options_are_refused(fields, message) -> None:
    with pytest.raises(UserError) as error:
        check_cascade(options(**fields))
    assert str(error.value).startswith(message)


def test_the_smallest_allowed_values_pass() -> None:
    check_cascade(options(imgsz=32, crop_fraction=1.0, max_det=1))


def test_the_largest_imgsz_and_every_max_covered_bound_pass() -> None:
    check_cascade(options(imgsz=8192))
    for covered in (0.0, 1.0):
        check_cascade(options(anomaly_run=Path("run"), anomaly_max_covered=covered))


def test_a_cache_dir_that_is_a_file_is_refused_unless_the_cache_is_off(tmp_path) -> None:
    file = tmp_path / "cache"
    file.write_text("")
    with pytest.raises(UserError, match="--cache-dir .* is a file, not a folder"):
        check_cascade(options(cache_dir=file))
    check_cascade(options(cache_dir=file, no_cache=True))


def test_resolved_options_keep_no_cache_folder_when_the_cache_is_off(tmp_path) -> None:
    assert options(cache_dir=tmp_path, no_cache=True).resolved(model="vit_t", device="cpu").cache_dir is None
    resolved = options(cache_dir=tmp_path).resolved(model="vit_t", device="cpu")
    assert (resolved.cache_dir, resolved.model, resolved.device) == (tmp_path, "vit_t", "cpu")


def test_crops_are_off_at_a_zero_fraction() -> None:
    assert options().crop_rule() is None
    assert options(crop_fraction=0.125).crop_rule() == CropRule(max_fraction=0.125)


def test_the_record_gives_paths_as_absolute_strings(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    record = options(sam=Path("decoder.pt")).record()
    assert record["detector"] == str(tmp_path / "best.pt") and record["sam"] == str(tmp_path / "decoder.pt")
    assert record["conf"] == 0.25 and record["cache_dir"] is None
    # --anomaly-threshold: a number as typed, a metrics.json absolute (it was recorded as typed)
    assert options(anomaly_threshold="0.5").record()["anomaly_threshold"] == "0.5"
    record = options(anomaly_threshold="eval-val/metrics.json").record()
    assert record["anomaly_threshold"] == str(tmp_path / "eval-val" / "metrics.json")
    # without '..': Path.absolute() recorded '/w/h/../shared/...' for a path given from a sibling folder
    (tmp_path / "h").mkdir()
    monkeypatch.chdir(tmp_path / "h")
    given = options(sam=Path("../shared/./decoder.pt"), anomaly_threshold="../eval-val/metrics.json")
    record = given.record()
    assert record["sam"] == str(tmp_path / "shared" / "decoder.pt")
    assert record["anomaly_threshold"] == str(tmp_path / "eval-val" / "metrics.json")


def test_the_anomaly_options_are_checked_before_any_run_is_loaded() -> None:
    with pytest.raises(UserError, match="--anomaly-min-area must be >= 1 pixel, got 0"):
        check_cascade(options(anomaly_min_area=0))  # refused even without --anomaly-run
    check_cascade(options(anomaly_min_area=1, anomaly_run=Path("run")))
    with pytest.raises(UserError, match="--anomaly-min-area needs --anomaly-run"):
        check_cascade(options(anomaly_min_area=1))  # it would be ignored
    with pytest.raises(UserError, match=r"--anomaly-max-covered must be in \[0, 1\], got 1.5"):
        check_cascade(options(anomaly_max_covered=1.5, anomaly_run=Path("run")))  # the run is never read
    with pytest.raises(UserError, match="^--anomaly-threshold needs --anomaly-run$"):
        check_cascade(options(anomaly_threshold="1", anomaly_max_covered=0.5))  # the first flag named


@pytest.mark.parametrize("overlap", [0.5, 0.95, -3.0])
def test_a_tile_overlap_without_tile_is_refused(overlap) -> None:
    # whole photos have no windows: the value was ignored, out of range included (-3 ran silently)
    with pytest.raises(UserError, match="^--tile-overlap needs --tile$"):
        check_cascade(options(tile_overlap=overlap))
    check_cascade(options(tile=64, tile_overlap=0.5))
    check_cascade(options())  # the default 0.2 without --tile


def test_the_smallest_anomaly_region_is_16_pixels_by_default() -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    args = parser.parse_args(["--detector", "best.pt"])
    assert args.anomaly_min_area == options().anomaly_min_area == 16
    assert args.anomaly_max_covered == options().anomaly_max_covered == 1.0  # every region kept
    assert args.anomaly_run is None and args.anomaly_threshold is None


def test_the_inspector_gets_the_mask_iou_and_the_record_gives_it(tiny_sam, stub_detector) -> None:
    from inspection.options import build_inspector
    from segmentation.duplicates import MASK_IOU

    resolved = options(mask_iou=0.4).resolved(model="tiny", device="cpu")
    assert build_inspector(resolved, stub_detector, tiny_sam, keep_probs=False).mask_iou == 0.4
    assert resolved.record()["mask_iou"] == 0.4 and options().mask_iou == MASK_IOU == 0.7


@pytest.mark.parametrize(("missing", "expected"), [([], "onnx"), (["onnxruntime"], "torch")])
def test_the_record_gives_the_runtime_auto_chose(tiny_sam, stub_detector, monkeypatch, missing, expected):
    # args.yaml and metrics.json said "auto", leaving open which runtime made the masks and the timing
    import inspection.inspector
    from inspection.options import build_inspector, run_settings

    monkeypatch.setattr(inspection.inspector, "missing_packages", lambda: missing)
    monkeypatch.setattr(inspection.inspector, "OnnxDecoder", lambda sam: None)  # no export needed here
    resolved = options().resolved(model="tiny", device="cpu")
    inspector = build_inspector(resolved, stub_detector, tiny_sam, keep_probs=False)
    assert resolved.runtime == "auto" and run_settings(resolved, inspector)["runtime"] == expected


@pytest.mark.parametrize("carried", ["colour head", "colour prompt"])
def test_a_full_state_dict_beside_a_decoder_with_a_colour_part_says_it_goes_without(
    tiny_sam, tmp_path, capsys, carried
) -> None:
    # the prompt case said nothing: the decoder, trained on boxes with their colour maps, ran without them
    from inspection.checkpoints import SamCheckpoint
    from inspection.options import colour_head_for, colour_prompt_for
    from segmentation.colour_head import ColourHead
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.finetuned import save_decoder, save_full

    run = tmp_path / "run"  # a segmentation.train run whose decoder.pt carries the part
    run.mkdir()
    part = (
        {"colour_head": ColourHead((2.5, 2.6, -2.7), val_iou=(0.8204, 0.8396))}
        if carried == "colour head"
        else {"colour_prompt": ColourPrompt()}
    )
    save_decoder(tiny_sam, run / "decoder.pt", model="vit_t", **part)
    full = SamCheckpoint("vit_t", save_full(tiny_sam, run / "sam_finetuned.pth"))
    assert colour_head_for(options(), full) is None and colour_prompt_for(options(), full) is None
    err = capsys.readouterr().err
    assert err.startswith(f"note: sam_finetuned.pth has no place for the {carried} of its run")
    assert err.count("note:") == 1  # said once, for both parts
    assert f"which {run / 'decoder.pt'} carries: " in err
    assert err.endswith(f"pass --sam {run / 'decoder.pt'} to apply it\n")
    flag = "--no-" + carried.replace(" ", "-")
    keyword = {flag.removeprefix("--").replace("-", "_"): True}
    with pytest.raises(UserError, match=rf"sam_finetuned.pth carries none .*: drop {flag}$"):
        (colour_head_for if carried == "colour head" else colour_prompt_for)(options(**keyword), full)
    save_decoder(tiny_sam, run / "decoder.pt", model="vit_t")  # a run that kept no head, without a prompt
    assert colour_head_for(options(), full) is None
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["inspection.evaluate", "inspection.predict"])
def test_the_out_help_says_an_empty_folder_is_taken(command: str) -> None:
    # since 095cea8 an empty --out made beforehand is written into; --help still said any was refused
    import importlib

    text = " ".join(importlib.import_module(command).build_parser().format_help().split())
    assert "(refused if it exists, not empty)" in text


@pytest.mark.parametrize("command", ["inspection.evaluate", "inspection.predict"])
def test_the_anomaly_threshold_help_says_a_metrics_threshold_is_raised(command: str) -> None:
    # it said "(default: the run's own evaluation, as anomaly.predict)", while the cascade raises that
    # threshold above the good images' largest map value and anomaly.predict does not
    import importlib

    text = " ".join(importlib.import_module(command).build_parser().format_help().split())
    assert "threshold is raised above the largest map value it saw on a good image" in text
    assert "a number, or an anomaly.evaluate metrics.json or its folder" in text  # eval-val/ is taken


def test_the_anomaly_maps_help_says_which_map_it_writes() -> None:
    # "write anomaly_maps/<name>.png (16-bit)" beside --anomaly-run read as PatchCore's map; it is the
    # cascade's box score x mask probability
    from inspection.predict import build_parser

    text = " ".join(build_parser().format_help().split())
    assert "the highest box score x SAM mask probability (the cascade's, not --anomaly-run's" in text


def test_no_colour_prompt_where_it_changes_nothing_is_refused_naming_the_sam_option() -> None:
    # it was no option: a decoder.pt's prompt was always applied, and refused crops and flips
    from inspection.checkpoints import SamCheckpoint
    from inspection.options import colour_prompt_for

    with pytest.raises(
        UserError, match=r"^--no-colour-prompt .*: it applies only with --sam \(zero-shot SAM has none\)$"
    ):
        colour_prompt_for(options(no_colour_prompt=True), SamCheckpoint("vit_t"))
    full = SamCheckpoint("vit_t", Path("sam_finetuned.pth"))  # no place for the prompt's rule
    with pytest.raises(UserError, match=r"sam_finetuned.pth carries none \(.*\): drop --no-colour-prompt$"):
        colour_prompt_for(options(no_colour_prompt=True, crop_fraction=0.2), full)


def test_no_colour_head_with_zero_shot_sam_names_the_sam_option() -> None:
    # the cascade names its SAM checkpoint --sam (the annotation page's is --checkpoint)
    from inspection.checkpoints import SamCheckpoint
    from inspection.options import colour_head_for

    with pytest.raises(UserError, match=r"it applies only with --sam \(zero-shot SAM has none\)$"):
        colour_head_for(options(no_colour_head=True), SamCheckpoint("vit_t"))


@pytest.mark.parametrize("command", ["inspection.evaluate", "inspection.predict", "segmentation.evaluate"])
def test_the_help_says_a_colour_prompt_goes_with_the_flips(command: str) -> None:
    # since 69f6265 a colour prompt is drawn on each flipped view; --help still said --tta refused a
    # prompt-carrying --sam and offered --no-colour-prompt as the way to flip
    import importlib

    text = " ".join(importlib.import_module(command).build_parser().format_help().split())
    assert "a colour prompt is drawn on each flipped view" in text
    assert "carries a colour prompt (unless --no-colour-prompt)" not in text
    assert "--crop-fraction or --tta" not in text


def test_the_predict_docstring_says_a_colour_prompt_goes_with_the_flips() -> None:
    # the module's docstring still said a prompt-carrying decoder.pt was refused with --tta
    import inspection.predict

    text = " ".join(inspection.predict.__doc__.split())
    assert "refused with ``--tta``" not in text and "a colour prompt's maps drawn on each view" in text


@pytest.mark.parametrize("command", ["inspection.predict", "inspection.evaluate"])
def test_a_quoted_tilde_in_a_path_option_is_the_home_folder(command, tmp_path, monkeypatch) -> None:
    # --out '~/o' wrote into a folder named '~' in the working folder
    import importlib

    monkeypatch.setenv("HOME", str(tmp_path))
    argv = ["--detector", "~/d.pt", "--sam", "~/s.pt", "--out", "~/o", "--cache-dir", "~/c"]
    argv += ["--source", "p"] if command == "inspection.predict" else ["--data", "~/data"]
    args = importlib.import_module(command).build_parser().parse_args(argv)
    assert (args.detector, args.sam, args.out) == (tmp_path / "d.pt", tmp_path / "s.pt", tmp_path / "o")
    assert args.cache_dir == tmp_path / "c"
