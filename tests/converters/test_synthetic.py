"""Tests for converters.synthetic: determinism, layout, mask/image agreement, atomic writes, CLI."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from common.io import partial_dir
from converters import synthetic
from converters.synthetic import DEFECT_TYPES, SETTINGS_FILE, SyntheticConfig, generate, main, render_sample

TINY = SyntheticConfig(size=96, n_train_good=2, n_test_good=1, n_per_defect=2)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _render_pair(defect: str, seed: int, size: int = 96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The defect render and the defect-free render of the same generator state."""
    image, mask = render_sample(defect, np.random.default_rng(seed), size)
    reference, _ = render_sample(None, np.random.default_rng(seed), size)
    return image, mask, reference


def _components(mask: np.ndarray) -> int:
    return cv2.connectedComponents((mask > 0).astype(np.uint8), connectivity=8)[0] - 1


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("tiny"), TINY, progress=False)


# --- render_sample


@pytest.mark.parametrize("defect", [None, *DEFECT_TYPES])
def test_render_sample_shapes_and_values(defect: str | None) -> None:
    image, mask = render_sample(defect, np.random.default_rng(3), 96)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert mask.shape == (96, 96) and mask.dtype == np.uint8
    assert set(np.unique(mask)) <= {0, 255}
    if defect is None:
        assert not mask.any()
    else:
        assert np.count_nonzero(mask) >= synthetic.MIN_MASK_AREA


@pytest.mark.parametrize("defect", [None, *DEFECT_TYPES])
def test_render_sample_is_deterministic(defect: str | None) -> None:
    a = render_sample(defect, np.random.default_rng(11), 80)
    b = render_sample(defect, np.random.default_rng(11), 80)
    c = render_sample(defect, np.random.default_rng(12), 80)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_render_sample_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown defect 'dent'"):
        render_sample("dent", np.random.default_rng(0), 96)
    with pytest.raises(ValueError, match="size must be >= 64"):
        render_sample(None, np.random.default_rng(0), 63)
    with pytest.raises(ValueError, match="size must be <= 4096 "):
        render_sample(None, np.random.default_rng(0), 100_000)


@settings(max_examples=12, deadline=None)
@given(
    defect=st.sampled_from(DEFECT_TYPES),
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(64, 130),
)
def test_every_defect_mask_is_binary_and_not_tiny(defect: str, seed: int, size: int) -> None:
    image, mask = render_sample(defect, np.random.default_rng(seed), size)
    assert image.shape == (size, size, 3)
    assert set(np.unique(mask)) <= {0, 255}
    assert np.count_nonzero(mask) >= synthetic.MIN_MASK_AREA


@pytest.mark.parametrize("defect", ["bent", "color", "scratch"])
def test_local_defects_change_the_image_only_inside_the_mask(defect: str) -> None:
    for seed in range(4):
        image, mask, reference = _render_pair(defect, seed)
        diff = np.abs(image.astype(int) - reference.astype(int)).max(axis=-1)
        assert diff[mask > 0].mean() > 8, "the defect must be visible where the mask says"
        # Outside the mask only antialiasing and the camera blur may leak (a couple of pixels).
        near = cv2.dilate(mask, np.ones((7, 7), np.uint8))
        assert diff[near == 0].max() <= 12
        assert (diff[near == 0] > 0).mean() < 0.01


def test_flip_changes_the_object() -> None:
    image, mask, reference = _render_pair("flip", 5)
    diff = np.abs(image.astype(int) - reference.astype(int)).max(axis=-1)
    assert diff[mask > 0].mean() > 8


def test_flip_mask_is_the_silhouette_with_a_hole() -> None:
    for seed in range(3):
        image, mask = render_sample("flip", np.random.default_rng(seed), 128)
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        outer = [i for i, h in enumerate(hierarchy[0]) if h[3] == -1]
        holes = [i for i, h in enumerate(hierarchy[0]) if h[3] != -1]
        assert len(outer) == 1 and len(holes) == 1
        hole_area = cv2.contourArea(contours[holes[0]])
        assert hole_area > 0.03 * cv2.contourArea(contours[outer[0]])
        # The hole is background, so the mask centre (hole centre) is 0 but surrounded by 255.
        m = cv2.moments(contours[holes[0]])
        cx, cy = int(m["m10"] / m["m00"]), int(m["m01"] / m["m00"])
        assert mask[cy, cx] == 0
        # The mask covers the object: bright (metal) pixels lie inside it and the mask is metal.
        grey = image.astype(float).mean(axis=-1)
        metal = grey > 70
        kernel = np.ones((5, 5), np.uint8)  # blur and antialiasing soften the edge by ~2 px
        assert (cv2.dilate(mask, kernel)[metal] > 0).mean() > 0.995
        assert metal[cv2.erode(mask, kernel) > 0].mean() > 0.99


