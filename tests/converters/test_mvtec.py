from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from common.errors import UserError
from converters.mvtec import ImageRecord, check_output_stems, list_categories, scan, scan_category
from tests.conftest import assert_link_loop_line


def test_scan_pairs_by_stem_across_extensions(tmp_path, category_factory):
    category_factory(tmp_path, "widget", image_ext=".jpg")
    records = scan_category(tmp_path, "widget")
    defects = [r for r in records if not r.is_good]
    assert len(records) == 4 + 2 + 10 and len(defects) == 10
    for record in defects:
        assert record.image.suffix == ".jpg" and record.mask.name == f"{record.image.stem}_mask.png"
    assert {r.subset for r in records if r.is_good} == {"train", "test"}
    assert len({r.key for r in records}) == len(records)


def test_root_may_be_a_category_or_hold_several(tmp_path, category_factory):
    category_factory(tmp_path, "alpha")
    category_factory(tmp_path, "beta")
    assert list_categories(tmp_path) == ["alpha", "beta"]
    assert list_categories(tmp_path / "alpha") == ["alpha"]
    assert {r.category for r in scan(tmp_path)} == {"alpha", "beta"}
    assert {r.category for r in scan(tmp_path / "beta")} == {"beta"}


@pytest.mark.parametrize(
    ("cwd", "root"), [("widget", "."), ("widget", "./"), ("widget/test", ".."), (".", "widget/test/..")]
)
def test_a_category_given_as_dot_or_dot_dot_is_named_as_its_folder(
    tmp_path, category_factory, monkeypatch, cwd, root
):
    # `cd widget; mvtec2yolo --root .` named the category '' (keys '/test/crack/000', files '_test_...')
    category_factory(tmp_path, "widget")
    monkeypatch.chdir(tmp_path / cwd)
    assert list_categories(root) == ["widget"]
    assert {r.key.split("/")[0] for r in scan(root)} == {"widget"}


def test_exclude_defects(tmp_path, category_factory):
    category_factory(tmp_path, "widget")
    records = scan_category(tmp_path, "widget", exclude_defects=["hole"])
    assert {r.defect for r in records} == {"good", "scratch"}


def test_an_exclusion_found_in_no_category_is_an_error(tmp_path, category_factory, mask_factory):
    category_factory(tmp_path, "alpha")  # scratch, hole
    category_factory(tmp_path, "beta", defects={"crack": [mask_factory(48, 64, [(5, 5, 15, 9)])]})
    # "hole" is in alpha alone: found once is enough
    assert {r.defect for r in scan(tmp_path, exclude_defects=["hole"])} == {"good", "scratch", "crack"}
    # a typo left every image in, silently
    message = r"--exclude-defect scratchh: no such defect type .*excludable: crack, hole, scratch"
    with pytest.raises(UserError, match=message):
        scan(tmp_path, exclude_defects=["hole", "scratchh"])


def test_real_hazelnut_tree(hazelnut_root):
    records = scan(hazelnut_root)
    assert len(records) == 28 + 6 + 17
    assert all(r.image.suffix == ".jpg" and r.mask.suffix == ".png" for r in records if not r.is_good)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda c: (c / "ground_truth/scratch/002_mask.png").unlink(),
            "defect image has no mask: .*scratch/002.png",
        ),
        (lambda c: (c / "test/scratch/003.png").unlink(), "mask has no image: .*scratch/003_mask.png"),
        (lambda c: __import__("shutil").rmtree(c / "test/hole"), "mask has no image: .*hole/000_mask.png"),
        (lambda c: (c / "test/scratch/001.jpg").write_bytes(b""), "two images share the stem '001'"),
        (  # copied from a case-insensitive file system: the twin is named
            lambda c: (m := c / "ground_truth/scratch/000_mask.png").rename(m.with_name("000_MASK.PNG")),
            r"no mask: .*scratch/000.png \(expected .*/000_mask.png; found .*scratch/000_MASK.PNG, "
            "whose name differs in case: rename it",
        ),
        (
            lambda c: (c / "ground_truth/scratch").rename(c / "ground_truth/Scratch"),
            r"no mask: .*scratch/000.png \(expected .*; found .*ground_truth/Scratch, whose name differs",
        ),
        (  # named on macOS ('a' and a combining mark), the photos' folder not: both print 'fläck', and
            # the error said 'expected .../fläck/000_mask.png' beside the folder that looked like it
            lambda c: (
                (c / "test/scratch").rename(c / "test" / unicodedata.normalize("NFC", "fläck")),
                (c / "ground_truth/scratch").rename(
                    c / "ground_truth" / unicodedata.normalize("NFD", "fläck")
                ),
            ),
            r"no mask: .*/000.png \(expected .*/000_mask.png; found .*ground_truth/fla\u0308ck, whose name "
            r"is coded in another Unicode form \(NFD, not NFC\): rename it\)",
        ),
        # named with a suffix of its own: 'expected .../000_mask.png' alone did not say which file was meant
        *(
            (
                lambda c, name=name: (m := c / "ground_truth/scratch/000_mask.png").rename(m.with_name(name)),
                rf"no mask: .*scratch/000.png \(expected .*scratch/000_mask.png; found {name}: rename it "
                r"000_mask.png\)$",
            )
            for name in ("000-mask.png", "000 mask.png", "000_gt.png", "000_mask_1.png")
        ),
    ],
)
def test_pairing_errors_name_the_file(tmp_path, category_factory, damage, message):
    damage(category_factory(tmp_path, "widget"))
    with pytest.raises(UserError, match=message):
        scan_category(tmp_path, "widget")


