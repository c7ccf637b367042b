"""``python -m inspection.predict`` in-process: the tiny SAM registered as ``tiny``, the stub detector."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from common.errors import UserError
from common.photo_sources import photo_files
from inspection.outputs import ANOMALY_MAPS_DIR
from inspection.predict import InspectOptions, check_out, inspect_photos, main
from segmentation.colour_head import ColourHead
from segmentation.colour_prompt import ColourPrompt
from segmentation.finetuned import DECODER_FORMAT, save_decoder
from tests.conftest import assert_link_loop_line, interrupting
from tests.inspection.conftest import StubDetector, in_box_pixels
from tests.segmentation.conftest import build_tiny_sam


@pytest.fixture
def decoder(tmp_path: Path, tiny_registry: Path) -> Path:
    return save_decoder(build_tiny_sam(seed=1), tmp_path / "sam" / "decoder.pt", model="tiny")


@pytest.fixture
def cli(detector_file, decoder, tiny_registry, tmp_path):
    """``main`` with the stub detector, the tiny decoder on its base weights and a test cache."""

    def run(*args: object) -> int:
        base = ["--detector", detector_file, "--sam", decoder, "--base-checkpoint", tiny_registry]
        base += ["--cache-dir", tmp_path / "cache", "--no-progress"]
        return main([str(a) for a in (*base, *args)])

    return run


@pytest.mark.parametrize(("inside", "where"), [("cache", "inside"), (".", "the folder of")])
def test_a_cache_dir_inside_out_is_refused_before_either_is_made(
    cli, photos, tmp_path, capsys, inside, where
):
    # the cache's check made out/cache: the first run was told "output folder exists (pass --overwrite)",
    # and with --overwrite that out "holds cache, which this command does not write": no way on
    out = tmp_path / "out"
    for overwrite in ([], ["--overwrite"]):
        assert cli("--source", photos, "--out", out, "--cache-dir", out / inside, *overwrite) == 2
        assert capsys.readouterr().err == (
            f"error: --cache-dir {(out / inside).resolve()} is {where} --out {out.resolve()}, which holds "
            "this run's results alone (--overwrite replaces it whole): choose a cache folder outside it\n"
        )
        assert not out.exists()


def test_a_folder_of_photos(cli, photos, tmp_path, capsys):
    out = tmp_path / "runs" / "lot_7"
    assert cli("--source", photos, "--out", out, "--anomaly-maps", "--overlays", "3") == 0
    printed = capsys.readouterr().out
    assert "inspected 4 photos" in printed and "good 1" in printed and "4 instances" in printed
    assert str(out / "predictions.json") in printed and "s/photo" in printed
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() or p.is_symlink())
    assert [n for n in names if not n.startswith("masks/")] == [
        "anomaly_maps/good.png",
        "anomaly_maps/lot_2__a.png",
        "anomaly_maps/one.png",
        "anomaly_maps/two.png",
        "args.yaml",
        "images.json",
        "overlays/good.jpg",
        "overlays/lot_2__a.jpg",
        "overlays/one.jpg",
        "predictions.json",
    ]
    assert "masks/lot_7/mask_values.json" in names and "masks/lot_7/test/combined/two.png" in names
    settings = yaml.safe_load((out / "args.yaml").read_text())
    assert settings["model"] == "tiny" and settings["device"] == "cpu" and settings["conf"] == 0.25
    assert settings["out"] == str(out) and settings["cache_dir"] == str(tmp_path / "cache")
    images = json.loads((out / "images.json").read_text())
    assert images["info"]["settings"]["source"] == str(photos)
    assert [i["verdict"] for i in images["images"]] == ["good", "stain", "scratch", "scratch"]
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 3  # photos with boxes only
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no build left behind


def test_tta_is_applied_and_recorded(cli, photos, tmp_path):
    assert cli("--source", photos, "--out", tmp_path / "flips", "--tta") == 0
    assert yaml.safe_load((tmp_path / "flips" / "args.yaml").read_text())["tta"] is True
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 3 * 4  # photos with boxes, and their flips
    assert cli("--source", photos, "--out", tmp_path / "plain") == 0
    assert yaml.safe_load((tmp_path / "plain" / "args.yaml").read_text())["tta"] is False
    flipped, plain = (json.loads((tmp_path / n / "predictions.json").read_text()) for n in ("flips", "plain"))
    assert [p["bbox"] for p in flipped] == [p["bbox"] for p in plain]
    assert [p["segmentation"] for p in flipped] != [p["segmentation"] for p in plain]


def test_a_glob_and_a_single_file(cli, photos, tmp_path):
    assert cli("--source", f"{photos}/**/a.png", "--out", tmp_path / "glob", "--overlays", "0") == 0
    images = json.loads((tmp_path / "glob" / "images.json").read_text())["images"]
    assert [(i["id"], i["file_name"]) for i in images] == [(1, "lot_2/a.png")]
    assert not (tmp_path / "glob" / "overlays").exists()
    assert cli("--source", photos / "two.png", "--out", tmp_path / "file", "--no-cache") == 0
    images = json.loads((tmp_path / "file" / "images.json").read_text())["images"]
    assert [(i["id"], i["file_name"], i["verdict"]) for i in images] == [(1, "two.png", "scratch")]
    assert yaml.safe_load((tmp_path / "file" / "args.yaml").read_text())["cache_dir"] is None


def test_a_relative_source_is_recorded_absolute(cli, photos, tmp_path, monkeypatch):
    # images.json names each photo relative to --source: a source recorded as typed ('lot') found
    # nothing from another folder, where every other path in the settings was absolute
    monkeypatch.chdir(photos.parent)
    assert cli("--source", photos.name, "--out", tmp_path / "rel", "--overlays", "0") == 0
    assert cli("--source", f"{photos.name}/*.png", "--out", tmp_path / "pattern", "--overlays", "0") == 0
    for out, source in (("rel", photos), ("pattern", photos / "*.png")):
        assert yaml.safe_load((tmp_path / out / "args.yaml").read_text())["source"] == str(source)
        images = json.loads((tmp_path / out / "images.json").read_text())
        assert images["info"]["settings"]["source"] == str(source)


def test_args_yaml_names_a_non_ascii_path_as_typed(cli, photos, tmp_path):
    # args.yaml was dumped without allow_unicode: --out lot_é was recorded as "lot_\\xE9", read back the
    # same by yaml but not by a person reading the file
    out = tmp_path / "lot_é"
    assert cli("--source", photos, "--out", out, "--overlays", "0") == 0
    text = (out / "args.yaml").read_text(encoding="utf-8")
    assert f"out: {out}\n" in text and "\\x" not in text
    keys = list(yaml.safe_load(text))  # in the options' own order, not sorted
    assert keys[:2] == ["detector", "sam"] and keys[-1] == "anomaly_regions"


def test_a_quoted_tilde_source_is_recorded_as_the_home_folders(cli, photos, tmp_path, monkeypatch):
    # --source '~/photos/*.png' (quoted: no shell expanded it) inspected the home folder's photos and
    # was recorded as <working folder>/~/photos/*.png, where images.json's file_names are not
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(photos)
    assert cli("--source", "~/photos/*.png", "--out", tmp_path / "home", "--overlays", "0") == 0
    assert yaml.safe_load((tmp_path / "home" / "args.yaml").read_text())["source"] == str(photos / "*.png")
    images = json.loads((tmp_path / "home" / "images.json").read_text())
    assert images["info"]["settings"]["source"] == str(photos / "*.png")


def test_an_existing_out_is_refused_unless_overwrite(cli, photos, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "overlays").mkdir(parents=True)
    (out / "overlays" / "old.jpg").write_text("older results")
    assert cli("--source", photos, "--out", out) == 2
    assert "output folder exists" in capsys.readouterr().err
    assert (out / "overlays" / "old.jpg").is_file()
    (out / "keep.txt").write_text("mine")  # not an earlier run's: --overwrite would delete it
    assert cli("--source", photos, "--out", out, "--overwrite") == 2
    assert f"--out {out} holds keep.txt, which this command does not write" in capsys.readouterr().err
    (out / "keep.txt").unlink()
    (out / "predictions.json").write_text("[]")  # an earlier run's: every run writes one
    assert cli("--source", photos, "--out", out, "--overwrite", "--rank-by", "product") == 0
    assert not (out / "overlays" / "old.jpg").exists() and (out / "predictions.json").is_file()


@pytest.mark.parametrize("held", ["masks", "overlays"])
def test_overwrite_refuses_a_folder_holding_only_an_output_folders_name(cli, photos, tmp_path, capsys, held):
    # a user's mine/masks/some.png held only names the command writes: --overwrite deleted it with the folder
    out = tmp_path / "mine"
    (out / held).mkdir(parents=True)
    (out / held / "some.png").write_bytes(b"mine")
    assert cli("--source", photos, "--out", out, "--overwrite") == 2
    err = capsys.readouterr().err
    assert f"--out {out} holds {held} but no predictions.json, which every run of this command writes" in err
    assert (out / held / "some.png").read_bytes() == b"mine"


def test_a_detector_trained_on_tiles_run_on_whole_photos_gets_a_note(
    cli, photos, tmp_path, monkeypatch, capsys
) -> None:
    record = tmp_path / "run" / "tiles" / "tiles.json"  # what detection.train tile=48 leaves in its run
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"tile": 48, "overlap": 0.2}))
    monkeypatch.setattr(StubDetector, "overrides", {"data": str(record.parent / "data.yaml")}, raising=False)
    assert cli("--source", photos, "--out", tmp_path / "whole") == 0
    err = capsys.readouterr().err
    assert f"was trained on 48-px tiles ({record}); it runs here on whole photos" in err
    assert err.count("was trained on") == 1  # the command's; its Inspector, told so, gives none of its own
    assert cli("--source", photos, "--out", tmp_path / "tiled", "--tile", "48") == 0
    assert "was trained on" not in capsys.readouterr().err


def test_a_detector_trained_on_whole_photos_gets_no_note_where_each_tile_is_a_whole_photo(
    cli, photos, tmp_path, monkeypatch, capsys
) -> None:
    # --tile 80 on these 80 x 60 photos runs each whole, as the detector learnt them: a false alarm
    data = tmp_path / "set" / "data.yaml"  # the whole photos it was trained on
    data.parent.mkdir()
    data.write_text("names: {0: scratch, 1: stain}\n")
    monkeypatch.setattr(StubDetector, "overrides", {"data": str(data)}, raising=False)
    assert cli("--source", photos, "--out", tmp_path / "whole", "--tile", "80") == 0
    assert "was trained on" not in capsys.readouterr().err
    assert cli("--source", photos, "--out", tmp_path / "cut", "--tile", "64") == 0
    assert f"was trained on whole photos ({data}); it runs here on 64-px tiles" in capsys.readouterr().err


def test_a_full_state_dict_with_model(detector_file, tiny_registry, photos, tmp_path):
    options = InspectOptions(
        detector=detector_file,
        source=str(photos),
        out=tmp_path / "out",
        sam=tiny_registry,
        model="tiny",
        no_cache=True,
        progress=False,
        conf=0.7,
    )
    run = inspect_photos(options)
    assert run.verdicts == {"good": 2, "scratch": 2} and run.instances == 2  # the stains' 0.6 < 0.7
    assert run.category_dir == tmp_path / "out" / "masks" / "out"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--conf", "1.5"], "--conf must be in [0, 1], got 1.5"),
        (["--tile", "16"], "--tile needs a window side >= 32 px, got 16"),
        (["--tile", "abc"], "argument --tile: invalid int value: 'abc'"),
        (["--overlays", "-2"], "--overlays must be -1 (all), 0 (none) or a count"),
        (["--model", "vit_b"], "was trained on model 'tiny', not 'vit_b'"),
        (["--device", "gpu"], "unknown device 'gpu'"),
        pytest.param(  # named neither the flag nor what was missing
            ["--device", "cuda"],
            "--device cuda: no CUDA device is visible on this machine (torch sees none); pass cpu",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
        (["--rank-by", "iou"], "argument --rank-by: invalid choice"),
        (["--tta", "--crop-fraction", "0.2"], "--tta and --crop-fraction do not combine"),
    ],
)
def test_bad_options_are_one_line_before_anything_runs(cli, photos, tmp_path, capsys, args, fragment):
    assert cli("--source", photos, "--out", tmp_path / "out", *args) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and fragment in error and "\n" not in error
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_out_may_not_be_a_folder_holding_photos_a_pattern_matched(cli, photos, capsys):
    # "photos/*/*.png" searches photos/ flat, but matches photos/lot_2/a.png: --overwrite would delete it
    before = sorted(photos.rglob("*"))
    assert cli("--source", f"{photos}/*/*.png", "--out", photos / "lot_2", "--overwrite") == 2
    assert f"{photos / 'lot_2'} holds a.png, which this command does not write" in capsys.readouterr().err
    assert sorted(photos.rglob("*")) == before


@pytest.mark.parametrize("where", ["inside", "holding"])
def test_out_may_not_be_inside_the_photo_folder_or_hold_it(cli, photos, capsys, where):
    out = photos / "results" if where == "inside" else photos.parent
    assert cli("--source", photos, "--out", out, "--overwrite") == 2
    assert ("inside the photo folder" if where == "inside" else "holds the photos") in capsys.readouterr().err
    assert not (photos / "results").exists()


@pytest.mark.parametrize(
    ("pattern", "options", "refused", "what"),
    [
        ("lots/*/*/*.bmp", {}, None, None),  # was refused: masks/ was taken to hold any image at any depth
        ("lots/*/*/*.jpg", {}, "overlays/*.jpg", "overlays"),
        ("lots/*/*/*.jpg", {"overlays": 0}, None, None),  # was refused: no overlay is drawn
        ("lots/*/*/*.png", {}, None, None),  # was refused: anomaly maps are written with --anomaly-maps alone
        # the next three were 'inspect its overlays too', of anomaly maps or the masks tree
        ("lots/*/*/*.png", {"anomaly_maps": True}, "anomaly_maps/*.png", "anomaly maps"),
        ("lots/*/*/*/*/*/*.bmp", {"overlays": 0}, "masks/*/test/*/*.bmp", "masks tree's photos"),  # a link
        # x_mask.png linked; was 'its masks tree's photos' alone, the masks it matches too left unsaid
        (
            "lots/*/*/*/*/*/*_mask.png",
            {},
            "masks/*/test/*/*.png, masks/*/ground_truth/*/*_mask.png",
            "masks tree's photos and masks",
        ),
        ("lots/*/*/*/ground_truth/*/*", {}, "masks/*/ground_truth/*/*_mask.png", "masks"),
    ],
)
def test_an_out_is_refused_where_a_pattern_could_match_what_it_writes(
    tmp_path, monkeypatch, pattern, options, refused, what
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "lots" / "run"
    options = {"overwrite": False, "overlays": 50, "anomaly_maps": False, **options}  # the defaults
    if refused is None:
        assert check_out(Path("lots/run"), pattern, **options) == out
    else:
        written = ", ".join(str(out / image) for image in refused.split(", "))
        said = rf"would hold images \({re.escape(written)}\) that .*, where a later run would "
        with pytest.raises(UserError, match=f"{said}inspect its {re.escape(what)} too; choose"):
            check_out(Path("lots/run"), pattern, **options)


@pytest.mark.parametrize(
    ("options", "what"),
    [
        ({}, "overlays, masks tree's photos and masks"),
        ({"overlays": 0}, "masks tree's photos and masks"),  # was 'inspect its overlays too'
        ({"anomaly_maps": True}, "overlays, anomaly maps, masks tree's photos and masks"),
    ],
)
def test_an_out_inside_the_photo_folder_is_refused_naming_the_images_it_writes(tmp_path, options, what):
    options = {"overwrite": False, "overlays": 50, "anomaly_maps": False, **options}  # the defaults
    with pytest.raises(UserError, match=f"where a later run would inspect its {re.escape(what)} too; choose"):
        check_out(tmp_path / "run", str(tmp_path), **options)


def test_a_png_pattern_may_write_beside_its_photos_without_anomaly_maps(cli, tmp_path):
    # was refused: 'would hold images (.../run/anomaly_maps/*.png)', which only --anomaly-maps writes
    lots, photo = tmp_path / "lots", tmp_path / "lots" / "line_1" / "cam" / "a.png"
    photo.parent.mkdir(parents=True)
    assert cv2.imwrite(str(photo), np.zeros((32, 32, 3), np.uint8))
    assert cli("--source", f"{lots}/*/*/*.png", "--out", lots / "run") == 0
    assert not (lots / "run" / ANOMALY_MAPS_DIR).exists()
    assert photo_files(f"{lots}/*/*/*.png")[0] == [photo]  # a later run reads no file of the run


def test_an_earlier_runs_anomaly_maps_a_pattern_matches_are_refused_as_photos(cli, tmp_path, capsys):
    # this run writes none (no --anomaly-maps), but --out holds an earlier run's, which it would read
    lots, earlier = tmp_path / "lots", tmp_path / "lots" / "run" / "anomaly_maps" / "a.png"
    for path in (lots / "line_1" / "cam" / "a.png", earlier):
        path.parent.mkdir(parents=True)
        assert cv2.imwrite(str(path), np.zeros((32, 32, 3), np.uint8))
    (lots / "run" / "predictions.json").write_text("[]")  # the earlier run's, which every run writes
    assert cli("--source", f"{lots}/*/*/*.png", "--out", lots / "run", "--overwrite") == 2
    assert (
        f"output folder {lots / 'run'} holds the photo {earlier}; choose another --out"
        in capsys.readouterr().err
    )
    assert earlier.is_file()


def test_a_non_recursive_glob_may_write_beside_its_photos(cli, photos, tmp_path):
    assert cli("--source", f"{photos}/*.png", "--out", photos / "results", "--overlays", "0") == 0
    assert len(json.loads((photos / "results" / "images.json").read_text())["images"]) == 3


def test_a_decoder_without_model_record_is_refused(cli, photos, tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    torch.save({"format": DECODER_FORMAT, "mask_decoder": {}}, broken)
    detector = tmp_path / "detect" / "best.pt"
    args = ["--detector", detector, "--sam", broken, "--source", photos, "--out", tmp_path / "out"]
    assert main([str(a) for a in args]) == 2
    assert "names no model" in capsys.readouterr().err


def test_a_decoders_colour_head_is_applied_and_recorded(cli, photos, tmp_path):
    head = ColourHead((0.0, 0.0, 5.0))  # every in-box pixel foreground
    decoder = save_decoder(build_tiny_sam(seed=1), tmp_path / "head.pt", model="tiny", colour_head=head)
    for flags, recorded in (((), head.to_dict()), (("--no-colour-head",), None)):
        out = tmp_path / ("off" if flags else "on")
        assert cli("--sam", decoder, "--source", photos, "--out", out, "--overlays", "0", *flags) == 0
        settings = yaml.safe_load((out / "args.yaml").read_text())  # the last --sam given wins
        assert settings["colour_head"] == recorded and settings["no_colour_head"] == bool(flags)
        assert json.loads((out / "images.json").read_text())["info"]["settings"]["colour_head"] == recorded
        pixels = in_box_pixels(json.loads((out / "predictions.json").read_text()))
        assert pixels.all() == (not flags)


def test_a_decoder_without_a_head_records_none(cli, photos, tmp_path):
    assert cli("--source", photos / "one.png", "--out", tmp_path / "out") == 0
    settings = yaml.safe_load((tmp_path / "out" / "args.yaml").read_text())
    assert settings["colour_head"] is None and settings["colour_prompt"] is None


def test_a_decoders_colour_prompt_is_applied_and_recorded(cli, decoder, photos, tmp_path):
    prompt = ColourPrompt(centre=10.0, scale=1.0, clip=8.0)
    prompted = save_decoder(
        build_tiny_sam(seed=1), tmp_path / "prompt.pt", model="tiny", colour_prompt=prompt
    )
    masks = []
    for name, sam, flags, recorded in (
        ("on", prompted, (), prompt.to_dict()),
        ("off", decoder, (), None),  # the same weights
        ("left-out", prompted, ("--no-colour-prompt",), None),
    ):
        out = tmp_path / name
        assert cli("--sam", sam, "--source", photos, "--out", out, "--overlays", "0", *flags) == 0
        settings = yaml.safe_load((out / "args.yaml").read_text())
        assert settings["colour_prompt"] == recorded and settings["no_colour_prompt"] == bool(flags)
        assert json.loads((out / "images.json").read_text())["info"]["settings"]["colour_prompt"] == recorded
        masks.append([entry["segmentation"] for entry in json.loads((out / "predictions.json").read_text())])
    assert len(masks[0]) == len(masks[1]) == 4 and masks[0] != masks[1] and masks[2] == masks[1]


def _grey_copy(photos: Path, grey: Path) -> Path:
    """``photos`` in grey: single-channel files, and three equal channels for ``two.png``."""
    for photo in photos.rglob("*.png"):
        image = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2GRAY)
        target = grey / photo.relative_to(photos)
        target.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(target), cv2.merge([image] * 3) if photo.name == "two.png" else image)
    return grey


def test_a_colour_decoder_on_grey_photos_is_warned_about_once(cli, decoder, photos, tmp_path, capsys):
    # a decoder.pt with a colour prompt or head masked grey photos without a word, though the colour
    # distances it reads carry nothing there
    grey = _grey_copy(photos, tmp_path / "grey")
    head = ColourHead((1.0, 0.1, 0.0))
    prompted = save_decoder(
        build_tiny_sam(seed=1), tmp_path / "colour.pt", model="tiny", colour_prompt=ColourPrompt(),
        colour_head=head,
    )  # fmt: skip
    runs = [(prompted, grey, ["head", "prompt"]), (prompted, photos, None), (decoder, grey, None)]
    for i, (sam, source, parts) in enumerate(runs):
        assert cli("--sam", sam, "--source", source, "--out", tmp_path / f"out{i}", "--overlays", "0") == 0
        warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
        if parts is None:
            assert warnings == []
        else:
            assert warnings == [
                "warning: the 3 photos read from the 4 are greyscale, and the decoder's colour head and "
                "colour prompt read colour, which a grey photo does not have: use a decoder trained without "
                "them, or pass --no-colour-head --no-colour-prompt"
            ]


def test_a_colour_prompt_with_crops_is_one_line(cli, photos, tmp_path, capsys):
    prompted = save_decoder(
        build_tiny_sam(seed=1), tmp_path / "prompt.pt", model="tiny", colour_prompt=ColourPrompt()
    )
    argv = ["--sam", prompted, "--source", photos, "--overlays", "0"]
    assert cli(*argv, "--out", tmp_path / "out", "--crop-fraction", "0.2") == 2
    why = "which works on the whole photo: drop --crop-fraction, or pass --no-colour-prompt"
    assert capsys.readouterr().err == f"error: {prompted} carries a colour prompt, {why}\n"
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
    assert cli(*argv, "--out", tmp_path / "tta", "--tta") == 0  # flips serve: each view gets its own maps
    settings = yaml.safe_load((tmp_path / "tta" / "args.yaml").read_text())
    assert settings["colour_prompt"] == ColourPrompt().to_dict() and settings["tta"]
    # the same decoder without its prompt
    assert cli(*argv, "--out", tmp_path / "out", "--crop-fraction", "0.2", "--no-colour-prompt") == 0
    settings = yaml.safe_load((tmp_path / "out" / "args.yaml").read_text())
    assert settings["colour_prompt"] is None and settings["crop_fraction"] > 0


def test_a_colour_head_and_prompt_with_crops_are_one_line_naming_both(cli, photos, tmp_path, capsys):
    # the head was refused first (as 'the SAM checkpoint'), and with --no-colour-head the prompt
    head = ColourHead(weights=(1.0, 0.1, 0.0))
    both = save_decoder(
        build_tiny_sam(seed=1),
        tmp_path / "both.pt",
        model="tiny",
        colour_head=head,
        colour_prompt=ColourPrompt(),
    )
    argv = ["--sam", both, "--source", photos, "--overlays", "0", "--out", tmp_path / "out"]
    argv += ["--crop-fraction", "0.2"]
    assert cli(*argv) == 2
    assert capsys.readouterr().err == (
        f"error: {both} carries a colour head and a colour prompt, which work on the whole photo: "
        "drop --crop-fraction, or pass --no-colour-head --no-colour-prompt\n"
    )
    assert cli(*argv, "--no-colour-prompt") == 2  # the head alone: its own words, naming the file
    assert capsys.readouterr().err.startswith(f"error: {both} carries a colour head, which works on")
    assert not (tmp_path / "out").exists()
    assert cli(*argv, "--no-colour-head", "--no-colour-prompt") == 0


@pytest.mark.parametrize(
    ("part", "carrier"),
    [
        ("colour head", "a decoder.pt of a run that kept one does"),
        ("colour prompt", "a decoder.pt of a colour_prompt=true run does"),
    ],
)
@pytest.mark.parametrize("sam", ["zero-shot", "none carried"])
def test_no_colour_head_or_prompt_where_there_is_none_is_one_line(
    cli, detector_file, photos, tmp_path, capsys, sam, part, carrier
):
    # the flag was accepted and changed nothing; segmentation.evaluate refuses it in the same words
    out = tmp_path / "out"
    flag = "--no-" + part.replace(" ", "-")
    if sam == "zero-shot":
        argv = ["--detector", detector_file, "--source", photos, "--out", out, flag]
        assert main([str(a) for a in argv]) == 2
        message = "it applies only with --sam (zero-shot SAM has none)"
    else:  # the fixture's decoder.pt keeps no head and no prompt
        assert cli("--source", photos, "--out", out, flag) == 2
        message = f"carries none ({carrier}): drop {flag}"
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag} leaves out a fine-tuned decoder's {part}")
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("weights", "flags", "fragment"),
    [
        (
            [0.0, 0.0, 5.0],
            ("--crop-fraction", "0.2"),
            "which works on whole-photo logits: drop --crop-fraction",
        ),
        ([1.0], (), "colour_head needs 3 weights"),
    ],
)
def test_a_head_with_crops_or_a_malformed_head_is_one_line(
    cli, photos, tmp_path, capsys, weights, flags, fragment
):
    decoder = save_decoder(build_tiny_sam(seed=1), tmp_path / "head.pt", model="tiny")
    data = torch.load(decoder, weights_only=True)
    data["colour_head"] = {"features": ["logit", "colour_distance", "bias"], "weights": weights}
    torch.save(data, decoder)
    assert cli("--sam", decoder, "--source", photos, "--out", tmp_path / "out", *flags) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and fragment in error and "\n" not in error
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_detector_weights_ultralytics_reads_lazily_are_one_line(tiny_registry, photos, tmp_path, capsys):
    # YOLO() reads a .pt at once but defers other suffixes to first use: a SAM state dict passed as
    # the detector used to end in ultralytics' AssertionError traceback, after SAM had loaded
    weights = tmp_path / "sam_finetuned.pth"
    torch.save(build_tiny_sam().state_dict(), weights)
    args = ["--detector", weights, "--sam", tiny_registry, "--model", "tiny", "--no-cache"]
    args += ["--source", photos, "--out", tmp_path / "out", "--no-progress"]
    assert main([str(a) for a in args]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    # and then said only "ultralytics cannot read it (AssertionError: ... not .pth)"
    assert error == (
        f"error: cannot load model '{weights}': not an ultralytics checkpoint "
        "(it is a SAM state dict, such as sam_finetuned.pth)"
    )
    assert not (tmp_path / "out").exists()


def test_a_cache_dir_that_is_a_file_is_one_line_before_anything_runs(cli, photos, tmp_path, capsys):
    # it used to surface at the first photo with a box, after both models had loaded, blamed on --out
    assert cli("--source", photos, "--out", tmp_path / "out", "--cache-dir", photos / "one.png") == 2
    assert capsys.readouterr().err == f"error: --cache-dir {photos / 'one.png'} is a file, not a folder\n"
    assert not (tmp_path / "out").exists()


def test_an_out_whose_path_is_not_utf8_is_one_line_before_anything_runs(
    cli, photos, tmp_path, not_utf8_folder, capsys
):
    # a Latin-1 name from an old Windows share: the closing report printing it stopped with a
    # UnicodeEncodeError on a UTF-8 terminal after the run was written
    assert cli("--source", photos, "--out", not_utf8_folder / "out") == 2
    assert capsys.readouterr().err == (
        f"error: --out has a name that is not UTF-8, b'bad\\xff' (in {tmp_path}): rename it, or pass another "
        "folder (the commands' files record the path, and JSON and YAML readers refuse such names)\n"
    )
    assert not any(not_utf8_folder.iterdir()) and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("through", ["out", "source"])
def test_an_out_or_source_through_a_link_loop_is_one_line(cli, photos, tmp_path, link_loop, through, capsys):
    # --out loop/r1 was Path.resolve's 'RuntimeError: Symlink loop from ...' traceback; --source loop/x
    # was 'not found', of a path that is there
    paths = {"source": photos, "out": tmp_path / "out", through: link_loop / "x"}
    assert cli("--source", paths["source"], "--out", paths["out"]) == 2
    assert_link_loop_line(capsys.readouterr().err, f"{link_loop}/x: ", link_loop)
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_a_single_source_file_without_an_image_suffix_is_refused(cli, photos, tmp_path, capsys):
    # docs/inspection.md's --source: a folder or pattern leaves such a file out with a note; given alone it
    # is refused, in one line, before anything is written
    (tmp_path / "notes.txt").write_text("not a photo")
    assert cli("--source", tmp_path / "notes.txt", "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"--source {tmp_path / 'notes.txt'} has no image suffix read here (.png, .jpg, .jpeg, " in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_is_refused_even_with_overwrite(cli, photos, tmp_path, capsys):
    # --overwrite used to replace the file with the run folder
    (tmp_path / "notes.txt").write_text("not a folder")
    assert cli("--source", photos, "--out", tmp_path / "notes.txt", "--overwrite") == 2
    assert "notes.txt is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "not a folder"


def test_the_printed_mvtec2yolo_command_can_be_pasted_when_paths_have_spaces(cli, photos, tmp_path, capsys):
    out = tmp_path / "my runs" / "lot 7"
    assert cli("--source", photos, "--out", out) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if "converters.mvtec2yolo" in line]
    words = shlex.split(line.split("MVTec layout; ", 1)[1].rstrip(")"))
    assert words[words.index("--root") + 1] == str(out / "masks")
    assert words[words.index("--mask-values") + 1].startswith(str(out / "masks"))
    assert words[words.index("--out") + 1] == "DATASET" and words[-1] == "--coco"


def test_a_lot_called_all_good_prints_no_converters_command_that_would_fail(cli, photos, tmp_path, capsys):
    # --conf above every stub box: each photo good, the masks tree without a defect image, which the
    # converters refuse; the summary printed their command for it all the same
    from converters.mvtec2yolo import main as mvtec2yolo

    out = tmp_path / "lot"
    assert cli("--source", photos, "--out", out, "--conf", "0.95") == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  masks ")]
    assert "converters.mvtec2yolo --root" not in line
    assert line.endswith(
        "(MVTec layout; every photo called good: no defect for converters.mvtec2yolo to convert)"
    )
    values = out / "masks" / "lot" / "mask_values.json"
    args = ["--root", out / "masks", "--mask-values", values, "--out", tmp_path / "ds", "--no-progress"]
    assert mvtec2yolo([str(a) for a in args]) == 2  # what pasting the old line ran into
    assert "no defect image" in capsys.readouterr().err


def test_overwrite_replaces_a_folder_of_everything_a_run_writes(cli, photos, tmp_path):
    out = tmp_path / "out"
    assert cli("--source", photos, "--out", out, "--anomaly-maps", "--overlays", "1") == 0
    assert {"args.yaml", "anomaly_maps", "masks", "overlays"} <= {p.name for p in out.iterdir()}
    assert cli("--source", photos, "--out", out, "--overwrite") == 0  # each of those is the command's
    assert (out / "args.yaml").is_file() and not (out / "anomaly_maps").exists()


def test_the_summary_says_how_many_duplicate_masks_were_dropped(tmp_path) -> None:
    from inspection.predict import InspectionRun

    run = InspectionRun(out=tmp_path, category_dir=tmp_path / "masks" / "x", photos=3, instances=5)
    assert "; 5 instances\n" in run.describe()
    assert "--out DATASET --coco)" in run.describe()  # the COCO files inspection.evaluate reads too
    run.duplicates, run.mask_iou = 4, 0.7
    assert "; 5 instances (4 duplicate masks dropped, --mask-iou 0.7)\n" in run.describe()


def test_one_duplicate_mask_is_one_mask_and_the_iou_is_printed_short(tmp_path) -> None:
    from inspection.predict import InspectionRun

    run = InspectionRun(out=tmp_path, category_dir=tmp_path / "masks" / "x", photos=1, instances=1)
    run.duplicates, run.mask_iou = 1, 0.0
    assert "; 1 instance (1 duplicate mask dropped, --mask-iou 0)\n" in run.describe()


def test_the_run_counts_the_duplicate_masks_it_dropped(cli, photos, tmp_path, monkeypatch, capsys) -> None:
    import inspection.predict
    from tests.inspection.conftest import DoublingDetector

    monkeypatch.setattr(inspection.predict, "load_detector", lambda weights: DoublingDetector())
    assert cli("--source", photos / "two.png", "--out", tmp_path / "out", "--overlays", "0") == 0
    assert "(2 duplicate masks dropped, --mask-iou 0.7)" in capsys.readouterr().out


def _interrupted_encoder(monkeypatch, after: int) -> list[int]:
    """Makes SAM's encoder raise KeyboardInterrupt on its call ``after + 1``; returns its calls so far."""
    import segmentation.embeddings

    counted, calls = interrupting(segmentation.embeddings.embed_images, after=after)
    monkeypatch.setattr(segmentation.embeddings, "embed_images", counted)
    return calls


