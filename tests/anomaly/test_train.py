"""anomaly.train in-process: what it prints when a run is fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anomaly.evaluate import main as evaluate_main
from anomaly.run import fit_run
from anomaly.train import main
from common.errors import UserError
from converters.mvtec2yolo import main as convert_main
from tests.anomaly.conftest import TINY, make_parts

OVERRIDES = [f"{key}={value}" for key, value in TINY.items()]


def test_a_fit_ends_with_the_evaluate_command_that_gives_the_run_its_threshold(
    parts: Path, tmp_path: Path, capsys
) -> None:
    # it printed no next step, and anomaly.predict then refused the run for want of a threshold
    run = tmp_path / "my run"
    argv = ["--root", str(parts.parent), "--category", "part", "--out", str(run), "--no-progress"]
    assert main([*argv, *OVERRIDES]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"evaluate with: python -m anomaly.evaluate --run '{run}'"
    assert json.loads((run / "run.json").read_text())["protocol"]["data"] is None


def test_an_image_size_off_the_backbones_stride_is_refused_as_a_config_value(tmp_path: Path, capsys) -> None:
    # PatchCore refused it ("image_size must be a multiple of 16, got 100"), once the image tree had been read
    # and every fit photo hashed: here the tree is not even there
    argv = ["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "image_size=100"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "error: override 'image_size=100': config key 'image_size' needs an integer in [32, 2048], "
        "a multiple of 16, got 100 (96 or 112 are)\n"
    )


def test_a_config_of_a_tilde_and_no_users_name_is_a_missing_file_named_in_one_line(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    # --config ~lot_7.yaml (no such user; a shell leaves the word): a RuntimeError traceback
    # ('Could not determine home directory.') from Path.expanduser
    monkeypatch.chdir(tmp_path)
    argv = ["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")]
    assert main([*argv, "--config", "~no_such_user_lot_7.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: cannot read config ~no_such_user_lot_7.yaml: ")


def test_a_bad_backbone_is_named_by_its_flag(tmp_path: Path, capsys) -> None:
    # --backbone becomes the override backbone=foo: the message named an override nobody typed
    argv = ["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--backbone", "foo"]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: --backbone foo: config key 'backbone' must be one of ")


def test_a_fit_on_one_photo_says_one_good_image(tmp_path: Path, capsys) -> None:
    # it printed "fit mobilenet_v2 PatchCore on 1 good images of 'part'"
    parts = make_parts(tmp_path / "data", n_train=1)
    argv = [
        "--root",
        str(parts.parent),
        "--category",
        "part",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    assert main([*argv, *OVERRIDES]) == 0
    assert " PatchCore on 1 good image of 'part' in " in capsys.readouterr().out


@pytest.mark.parametrize("category", [[], ["--category", "images"]])
def test_a_converter_output_given_as_root_is_named_as_such(
    parts: Path, tmp_path: Path, capsys, category: list[str]
) -> None:
    # its images/ holds train/ and test/: read as a category, the error said the folder "holds 2
    # categories (images, labels)", or with --category images that 'images' had no images
    converted = tmp_path / "part_yolo"
    assert convert_main(["--root", str(parts), "--out", str(converted), "--no-progress"]) == 0
    capsys.readouterr()
    argv = ["--root", str(converted), *category, "--out", str(tmp_path / "run"), "--no-progress", *OVERRIDES]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {converted} is a converter output (splits.json, images/), not an image tree: pass the "
        f"MVTec tree it was converted from as --root, and {converted} as --data\n"
    )
    assert not (tmp_path / "run").exists()


def test_a_ctrl_c_on_a_re_run_says_the_run_there_is_an_earlier_ones(
    parts: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it printed 'interrupted' alone, and the old run left in --out read as the one just fit
    import anomaly.run

    run = tmp_path / "run"
    argv = ["--root", str(parts.parent), "--category", "part", "--out", str(run), "--no-progress", *OVERRIDES]
    assert main(argv) == 0
    before = (run / "run.json").read_text()
    capsys.readouterr()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(anomaly.run, "build_model", interrupted)
    assert main([*argv, "--overwrite"]) == 130
    assert capsys.readouterr().err.split("\n", 1)[1] == (  # after the warning about 2 fit photos
        f"stopped: {run} is replaced only once the fit is done, so nothing of this run was kept there; "
        "what it holds is an earlier run's\ninterrupted\n"
    )
    assert (run / "run.json").read_text() == before
    argv[argv.index(str(run))] = str(tmp_path / "new")
    assert main(argv) == 130  # nothing earlier there: 'interrupted' says it all
    assert capsys.readouterr().err.endswith(
        "from 1; docs/anomaly.md); fit on more where you have them\ninterrupted\n"
    )


def test_photo_hashing_shows_a_progress_bar_unless_no_progress(parts: Path, tmp_path: Path, capsys) -> None:
    # every fit and test photo is read whole to hash it, with no bar: minutes of silence on a large set
    argv = ["--root", str(parts.parent), "--category", "part", *OVERRIDES]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert "hashing fit photos: 100%" in err and "hashing test photos (vs the fit photos): 100%" in err
    assert main([*argv, "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert "hashing" not in capsys.readouterr().err


def test_an_override_without_a_value_is_refused(parts: Path, tmp_path: Path, capsys) -> None:
    # `coreset_ratio=$RATIO` with RATIO unset: YAML read it as null, and the default ratio was fit
    argv = ["--root", str(parts.parent), "--category", "part", "--out", str(tmp_path / "run")]
    assert main([*argv, "--no-progress", *OVERRIDES, "coreset_ratio="]) == 2
    assert capsys.readouterr().err == (
        "error: override 'coreset_ratio=' has no value (an unset shell variable?): write coreset_ratio=null "
        "to unset 'coreset_ratio' explicitly\n"
    )
    assert not (tmp_path / "run").exists()


def test_data_alone_fits_on_the_root_its_coco_files_record(parts: Path, tmp_path: Path, capsys) -> None:
    # --root was required with --data ('the following arguments are required: --root'), though the
    # converted set's COCO files record the MVTec root they were read from
    converted = tmp_path / "part_yolo"
    assert convert_main(["--root", str(parts), "--out", str(converted), "--coco", "--no-progress"]) == 0
    run = tmp_path / "run"
    argv = ["--data", str(converted / "data.yaml"), "--out", str(run), "--no-progress", *OVERRIDES]
    assert main(argv) == 0, capsys.readouterr().err
    info = json.loads((run / "run.json").read_text())
    assert info["root"] == str(parts) and info["category"] == "part"


def test_data_alone_that_is_no_converter_output_is_named_as_such(tmp_path: Path, capsys) -> None:
    # a --data folder that is not there (a typo) was told 'pass --root: ... records no MVTec root'
    for data in (tmp_path / "typo_yolo", tmp_path):  # missing; a folder without splits.json
        assert main(["--data", str(data), "--out", str(tmp_path / "run"), "--no-progress", *OVERRIDES]) == 2
        assert capsys.readouterr().err == (
            f"error: no splits.json in {data} (pass a folder written by converters.mvtec2yolo/mvtec2coco)\n"
        )
    assert not (tmp_path / "run").exists()


def test_data_that_is_a_file_other_than_splits_json_is_named_with_what_data_takes(
    parts: Path, tmp_path: Path, capsys
) -> None:
    # any file was read as the set's splits.json: --data README.md was told 'pass --root: . records no
    # MVTec root', and a converted set's COCO file the same of its annotations/ folder
    converted = tmp_path / "part_yolo"
    assert convert_main(["--root", str(parts), "--out", str(converted), "--coco", "--no-progress"]) == 0
    notes = tmp_path / "README.md"
    notes.write_text("# notes\n")
    capsys.readouterr()
    for data in (notes, converted / "annotations" / "instances_train.json"):
        assert main(["--data", str(data), "--out", str(tmp_path / "run"), "--no-progress", *OVERRIDES]) == 2
        assert capsys.readouterr().err == (
            f"error: --data {data} is a file, not a data set the converters wrote: --data takes its folder, "
            "the data.yaml in it or its splits.json\n"
        )
    assert not (tmp_path / "run").exists()


def test_a_split_record_of_another_name_is_taken_by_its_contents(parts: Path, tmp_path: Path, capsys) -> None:
    # splits_v2.json, the converters' split record renamed, was refused as 'a file, not a data set the
    # converters wrote'; a README or a COCO file of the set still is (the test above)
    converted = tmp_path / "part_yolo"
    assert convert_main(["--root", str(parts), "--out", str(converted), "--coco", "--no-progress"]) == 0
    renamed = converted / "splits_v2.json"
    (converted / "splits.json").rename(renamed)
    capsys.readouterr()
    run = tmp_path / "run"
    assert main(["--data", str(renamed), "--out", str(run), "--no-progress", *OVERRIDES]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["category"] == "part" and info["protocol"]["data"] == str(renamed.absolute())
    command = capsys.readouterr().out.splitlines()[-1]
    assert f" --data {renamed.absolute()} --split " in command
    split = command.rsplit(" ", 1)[1]
    assert evaluate_main(["--run", str(run), "--data", str(renamed), "--split", split, "--no-progress"]) == 0


def test_an_out_inside_the_data_set_whose_splits_json_is_given_is_refused_before_fitting(
    parts: Path, tmp_path: Path, capsys
) -> None:
    # --data DS/splits.json --out DS/run wrote the run into the data set: only --data given as a folder
    # was checked (DS itself was refused); the file's folder is the data set
    converted = tmp_path / "part_yolo"
    assert convert_main(["--root", str(parts), "--out", str(converted), "--coco", "--no-progress"]) == 0
    capsys.readouterr()
    before = sorted(converted.rglob("*"))
    for data in (converted / "splits.json", converted):
        argv = ["--data", str(data), "--out", str(converted / "run"), "--no-progress", *OVERRIDES]
        assert main(argv) == 2
        assert capsys.readouterr().err == (
            f"error: output folder {converted.resolve() / 'run'} is inside the input tree "
            f"{converted.resolve()}; choose another --out\n"
        )
    assert sorted(converted.rglob("*")) == before


def test_a_root_that_is_a_file_is_named_as_such_with_an_out_beside_it(tmp_path: Path, capsys) -> None:
    # 34a3d2d0 checked a file tree's folder: --root lot/img.png --out lot/run was told the run lay in the tree
    (tmp_path / "img.png").write_bytes(b"x")
    argv = ["--root", str(tmp_path / "img.png"), "--category", "part", "--out", str(tmp_path / "run")]
    assert main([*argv, "--no-progress", *OVERRIDES]) == 2
    message = f"error: data root does not exist or is not a folder: {tmp_path / 'img.png'}\n"
    assert capsys.readouterr().err == message


def test_data_that_records_no_root_asks_for_root(parts: Path, tmp_path: Path, capsys) -> None:
    converted = tmp_path / "part_yolo"  # YOLO alone: no COCO file, so no recorded root
    assert convert_main(["--root", str(parts), "--out", str(converted), "--no-progress"]) == 0
    capsys.readouterr()
    for argv, message in (
        (["--data", str(converted)], f"pass --root: {converted} records no MVTec root (the converters "
         "write it in annotations/instances_<split>.json, with COCO output)"),
        ([], "pass --root (the MVTec folder to fit on), or --data (a converted set that records it)"),
    ):  # fmt: skip
        assert main([*argv, "--out", str(tmp_path / "run"), "--no-progress", *OVERRIDES]) == 2
        assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "run").exists()


def convert_part_of_two(tmp_path: Path, categories: list[str]) -> Path:
    """``categories`` of a root holding 'bolt' and 'part', converted with COCO files (which record it)."""
    root = tmp_path / "mvtec"
    make_parts(root)
    make_parts(root, name="bolt")
    converted = tmp_path / "converted"
    flags = [arg for name in categories for arg in ("--category", name)]
    argv = ["--root", str(root), *flags, "--out", str(converted), "--coco", "--no-progress"]
    assert convert_main(argv) == 0
    return converted


def test_data_alone_fits_the_one_category_the_set_was_converted_from(tmp_path: Path, capsys) -> None:
    # the category came from the recorded root, which holds two: 'pass --category: ... holds 2 categories',
    # though the set was converted with --category part alone
    converted = convert_part_of_two(tmp_path, ["part"])
    run = tmp_path / "run"
    assert main(["--data", str(converted), "--out", str(run), "--no-progress", *OVERRIDES]) == 0, (
        capsys.readouterr().err
    )
    assert json.loads((run / "run.json").read_text())["category"] == "part"


def test_data_of_several_categories_asks_for_one_of_its_own(tmp_path: Path, capsys) -> None:
    converted = convert_part_of_two(tmp_path, ["part"])
    both = convert_part_of_two(tmp_path / "both", ["part", "bolt"])
    capsys.readouterr()
    for data, category, message in (
        (both, [], f"pass --category: {both / 'splits.json'} lists images of 2 categories (bolt, part)"),
        (converted, ["--category", "bolt"], f"{converted / 'splits.json'} lists no image of category 'bolt' "
         "in any split (it holds part): --data must be the converter output made from this category"),
    ):  # fmt: skip
        argv = ["--data", str(data), *category, "--out", str(tmp_path / "run"), "--no-progress", *OVERRIDES]
        assert main(argv) == 2
        assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "run").exists()


def test_a_root_of_one_category_names_it_among_the_sets_several(tmp_path: Path, capsys) -> None:
    # --root the category folder, --data a set of two: 'pass --category: ... lists images of 2 categories',
    # though --root named the one (as it did before the set's own categories were asked for)
    both = convert_part_of_two(tmp_path, ["part", "bolt"])
    capsys.readouterr()
    run = tmp_path / "run"
    argv = ["--root", str(tmp_path / "mvtec" / "part"), "--data", str(both), "--out", str(run)]
    assert main([*argv, "--no-progress", *OVERRIDES]) == 0, capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["category"] == "part"


def test_a_root_of_one_category_the_set_lacks_is_refused_naming_the_sets(tmp_path: Path, capsys) -> None:
    converted = convert_part_of_two(tmp_path, ["part"])
    capsys.readouterr()
    root = tmp_path / "mvtec" / "bolt"
    argv = ["--root", str(root), "--data", str(converted), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main([*argv, *OVERRIDES]) == 2
    assert capsys.readouterr().err == (
        f"error: {converted / 'splits.json'} lists no image of category 'bolt' in any split (it holds part): "
        "--data must be the converter output made from this category\n"
    )
    assert not (tmp_path / "run").exists()


def test_data_splits_file_is_read_once(parts: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    # splits.json was read three times: for the category, for the fit, and for the evaluate command
    import anomaly.data

    converted = tmp_path / "part_yolo"
    assert convert_main(["--root", str(parts), "--out", str(converted), "--coco", "--no-progress"]) == 0
    reads = []
    real = anomaly.data.load_splits
    monkeypatch.setattr(anomaly.data, "load_splits", lambda path: reads.append(path) or real(path))
    run = tmp_path / "run"
    assert main(["--data", str(converted), "--out", str(run), "--no-progress", *OVERRIDES]) == 0
    assert reads == [converted / "splits.json"]
    info = json.loads((run / "run.json").read_text())
    assert info["category"] == "part" and info["protocol"]["data"] == str(converted)
    split = "val" if json.loads((converted / "splits.json").read_text())["val"] else "test"
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"evaluate with: python -m anomaly.evaluate --run {run} --data {converted} --split {split}"


def test_every_fit_photo_whose_header_does_not_read_is_named_in_one_line(
    parts: Path, tmp_path: Path, capsys
) -> None:
    # the first stopped the fit: three broken photos took three runs to find
    broken = [parts / "train" / "good" / f"{index:03d}.png" for index in (7, 8, 9)]
    for path in broken:
        path.write_bytes(b"")
    argv = ["--root", str(parts.parent), "--out", str(tmp_path / "run"), "--no-progress", *OVERRIDES]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: cannot read 3 photos: {broken[0]} (")
    assert all(str(path) in err for path in broken)


@pytest.mark.parametrize("backbone", ["wide #1", "010", "12:30", "yes"])  # comment, octal, base 60, boolean
def test_a_backbone_is_read_as_the_text_typed_not_as_yaml(tmp_path: Path, capsys, backbone: str) -> None:
    # --backbone became the override backbone=<value>, read as YAML: 'wide #1' was refused as an override
    # nobody typed holding a comment, 010 as an octal number, yes as a boolean
    argv = ["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--backbone", backbone]
    assert main(argv) == 2
    names = "mobilenet_v2, efficientnet_lite0, wide_resnet50_2"
    expected = (
        f"error: --backbone {backbone}: config key 'backbone' must be one of {names}, got '{backbone}'\n"
    )
    assert capsys.readouterr().err == expected


def test_overrides_may_follow_the_flags(parts: Path, tmp_path: Path, capsys) -> None:
    # an override after --no-progress was "unrecognized arguments: coreset_ratio=0.5", the run not fit
    run = tmp_path / "run"
    first, *rest = OVERRIDES
    argv = ["--root", str(parts.parent), first, "--out", str(run), "--no-progress", *rest]
    assert main(argv) == 0, capsys.readouterr().err
    config = json.loads((run / "run.json").read_text())["config"]
    assert {key: config[key] for key in TINY} == TINY


def test_weights_with_random_weights_are_refused_before_the_tree_is_read(tmp_path: Path, capsys) -> None:
    # pretrained=false fit the seeded random backbone and never read --weights (not even a file that fits)
    weights = tmp_path / "mine.pth"
    weights.write_bytes(b"not read")
    argv = ["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--weights", str(weights)]
    assert main([*argv, "pretrained=false"]) == 2
    assert capsys.readouterr().err == (
        f"error: --weights {weights} needs pretrained: true (pretrained=false fits seeded random weights "
        "and reads no file): drop one of them\n"
    )
    with pytest.raises(UserError, match=r"^--weights .*mine\.pth needs pretrained: true"):
        fit_run(tmp_path / "nowhere", "part", tmp_path / "run", config={"pretrained": False}, weights=weights)
    assert not (tmp_path / "run").exists()


def test_a_missing_weights_file_is_refused_before_the_tree_is_read(tmp_path: Path, capsys) -> None:
    # it was refused only after the image tree was read and every fit photo hashed
    weights = tmp_path / "gone.pth"
    argv = ["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--weights", str(weights)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: checkpoint not found: {weights} ") and "leave --weights out" in err
    assert not (tmp_path / "run").exists()


def test_an_empty_category_is_a_bad_name_not_the_only_one(parts: Path, tmp_path: Path, capsys) -> None:
    # --category "$CAT" with the variable unset fit the only category (with --data: the set's), unnamed
    converted = convert_part_of_two(tmp_path / "conv", ["part"])
    capsys.readouterr()
    for source in (["--root", str(parts.parent)], ["--data", str(converted)]):
        argv = [*source, "--category", "", "--out", str(tmp_path / "run"), "--no-progress", *OVERRIDES]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "category ''" in err, err
    assert not (tmp_path / "run").exists()