def test_flip_is_visible_because_the_outline_is_chiral() -> None:
    profile = synthetic._outline_profile()
    mirrored = profile[::-1]
    # No rotation of the mirrored outline matches the original.
    best = min(np.abs(np.roll(mirrored, shift) - profile).max() for shift in range(profile.size))
    assert best > 0.05


def test_bent_mask_is_one_region() -> None:
    for seed in range(6):
        _, mask = render_sample("bent", np.random.default_rng(seed), 96)
        assert _components(mask) == 1


def test_color_can_make_several_stains_and_they_are_coloured() -> None:
    counts = []
    for seed in range(8):
        image, mask = render_sample("color", np.random.default_rng(seed), 128)
        counts.append(_components(mask))
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        metal = (image.mean(axis=-1) > 70) & (mask == 0)
        assert hsv[..., 1][mask > 0].mean() > hsv[..., 1][metal].mean() + 15
    assert max(counts) > 1


def test_scratch_differs_from_the_surface() -> None:
    for seed in range(4):
        image, mask, reference = _render_pair("scratch", seed)
        grey, ref_grey = image.astype(float).mean(-1), reference.astype(float).mean(-1)
        # Bright or dark, the line moves the brightness inside the mask noticeably.
        assert abs(grey[mask > 0].mean() - ref_grey[mask > 0].mean()) > 8


# --- generate


def test_layout_and_counts(tiny_set: Path) -> None:
    assert tiny_set.name == "synthetic_nut"
    expected = {"train/good/000.png", "train/good/001.png", "test/good/000.png", SETTINGS_FILE}
    for defect in DEFECT_TYPES:
        for i in range(2):
            expected |= {f"test/{defect}/{i:03d}.png", f"ground_truth/{defect}/{i:03d}_mask.png"}
    assert set(_files(tiny_set)) == expected


def test_the_settings_are_recorded_in_the_category_folder(tiny_set: Path) -> None:
    # the seed was only printed: nothing in the folder said how to draw it again
    assert json.loads((tiny_set / SETTINGS_FILE).read_text()) == {
        "written_by": "converters.synthetic",
        "category": "synthetic_nut",
        "size": 96,
        "n_train_good": 2,
        "n_test_good": 1,
        "n_per_defect": 2,
        "defects": list(DEFECT_TYPES),
        "seed": 0,
    }


def test_the_converters_ignore_the_settings_record(tmp_path: Path, tiny_set: Path) -> None:
    # the same images, classes and split as from the folder without it
    from converters.convert import ConvertConfig, convert

    bare = tmp_path / "bare" / tiny_set.name
    shutil.copytree(tiny_set, bare)
    (bare / SETTINGS_FILE).unlink()
    converted = {}
    for name, root in (("with", tiny_set.parent), ("without", bare.parent)):
        out = tmp_path / name
        convert(ConvertConfig(root=root, out=out, formats=("yolo", "coco"), link="copy", progress=False))
        coco = json.loads((out / "annotations/instances_test.json").read_text())
        converted[name] = (
            _files(out / "images"),
            _files(out / "labels"),
            json.loads((out / "splits.json").read_text()),
            [c["name"] for c in coco["categories"]],
        )
    assert converted["with"] == converted["without"]
    assert converted["with"][3] == sorted(DEFECT_TYPES)
    assert len(converted["with"][0]) == 2 + 1 + 2 * len(DEFECT_TYPES)