def test_a_ctrl_c_says_how_many_embeddings_the_cache_kept(cli, photos, tmp_path, capsys, monkeypatch):
    # it printed 'interrupted' alone, as segmentation.embed did: whether the encoded photos were lost
    with monkeypatch.context() as patch:
        _interrupted_encoder(patch, after=2)
        assert cli("--source", photos, "--out", tmp_path / "out") == 130
    (folder,) = [path for path in (tmp_path / "cache").iterdir() if path.is_dir()]
    assert capsys.readouterr().err.splitlines()[-2:] == [
        f"stopped: 2 embeddings encoded by this run are kept in the cache {folder}; the same command again "
        "reuses them",
        "interrupted",
    ]
    assert len(list(folder.glob("*.pt"))) == 2 and not (tmp_path / "out").exists()
    calls = _interrupted_encoder(monkeypatch, after=100)
    assert cli("--source", photos, "--out", tmp_path / "out") == 0
    assert len(calls) == len(list(folder.glob("*.pt"))) - 2  # the two kept are not encoded again


def test_a_ctrl_c_before_any_embedding_is_written_adds_no_line(cli, photos, tmp_path, capsys, monkeypatch):
    _interrupted_encoder(monkeypatch, after=0)
    assert cli("--source", photos, "--out", tmp_path / "out") == 130
    assert capsys.readouterr().err.splitlines()[-1:] == ["interrupted"]
    assert "stopped" not in capsys.readouterr().err


