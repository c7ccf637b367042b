"""``python -m segmentation.embed``: bad input is one ``error:`` line before any model loads."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from common.errors import UserError
from segmentation.data import SegmentationImage, SegmentationSplit
from segmentation.embed import check_split_sizes, main
from tests.conftest import interrupting, without_home


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "vit_zz"], "argument --model: invalid choice: 'vit_zz'"),
        (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["--cache-dir", "{garbage}"], "--cache-dir {garbage} is a file"),
        (["--cache-dir", "{garbage}/sub"], "cannot create folder {garbage}/sub: {garbage} is a file"),
        (["--data", "{config}"], "--data {config} is a YAML file, not a data set folder"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tiny_dataset, tmp_path, capsys, argv, message):
    garbage = tmp_path / "cache.txt"
    garbage.write_text("not a folder")
    (tmp_path / "config.yaml").write_text("epochs: 1\n")
    paths = {"garbage": garbage, "config": tmp_path / "config.yaml"}
    argv = [arg.format(**paths) for arg in argv]
    before = sorted(tmp_path.rglob("*"))
    assert main(["--data", str(tiny_dataset), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message.format(**paths) in err, err
    assert sorted(tmp_path.rglob("*")) == before


def test_help_names_no_none_default() -> None:
    from segmentation.embed import build_parser

    assert "(default: None)" not in " ".join(build_parser().format_help().split())


def test_a_quoted_tilde_in_cache_dir_is_the_home_folder(tmp_path, monkeypatch) -> None:
    # --cache-dir '~/c' cached into a folder named '~' in the working folder; the help names the variable
    # that moves the default cache
    from segmentation.embed import build_parser

    monkeypatch.setenv("HOME", str(tmp_path))
    args = build_parser().parse_args(["--data", "d", "--cache-dir", "~/c"])
    assert args.cache_dir == tmp_path / "c"
    assert "$MVTEC_FINETUNE_CACHE/embeddings" in " ".join(build_parser().format_help().split())


def _embed_with(tiny_sam, monkeypatch):
    import segmentation.embed

    monkeypatch.setattr(segmentation.embed, "load_sam", lambda *args, **kwargs: tiny_sam)


def test_an_image_of_another_size_than_its_coco_file_is_refused(
    wrong_size_dataset, tiny_sam, tmp_path, capsys, monkeypatch
):
    # a photo replaced after converting: embedded without a word, refused only by train / evaluate
    _embed_with(tiny_sam, monkeypatch)
    argv = ["--data", str(wrong_size_dataset), "--splits", "train", "val", "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(r"is 64x64 px, but .*instances_val.json says 64x128: correct it in the file", err)


def test_a_split_named_twice_is_embedded_and_counted_once(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch
):
    # --splits val val said "2n images: 2n were cached"
    from segmentation.data import load_split

    _embed_with(tiny_sam, monkeypatch)
    n = len(load_split(tiny_dataset, "val").images)
    argv = ["--data", str(tiny_dataset), "--cache-dir", str(tmp_path / "c"), "--no-progress"]
    assert main([*argv, "--splits", "val", "val"]) == 0
    assert capsys.readouterr().out.startswith(f"{n} images: 0 were cached, {n} encoded in ")


def test_an_empty_split_is_named_in_a_note_and_loads_no_model(tiny_dataset, tmp_path, capsys, monkeypatch):
    # --splits val on a split without images said "0 images: 0 were cached, 0 encoded" and nothing more;
    # and it loaded the model first (fetching the official weights, or failing offline) for nothing
    data = tmp_path / "nut"
    shutil.copytree(tiny_dataset, data)
    coco_file = data / "annotations" / "instances_val.json"
    coco_file.write_text(json.dumps({**json.loads(coco_file.read_text()), "images": [], "annotations": []}))
    import segmentation.embed

    def not_loaded(*args, **kwargs):
        raise AssertionError("the model was loaded (its weights fetched) for no image")

    monkeypatch.setattr(segmentation.embed, "load_sam", not_loaded)
    assert (
        main(["--data", str(data), "--cache-dir", str(tmp_path / "c"), "--no-progress", "--splits", "val"])
        == 0
    )
    captured = capsys.readouterr()
    assert captured.err == f"note: the val split of {data} holds no image\n"
    assert captured.out == "0 images: nothing to embed (the model was not loaded)\n"
    assert not (tmp_path / "c").exists()  # the closing line named this cache, never made


def test_a_repeated_splits_flag_adds_to_the_list_and_none_is_every_split(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch
):
    # --splits val --splits test embedded test alone (argparse kept the last flag), silently
    from segmentation.data import load_split

    _embed_with(tiny_sam, monkeypatch)
    sizes = {name: len(load_split(tiny_dataset, name).images) for name in ("train", "val", "test")}
    argv = ["--data", str(tiny_dataset), "--cache-dir", str(tmp_path / "c"), "--no-progress"]
    assert main([*argv, "--splits", "val", "--splits", "test"]) == 0
    n = sizes["val"] + sizes["test"]
    assert capsys.readouterr().out.startswith(f"{n} images: 0 were cached, {n} encoded in ")
    assert main(argv) == 0
    everything = sum(sizes.values())
    assert capsys.readouterr().out.startswith(
        f"{everything} images: {n} were cached, {everything - n} encoded in "
    )


def test_data_may_name_the_converters_data_yaml(tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch):
    # it was refused ('is a file: pass the data set folder'): users copy the path they trained with
    from segmentation.data import load_split

    _embed_with(tiny_sam, monkeypatch)
    n = len(load_split(tiny_dataset, "val").images)
    argv = ["--data", str(tiny_dataset / "data.yaml"), "--cache-dir", str(tmp_path / "c"), "--no-progress"]
    assert main([*argv, "--splits", "val"]) == 0
    assert capsys.readouterr().out.startswith(f"{n} images: 0 were cached, {n} encoded in ")


def test_each_split_is_checked_against_its_own_images_sizes(tmp_path) -> None:
    # sizes come in one list for all splits: the second split's start where the first's end
    def split(name: str, *sizes: tuple[int, int]) -> SegmentationSplit:
        images = [SegmentationImage(i, tmp_path / f"{name}{i}.png", w, h) for i, (h, w) in enumerate(sizes)]
        return SegmentationSplit(name, images, {1: "cut"}, tmp_path / f"instances_{name}.json")

    splits = [split("train", (10, 20)), split("val", (30, 40), (30, 40))]
    check_split_sizes(splits, [(10, 20), (30, 40), (30, 40)])
    with pytest.raises(UserError, match=r"val1\.png is 20x10 px, but .*instances_val\.json says 40x30"):
        check_split_sizes(splits, [(10, 20), (30, 40), (10, 20)])


def test_a_cache_dir_inside_the_data_set_is_refused(tiny_dataset, capsys, monkeypatch):
    # the cache was written into the data set, in the way of its re-conversion (an out= there is refused)
    import segmentation.embed as embed_module

    monkeypatch.setattr(embed_module, "load_sam", lambda *a, **k: pytest.fail("the model was loaded"))
    cache = tiny_dataset / "cache"
    assert main(["--data", str(tiny_dataset), "--cache-dir", str(cache), "--no-progress"]) == 2
    assert "is inside the input tree" in capsys.readouterr().err and not (tiny_dataset / "cache").exists()


def test_a_ctrl_c_says_how_many_images_the_cache_kept_and_what_a_rerun_encodes(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch
):
    # it printed 'interrupted' alone: whether the images encoded so far were lost was not said
    from segmentation.data import load_split

    _embed_with(tiny_sam, monkeypatch)
    n = len(load_split(tiny_dataset, "val").images)
    cache = tmp_path / "c"
    argv = ["--data", str(tiny_dataset), "--splits", "val", "--cache-dir", str(cache), "--no-progress"]
    assert main([*argv, "--batch-size", "1"]) == 0  # one image cached before the run below
    capsys.readouterr()
    for entry in sorted(cache.rglob("*.pt"))[1:]:
        entry.unlink()
    forward = tiny_sam.image_encoder.forward
    interrupted_on_third_batch, calls = interrupting(forward, after=2)

    with monkeypatch.context() as patch:
        patch.setattr(tiny_sam.image_encoder, "forward", interrupted_on_third_batch)
        assert main([*argv, "--batch-size", "1"]) == 130
    (folder,) = [path for path in cache.iterdir() if path.is_dir()]
    assert capsys.readouterr().err.splitlines() == [
        f"stopped: 3 of {n} images are in the cache {folder} (2 encoded by this run, kept); "
        f"the same command again encodes only the other {n - 3}",
        "interrupted",
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith(f"{n} images: 3 were cached, {n - 3} encoded in ")


def _hand_made(tiny_dataset, tmp_path):
    """A data set as a user of another tool lays it out: images/ (train/, val/, test/) and a test split's COCO
    file alone, neither data.yaml nor splits.json."""
    data = tmp_path / "hand_made"
    (data / "annotations").mkdir(parents=True)
    (data / "images").symlink_to(tiny_dataset / "images")
    shutil.copy(tiny_dataset / "annotations" / "instances_test.json", data / "annotations")
    return data


def test_a_hand_made_data_set_of_a_test_split_alone_embeds_that_split(
    tiny_dataset, tiny_sam, tmp_path, capsys, monkeypatch
):
    # it was "a raw MVTec tree" to convert (its images/ holds train/ and test/), --splits test or not
    _embed_with(tiny_sam, monkeypatch)
    data = _hand_made(tiny_dataset, tmp_path)
    assert main(["--data", str(data), "--cache-dir", str(tmp_path / "c"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    n = len(json.loads((data / "annotations" / "instances_test.json").read_text())["images"])
    missing = "instances_train.json and instances_val.json"
    assert err == f"note: {data / 'annotations'} holds no {missing}: embedding test\n"
    assert out.startswith(f"{n} images: 0 were cached, {n} encoded")


def test_a_hand_made_data_set_lacking_a_split_is_told_which_it_has(tiny_dataset, tmp_path):
    from segmentation.data import load_split

    data = _hand_made(tiny_dataset, tmp_path)
    with pytest.raises(UserError) as error:
        load_split(data, "train")
    assert str(error.value) == (
        f"no COCO annotations at {data / 'annotations' / 'instances_train.json'}: {data / 'annotations'} "
        "holds those of test only (instances_<split>.json, split one of train, val, test)"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # the default cache: HOME, or MVTEC_FINETUNE_CACHE, which moves it
        ([], "has no passwd entry; set HOME, or MVTEC_FINETUNE_CACHE for the cache folder\n"),
        # left as it was, it cached into a folder named '~'; MVTEC_FINETUNE_CACHE, which it ignores, was named
        (["--cache-dir", "~/c"], "~/c: no home folder: HOME is not set and user id"),
    ],
)
def test_no_home_folder_is_one_line_naming_what_to_set(
    tiny_dataset, tmp_path, capsys, monkeypatch, argv, message
):
    # a container run with an arbitrary user id and no HOME: Path.home() raised RuntimeError, a traceback
    without_home(monkeypatch)
    monkeypatch.chdir(tmp_path)
    assert main(["--data", str(tiny_dataset), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert ("MVTEC_FINETUNE_CACHE" in err) == (not argv), err
    assert not (tmp_path / "~").exists()