@pytest.mark.parametrize("inner", ["test", "test/scratch", "ground_truth/hole"])
def test_a_root_inside_a_category_names_the_category_folder(tmp_path, category_factory, inner):
    # it listed every layout's folders, as for a folder of no data set at all
    category = category_factory(tmp_path, "widget")
    inside = f"it is inside the category folder {category}; pass --root {category}$"
    message = f"no category folders under .*: {inside}"
    with pytest.raises(UserError, match=message):
        scan(category / inner)


def test_unknown_and_empty_categories(tmp_path, category_factory):
    category_factory(tmp_path, "widget")
    with pytest.raises(UserError, match="unknown category 'gadget' .*categories under it: widget"):
        scan(tmp_path, ["gadget"])
    (tmp_path / "empty" / "test").mkdir(parents=True)
    with pytest.raises(UserError, match="category 'empty' has no images"):
        scan(tmp_path, ["empty"])
    with pytest.raises(UserError, match="no category folders"):
        scan(tmp_path / "widget" / "test" / "good")
    with pytest.raises(UserError, match="does not exist"):
        scan(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("asked", "hint"),
    [
        ("widgett", "; did you mean 'widget'?; categories under it: gadget, widget"),  # a typo
        (
            "Widget",
            "; did you mean 'widget'?; categories under it: gadget, widget",
        ),  # MVTec's names are lower
        ("sprocket", "; categories under it: gadget, widget"),  # like none: the list alone
    ],
)
def test_an_unknown_category_names_the_one_it_likely_means(tmp_path, category_factory, asked: str, hint: str):
    # with MVTec AD's 15 categories listed, a typo of one was left for the user to find among them
    category_factory(tmp_path, "widget")
    category_factory(tmp_path, "gadget")
    with pytest.raises(UserError) as refused:
        scan(tmp_path, [asked])
    assert str(refused.value) == f"unknown category '{asked}' in {tmp_path}{hint}"


def test_an_unknown_category_in_another_unicode_form_is_said_so(tmp_path, category_factory):
    # a folder named on macOS ('ha' + a combining diaeresis) and the name typed with one 'ä': both print
    # alike, and the error said "unknown category 'häzel' in ...; categories under it: häzel"
    on_disk, typed = unicodedata.normalize("NFD", "häzel"), unicodedata.normalize("NFC", "häzel")
    category_factory(tmp_path, on_disk)
    with pytest.raises(UserError) as refused:
        scan(tmp_path, [typed])
    assert str(refused.value) == (
        f"unknown category '{typed}' in {tmp_path}; the folder {tmp_path / on_disk} has this name with its "
        "letters coded in another Unicode form (NFD, as macOS and some archives write accents; NFC typed): "
        "type the name by tab completion, or rename the folder"
    )