def test_a_photos_inspection_is_freed_before_the_next_photo_is_inspected(cli, photos, tmp_path, monkeypatch):
    # its (N, H, W) masks and probabilities: held beside the next photo's, two photos' worth at the peak
    import weakref

    from inspection.inspector import Inspector

    inspect, done, alive = Inspector.__call__, [], []

    def tracked(self, path):
        alive.append(sum(ref() is not None for ref in done))
        result = inspect(self, path)
        done.append(weakref.ref(result))
        return result

    monkeypatch.setattr(Inspector, "__call__", tracked)
    assert cli("--source", photos, "--out", tmp_path / "out", "--anomaly-maps") == 0
    assert alive == [0, 0, 0, 0]


def test_a_ctrl_c_of_an_overwrite_says_the_out_folder_holds_the_earlier_run(
    cli, photos, tmp_path, capsys, monkeypatch
):
    # it printed 'interrupted' alone: the earlier run's predictions.json, left whole, read as this run's
    out = tmp_path / "out"
    assert cli("--source", photos, "--out", out, "--overlays", "0") == 0
    before = (out / "predictions.json").read_bytes()
    capsys.readouterr()
    import inspection.predict

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(inspection.predict, "write_run", stop)
    assert cli("--source", photos, "--out", out, "--overwrite") == 130
    assert capsys.readouterr().err.splitlines()[-2:] == [
        f"stopped: {out} is replaced only once every photo is done, so nothing of this run was kept there; "
        "what it holds is an earlier run's",
        "interrupted",
    ]
    assert (out / "predictions.json").read_bytes() == before


def test_a_coco_pretrained_detector_is_one_line_before_anything_is_written(
    cli, detector_file, photos, tmp_path, monkeypatch, capsys
):
    # yolo11n.pt as published (the project's own base weights) was taken as the defect detector: every
    # photo of a nut was called 'donut' or 'orange' without a word
    from ultralytics.utils import ROOT, YAML

    import inspection.predict

    coco = list(YAML.load(ROOT / "cfg" / "datasets" / "coco.yaml")["names"].values())
    monkeypatch.setattr(inspection.predict, "load_detector", lambda weights: StubDetector(coco))
    assert cli("--source", photos, "--out", tmp_path / "out") == 2
    assert capsys.readouterr().err == (
        f"error: --detector {detector_file} is a COCO-pretrained model (its 80 classes are COCO's objects: "
        "person, bicycle, car ...), not one trained on defects (it would call a part 'donut'); pass a "
        "detection run's weights/best.pt (python -m detection.train)\n"
    )
    assert not (tmp_path / "out").exists()