def test_written_masks_match_their_images(tiny_set: Path) -> None:
    checked = 0
    for defect in DEFECT_TYPES:
        for image_path in sorted((tiny_set / "test" / defect).glob("*.png")):
            checked += 1
            image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
            mask = cv2.imread(
                str(tiny_set / "ground_truth" / defect / f"{image_path.stem}_mask.png"), cv2.IMREAD_UNCHANGED
            )
            assert image.shape == (96, 96, 3) and image.dtype == np.uint8
            assert mask.shape == (96, 96) and mask.dtype == np.uint8
            assert set(np.unique(mask)) == {0, 255}
    assert checked == TINY.n_per_defect * len(DEFECT_TYPES)  # the loop saw every defect image


def test_written_image_is_the_rendered_sample(tiny_set: Path) -> None:
    rng = synthetic._sample_rng(TINY.seed, "test", "color", 1)
    image, mask = render_sample("color", rng, TINY.size)
    written = cv2.cvtColor(cv2.imread(str(tiny_set / "test/color/001.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(written, image)
    assert np.array_equal(cv2.imread(str(tiny_set / "ground_truth/color/001_mask.png"), 0), mask)


def test_generate_is_deterministic(tmp_path: Path, tiny_set: Path) -> None:
    again = generate(tmp_path / "a", TINY, progress=False)
    assert _files(again) == _files(tiny_set)
    other = _files(generate(tmp_path / "b", replace(TINY, seed=1), progress=False))
    same = _files(tiny_set)
    assert other.keys() == same.keys()
    assert all(other[k] != same[k] for k in same if not k.startswith("ground_truth"))


def test_counts_do_not_change_other_images(tmp_path: Path, tiny_set: Path) -> None:
    config = replace(TINY, n_train_good=1, n_test_good=0, n_per_defect=1, defects=("scratch", "bent"))
    files = _files(generate(tmp_path, config, progress=False))
    reference = _files(tiny_set)
    files.pop(SETTINGS_FILE)  # the settings differ: the images do not
    assert files and all(reference[name] == data for name, data in files.items())


def test_existing_folder_is_refused_then_replaced_with_overwrite(tmp_path: Path) -> None:
    config = SyntheticConfig(size=64, n_train_good=1, n_test_good=0, n_per_defect=1, defects=("color",))
    root = generate(tmp_path, config, progress=False)
    (root / "test" / "marker.txt").write_text("old")
    with pytest.raises(UserError) as caught:
        generate(tmp_path, config, progress=False)
    assert str(caught.value) == f"{root} already exists (pass overwrite=True to replace it)"
    assert (root / "test" / "marker.txt").exists()
    (root / "notes.txt").write_text("mine")  # not a category's: --overwrite would delete it
    with pytest.raises(
        UserError, match="holds notes.txt, which this command does not write: overwrite=True "
    ):
        generate(tmp_path, config, overwrite=True, progress=False)
    (root / "notes.txt").unlink()
    assert generate(tmp_path, config, overwrite=True, progress=False) == root
    assert not (root / "test" / "marker.txt").exists() and (root / "train/good/000.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [config.category]


def test_overwrite_refuses_a_real_category_of_the_same_subsets(tmp_path: Path) -> None:
    config = SyntheticConfig(size=64, n_train_good=1, n_test_good=0, n_per_defect=1, defects=("color",))
    real = tmp_path / config.category  # an MVTec category of the user's photos, under the same name
    photos = {
        name: b"photo"
        for name in ("ground_truth/cut/000_mask.png", "test/good/000.png", "train/good/000.png")
    }
    for name, data in photos.items():
        (real / name).parent.mkdir(parents=True, exist_ok=True)
        (real / name).write_bytes(data)
    with pytest.raises(UserError, match=r"holds ground_truth, test, train but no synthetic.json"):
        generate(tmp_path, config, overwrite=True, progress=False)  # deleted the photos with it
    assert _files(real) == photos


def test_overwrite_of_a_set_drawn_before_synthetic_json_says_to_delete_it_by_hand(tmp_path: Path) -> None:
    # make demo in an older runs/demo: the message called it made by hand or by another tool
    config = SyntheticConfig(size=64, n_train_good=1, n_test_good=0, n_per_defect=1, defects=("color",))
    root = generate(tmp_path, config, progress=False)
    (root / SETTINGS_FILE).unlink()  # as an older converters.synthetic left it
    before = _files(root)
    with pytest.raises(UserError) as caught:
        generate(tmp_path, config, overwrite=True, progress=False)
    assert str(caught.value) == (  # a Python caller is told the function's arguments
        f"category folder {root} holds ground_truth, test, train but no synthetic.json: a real category "
        "(its photos), which overwrite=True would delete whole, or a set an older converters.synthetic drew "
        "(before 2026-12-07), which wrote none: delete that one by hand, or choose another out or category"
    )
    assert _files(root) == before


def test_a_ctrl_c_of_an_overwrite_says_the_folder_holds_the_earlier_set(tmp_path: Path, monkeypatch, capsys):
    # it printed 'interrupted' alone: the earlier set, left whole, read as the one just asked for
    config = SyntheticConfig(size=64, n_train_good=1, n_test_good=0, n_per_defect=1, defects=("color",))
    root = generate(tmp_path, config, progress=False)
    before = _files(root)

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_write_set", stop)
    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path, replace(config, seed=1), overwrite=True, progress=False)
    assert capsys.readouterr().err == (
        f"stopped: {root} is replaced only once the data set is done, so nothing of this run was kept there; "
        "what it holds is an earlier run's\n"
    )
    assert _files(root) == before and sorted(p.name for p in tmp_path.iterdir()) == [config.category]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_file_where_the_category_folder_goes_is_refused_and_kept(tmp_path: Path, overwrite: bool) -> None:
    config = SyntheticConfig(size=64, n_train_good=1, n_test_good=0, n_per_defect=0, defects=("color",))
    (tmp_path / config.category).write_text("notes")  # --overwrite deleted it
    with pytest.raises(UserError, match=f"folder {tmp_path / config.category} is a file, not a folder"):
        generate(tmp_path, config, overwrite=overwrite, progress=False)
    assert (tmp_path / config.category).read_text() == "notes"


def test_failure_leaves_nothing_behind_and_keeps_the_old_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SyntheticConfig(size=64, n_train_good=2, n_test_good=1, n_per_defect=1)
    calls = []

    def failing_write(path: Path, array: np.ndarray) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        path.write_bytes(b"x")

    monkeypatch.setattr(synthetic, "_write_png", failing_write)
    with pytest.raises(UserError, match="cannot write .*: disk full"):
        generate(tmp_path, config, progress=False)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    root = generate(tmp_path, config, progress=False)
    before = _files(root)
    calls.clear()
    monkeypatch.setattr(synthetic, "_write_png", failing_write)
    with pytest.raises(UserError, match="cannot write .*: disk full"):
        generate(tmp_path, replace(config, seed=9), overwrite=True, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == [config.category]
    assert _files(root) == before


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": 63}, "^size must be >= 64"),
        ({"size": 100_000}, "size must be <= 4096 "),  # it ran out of memory with a traceback
        ({"n_train_good": -1}, "^n_train_good must be >= 0"),
        ({"n_per_defect": -2}, "^n_per_defect must be >= 0"),
        ({"defects": ("bent", "dent")}, "unknown defect 'dent'"),
        ({"defects": ("bent", "bent")}, "^defects listed twice"),
        ({"seed": -1}, "^seed must be >= 0"),
        ({"category": "a/b"}, "bad category name 'a/b': use letters and digits"),
        ({"size": 96.0}, "size must be an integer"),
        ({"n_train_good": True}, "n_train_good must be an integer, got True"),
        ({"defects": "bent"}, "defects must be a sequence of names, got the string 'bent'"),
        ({"category": " nut"}, "bad category name ' nut': use letters and digits"),
        ({"category": "nut."}, "bad category name 'nut.': Windows drops a '.' or space at the end"),
        ({"category": "Aux"}, "bad category name 'Aux': Windows keeps the name 'aux' for a device"),
    ],
)
def test_bad_config_raises_value_error(tmp_path: Path, changes: dict, message: str) -> None:
    config = replace(SyntheticConfig(), **changes)
    with pytest.raises(ValueError, match=message) as info:
        generate(tmp_path / "out", config, progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_zero_counts_give_the_empty_layout(tmp_path: Path) -> None:
    config = SyntheticConfig(size=64, n_train_good=0, n_test_good=0, n_per_defect=0, defects=("flip",))
    root = generate(tmp_path, config, progress=False)
    assert list(_files(root)) == [SETTINGS_FILE]
    assert (root / "test/flip").is_dir() and (root / "ground_truth/flip").is_dir()


def test_a_category_folder_that_appears_during_the_run_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SyntheticConfig(size=64, n_train_good=1, n_test_good=0, n_per_defect=0)
    root = tmp_path / config.category
    write_set = synthetic._write_set

    def concurrent_run_finishes_first(folder: Path, *args, **kwargs) -> None:
        root.mkdir()
        (root / "marker.txt").write_text("the other run's set")
        write_set(folder, *args, **kwargs)

    monkeypatch.setattr(synthetic, "_write_set", concurrent_run_finishes_first)
    with pytest.raises(UserError, match="output folder exists"):
        generate(tmp_path, config, progress=False)
    assert _files(root) == {"marker.txt": b"the other run's set"}


def test_a_thousand_images_are_numbered_with_three_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        synthetic, "render_sample", lambda defect, rng, size: (np.zeros((1, 1, 3), np.uint8), None)
    )
    config = SyntheticConfig(size=64, n_train_good=1000, n_test_good=0, n_per_defect=0)
    names = sorted(p.name for p in (generate(tmp_path, config, progress=False) / "train" / "good").iterdir())
    assert names[0] == "000.png" and names[-1] == "999.png" and len(names) == 1000


# --- CLI


def test_cli_writes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--out", str(tmp_path), "--size", "64", "--n-train-good", "1", "--n-test-good", "1"]
    argv += ["--n-per-defect", "1", "--defects", "scratch", "flip", "--category", "nut", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "nut") in out and "test/scratch 1" in out
    assert (tmp_path / "nut/ground_truth/flip/000_mask.png").exists()
    assert not (tmp_path / "nut/test/bent").exists()

    assert main(argv) == 2  # it said 'pass overwrite=True (--overwrite)', the Python API's words
    assert (
        capsys.readouterr().err
        == f"error: {tmp_path / 'nut'} already exists (pass --overwrite to replace it)\n"
    )
    assert main([*argv, "--overwrite"]) == 0
    (tmp_path / "nut" / "notes.txt").write_text("mine")
    assert main([*argv, "--overwrite"]) == 2
    assert "holds notes.txt, which this command does not write: --overwrite " in capsys.readouterr().err
    (tmp_path / "nut" / "notes.txt").unlink()
    (tmp_path / "nut" / "synthetic.json").unlink()  # as an older converters.synthetic left it
    assert main([*argv, "--overwrite"]) == 2
    assert capsys.readouterr().err.endswith(
        "which --overwrite would delete whole, or a set an older converters.synthetic drew "
        "(before 2026-12-07), which wrote none: delete that one by hand, or choose another --out or "
        "--category\n"
    )


def test_a_repeated_defects_flag_adds_to_the_list_and_none_is_every_type(tmp_path: Path, capsys) -> None:
    # --defects scratch --defects flip drew flip alone (argparse kept the last flag), silently
    argv = [
        "--size",
        "64",
        "--n-train-good",
        "1",
        "--n-test-good",
        "1",
        "--n-per-defect",
        "1",
        "--no-progress",
    ]
    assert main(["--out", str(tmp_path / "two"), *argv, "--defects", "scratch", "--defects", "flip"]) == 0
    assert sorted(p.name for p in (tmp_path / "two" / "synthetic_nut" / "test").iterdir()) == [
        "flip",
        "good",
        "scratch",
    ]
    assert main(["--out", str(tmp_path / "all"), *argv]) == 0
    drawn = {p.name for p in (tmp_path / "all" / "synthetic_nut" / "test").iterdir()}
    assert drawn == {"good", *SyntheticConfig().defects}
    capsys.readouterr()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # the options named as given, not as SyntheticConfig's fields ('n_per_defect must be >= 0')
        (["--size", "10"], "--size must be >= 64, got 10"),
        (["--size", "5000"], "--size must be <= 4096 (about 2 GB of memory per image there), got 5000"),
        (["--n-train-good", "-1"], "--n-train-good must be >= 0, got -1"),
        (["--n-test-good", "-1"], "--n-test-good must be >= 0, got -1"),
        (["--n-per-defect", "-1"], "--n-per-defect must be >= 0, got -1"),
        (["--defects", "bent", "bent"], "--defects listed twice: bent, bent"),
        (["--defects", "dent"], "unknown defect 'dent'; expected some of bent, color, flip, scratch"),
        (["--seed", "-3"], "--seed must be >= 0, got -3"),
    ],
)
def test_cli_bad_input_returns_2_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["--out", str(tmp_path / "o"), "--no-progress", *extra]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("defects", "expected"),
    [
        # config keys offered the closest name; a defect type's typo got the list alone
        (
            ["scrach"],
            "unknown defect 'scrach' (did you mean 'scratch'?); expected some of bent, color, flip, scratch",
        ),
        (["bent", "colour"], "unknown defect 'colour' (did you mean 'color'?); expected some of bent,"),
        (["dent"], "unknown defect 'dent'; expected some of bent, color, flip, scratch"),  # none close enough
    ],
)
def test_cli_a_mistyped_defect_type_is_offered_the_closest(tmp_path: Path, capsys, defects, expected) -> None:
    assert main(["--out", str(tmp_path / "o"), "--no-progress", "--defects", *defects]) == 2
    assert capsys.readouterr().err.startswith(f"error: {expected}")
    with pytest.raises(UserError, match=r"^unknown defect 'flp' \(did you mean 'flip'\?\); expected one of "):
        render_sample("flp", np.random.default_rng(0), 96)