@pytest.mark.parametrize(
    ("contents", "holds"),
    [
        ((), "it is empty"),
        (("notes.txt", "images/"), "it holds images, notes.txt, not train/good/ and test/"),
        # a macOS zip's folder is not read, so it is not said to be held: 'it holds __MACOSX, images'
        (("__MACOSX/", "images/"), "it holds images, not train/good/ and test/"),
        (("__MACOSX/",), "it is empty"),
    ],
)
def test_a_category_folder_that_is_no_category_is_named_as_such(
    tmp_path, category_factory, contents: tuple[str, ...], holds: str
):
    # anomaly.train --category cat with an empty cat/: "unknown category 'cat' ...; it holds no category
    # folders", as if cat/ were not there
    category_factory(tmp_path, "widget")
    folder = tmp_path / "cat"
    folder.mkdir()
    for name in contents:
        (folder / name).mkdir() if name.endswith("/") else (folder / name).write_text("x")
    with pytest.raises(UserError) as refused:
        scan(tmp_path, ["cat"])
    assert str(refused.value).startswith(
        f"unknown category 'cat' in {tmp_path}; {folder} is there but is no category folder ({holds}"
    )
    assert str(refused.value).endswith(f"; categories in {tmp_path}: widget")


def test_a_category_of_another_layout_than_the_forced_one_is_named_as_such(tmp_path, category_factory):
    # it said the folder held "not train/good/ and test/<defect>/", which it holds
    folder = category_factory(tmp_path, "widget")
    with pytest.raises(UserError) as refused:
        scan(tmp_path, ["widget"], layout="kolektor_sdd")
    assert str(refused.value) == (
        f"unknown KolektorSDD category 'widget' in {tmp_path}; {folder} is there but is no category folder "
        "(it holds ground_truth, test, train: a category of MVTec AD (--layout mvtec_ad), not kosNN/ folders "
        "of <stem>.jpg and <stem>_label.bmp)"
    )


def test_a_renamed_category_folder_given_as_root_is_named_as_the_category_it_is(tmp_path, category_factory):
    # anomaly.evaluate --root <the run's category folder, renamed>: "categories under it: widget_moved"
    category = category_factory(tmp_path, "widget")
    moved = category.rename(tmp_path / "widget_moved")
    with pytest.raises(UserError) as refused:
        scan(moved, ["widget"])
    assert str(refused.value) == (
        f"unknown category 'widget' in {moved}; it is itself the category 'widget_moved' (pass --category "
        "widget_moved)"
    )
    assert len(scan(moved, ["widget_moved"])) > 0
    # a category asked for in a root that is not there: it said "it holds no category folders"
    with pytest.raises(UserError, match=r"^data root does not exist or is not a folder: .*nowhere$"):
        scan_category(tmp_path / "nowhere", "widget")


@pytest.mark.parametrize("through", ["", "x"])
def test_a_data_root_through_a_link_loop_is_named(link_loop, through):
    # it said 'data root does not exist or is not a folder: loop', of a link that is there
    root = link_loop / through if through else link_loop
    for call in (lambda: scan(root), lambda: scan_category(root, "widget"), lambda: list_categories(root)):
        with pytest.raises(UserError) as error:
            call()
        assert_link_loop_line(f"error: {error.value}\n", f"data root {root}", link_loop)


@pytest.mark.parametrize("name", ["mvtec_anomaly_detection.tar.xz", "VisA_20220922.TAR", "lot 7.zip"])
def test_a_data_root_that_is_a_downloaded_archive_is_told_to_be_extracted(tmp_path, name):
    # it said 'data root does not exist or is not a folder', of a file the user had just downloaded
    archive = tmp_path / name
    archive.write_bytes(b"PK\x03\x04")
    message = f"data root {archive} is an archive file: extract it, then pass the folder it unpacks"
    for call in (lambda: scan(archive), lambda: scan_category(archive, "widget")):
        with pytest.raises(UserError) as error:
            call()
        assert str(error.value) == message
    other = tmp_path / "notes.txt"  # any other file: as before
    other.write_text("x")
    with pytest.raises(UserError, match=r"^data root does not exist or is not a folder: .*notes.txt$"):
        scan(other)


def test_two_masks_for_one_stem_are_an_error(tmp_path, category_factory):
    mask = category_factory(tmp_path, "widget") / "ground_truth" / "hole" / "001_mask.png"
    mask.with_suffix(".bmp").write_bytes(mask.read_bytes())  # which one is the truth? refuse to guess
    with pytest.raises(UserError, match="two masks for one stem '001': .*001_mask.bmp and .*001_mask.png"):
        scan_category(tmp_path, "widget")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a_b", "c"), ("a", "b_c")),  # underscores in the defect and the stem join alike
        (("dent", "X1"), ("Dent", "x1")),  # one name on a case-insensitive file system
        (("dent", "\u00e9"), ("dent", "e\u0301")),  # é composed and decomposed: one name on macOS
    ],
)
def test_output_name_collisions_name_both_sources(tmp_path, first, second):
    records = [
        ImageRecord(tmp_path / "test" / d / f"{s}.png", "widget", "test", d) for d, s in (first, second)
    ]
    with pytest.raises(UserError, match="two images map to one output name") as error:
        check_output_stems(records)
    assert all(str(r.image) in str(error.value) for r in records)