def test_cli_argparse_errors_return_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--size", "big"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --size: invalid int value: 'big'") and err.count("\n") == 1
    assert main([]) == 2  # --out is required


def test_an_empty_out_is_refused_not_the_working_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    # --out '' (an unset shell variable) wrote ./synthetic_nut into the working folder
    monkeypatch.chdir(tmp_path)
    assert main(["--out", "", "--size", "64", "--n-train-good", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --out: is empty (''; an unset shell variable?)")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_quoted_tilde_out_is_the_home_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    # --out '~/s' wrote a folder named ~ in the working folder
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    argv = ["--out", "~/s", "--size", "64", "--n-train-good", "1", "--n-test-good", "0"]
    assert main([*argv, "--n-per-defect", "0", "--no-progress"]) == 0
    assert (tmp_path / "home/s/synthetic_nut/train/good/000.png").exists()
    assert not (tmp_path / "~").exists()
    assert str(tmp_path / "home/s/synthetic_nut") in capsys.readouterr().out


def test_leftovers_of_a_killed_run_are_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = SyntheticConfig(size=64, n_train_good=1, n_test_good=0, n_per_defect=0, defects=("color",))
    build = partial_dir(tmp_path / config.category)
    dead = build.with_name(build.name.replace(f"-{os.getpid()}-", "-999999999-"))  # its writer is gone
    build.rename(dead)
    live = partial_dir(tmp_path / config.category)  # a concurrent run's: kept
    generate(tmp_path, config, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([config.category, live.name])
    err = capsys.readouterr().err
    assert f"note: removed 1 unfinished build of {tmp_path / config.category} left by a killed run" in err


def test_unwritable_out_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    config = SyntheticConfig(size=64, n_train_good=1, n_test_good=0, n_per_defect=0)
    with pytest.raises(UserError, match="cannot create folder .*file/synthetic_nut: .*file is a file"):
        generate(tmp_path / "file", config, progress=False)
    assert main(["--out", str(tmp_path / "file" / "deeper"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot create folder") and err.count("\n") == 1


@pytest.mark.parametrize("flag", ["--n-train-good", "--n-test-good", "--n-per-defect", "--seed"])
def test_each_number_option_s_help_says_what_it_sets(capsys, flag):
    # their help was '(40)', the default alone: which images a count counts was nowhere on the screen
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse's wrapping undone
    said = help_text.split(f"{flag} {flag[2:].upper().replace('-', '_')} ", 1)[1].split(" --", 1)[0]
    default = f" ({getattr(SyntheticConfig(), flag[2:].replace('-', '_'))})"
    assert said.endswith(default) and said.removesuffix(default), f"{flag}: {said!r}"  # a meaning, then it