def test_distinct_output_names_pass(tmp_path, category_factory):
    category_factory(tmp_path, "widget")
    check_output_stems(scan(tmp_path))


def test_a_root_named_like_the_category_it_holds_is_not_taken_for_it(tmp_path, category_factory):
    category_factory(tmp_path / "widget", "widget")
    records = scan(tmp_path / "widget", ["widget"])
    assert records and all(r.image.is_relative_to(tmp_path / "widget" / "widget") for r in records)


def test_several_masks_without_images_are_counted(tmp_path, category_factory):
    category = category_factory(tmp_path, "widget")
    (category / "test" / "hole" / "001.png").unlink()
    (category / "test" / "hole" / "002.png").unlink()
    with pytest.raises(
        UserError, match=r"mask has no image: .*hole/001_mask.png \(expected .*\) \(and 1 more\)"
    ):
        scan_category(tmp_path, "widget")


def test_files_beside_the_subset_folders_are_ignored(tmp_path, category_factory):
    category = category_factory(tmp_path, "widget")
    for folder in ("train", "test", "ground_truth"):
        (category / folder / ".DS_Store").write_bytes(b"\0")
    assert len(scan_category(tmp_path, "widget")) == 4 + 2 + 10


def _unlabelled_scratch(tmp_path, category_factory):
    """``widget`` whose defect type ``scratch`` has photos but no masks (nobody labelled it yet),
    and one ``hole`` photo whose mask is missing."""
    import shutil

    category = category_factory(tmp_path, "widget")
    shutil.rmtree(category / "ground_truth" / "scratch")
    (category / "ground_truth" / "hole" / "004_mask.png").unlink()
    return category


def test_a_defect_image_without_a_mask_is_kept_only_when_asked(tmp_path, category_factory):
    # the anomaly package fits on good photos alone: it stopped at the first defect photo without a mask
    _unlabelled_scratch(tmp_path, category_factory)
    with pytest.raises(UserError, match=r"defect image has no mask: .*hole/004.png"):
        scan_category(tmp_path, "widget")
    records = scan_category(tmp_path, "widget", allow_missing_masks=True)
    missing = sorted(r.key for r in records if r.mask_missing)
    assert missing == ["widget/test/hole/004", *(f"widget/test/scratch/{i:03d}" for i in range(5))]
    assert all(r.mask is None and r.mask_files == () and not r.is_good for r in records if r.mask_missing)
    assert sum(1 for r in records if r.mask is not None) == 4  # hole's masked photos keep their mask
    assert not any(r.mask_missing for r in records if r.is_good)


def test_a_mask_without_its_image_is_refused_even_when_masks_are_optional(tmp_path, category_factory):
    category = _unlabelled_scratch(tmp_path, category_factory)
    (category / "test" / "hole" / "000.png").unlink()
    with pytest.raises(UserError, match=r"mask has no image: .*hole/000_mask.png"):
        scan_category(tmp_path, "widget", allow_missing_masks=True)


def test_the_converters_command_line_still_refuses_a_defect_image_without_a_mask(
    tmp_path, category_factory, capsys
):
    # a converted data set needs every defect's mask: only the anomaly package asks to do without
    from converters.mvtec2yolo import main as mvtec2yolo

    _unlabelled_scratch(tmp_path / "data", category_factory)
    argv = ["--root", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--no-progress"]
    assert mvtec2yolo(argv) == 2
    assert "error: defect image has no mask: " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_root_whose_parent_cannot_be_listed_is_said_to_hold_no_categories(tmp_path, monkeypatch):
    # the probe of the parent for categories beside the root said 'Permission denied: <parent>' (exit 1)
    import os

    import converters.records

    (tmp_path / "parent" / "empty").mkdir(parents=True)
    listed = os.scandir

    def scandir(folder="."):
        if Path(folder) == tmp_path / "parent":
            raise PermissionError(13, "Permission denied", str(folder))
        return listed(folder)

    monkeypatch.setattr(converters.records.os, "scandir", scandir)
    with pytest.raises(UserError, match=r"^no category folders under .*parent/empty; looked for "):
        scan(tmp_path / "parent" / "empty")
