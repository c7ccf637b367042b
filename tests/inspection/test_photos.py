"""What ``--source`` names, and one unique output name per photo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.errors import UserError
from inspection.photos import check_photos, find_photos


def bad_name(path: Path) -> Path:
    """Renames ``path`` to ``bad\\xff<suffix>`` (a byte no UTF-8 name holds); skips where refused."""
    target = path.with_name(os.fsdecode(b"bad\xff") + path.suffix)
    try:
        path.rename(target)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    return target


def names(photos) -> list[tuple[str, str, int]]:
    return [(p.file_name, p.name, p.image_id) for p in photos]


def test_a_folder_is_searched_recursively_and_sorted(photos):
    (photos / "notes.txt").write_text("not a photo")
    (photos / ".hidden.png").write_bytes(b"")  # an editor's or a killed run's leftover
    assert names(find_photos(photos)) == [
        ("good.png", "good", 1),
        ("lot_2/a.png", "lot_2__a", 2),
        ("one.png", "one", 3),
        ("two.png", "two", 4),
    ]


def test_a_photo_name_that_is_not_utf8_is_refused_naming_its_folder(photos):
    # images.json and predictions.json carried it as "\udcff", which JSON readers refuse or mangle
    bad = bad_name(photos / "lot_2" / "a.png")
    for source in (photos, bad, f"{photos}/**/*.png"):
        with pytest.raises(
            UserError, match=r"^.*lot_2 holds a name that is not UTF-8, b'bad\\xff.png': rename it"
        ):
            find_photos(source)


def test_a_photo_folder_whose_name_is_not_utf8_is_refused(photos):
    # only names below the given folder were checked: predict.json recorded the folder as "\udcff"
    folder = bad_name(photos / "lot_2")
    for source in (folder, folder / "a.png", f"{folder}/*.png"):
        with pytest.raises(
            UserError, match=rf"^{photos} holds a name that is not UTF-8, b'bad\\xff': rename it"
        ):
            find_photos(source)


def test_a_folder_name_below_the_source_that_is_not_utf8_is_refused(photos):
    # the photo's own name is fine: its folder's goes into images.json too ("bad\udcff/a.png"); a single
    # file in such a folder is refused as well (test_a_photo_folder_whose_name_is_not_utf8_is_refused)
    bad_name(photos / "lot_2")
    for source in (photos, f"{photos}/**/*.png"):
        with pytest.raises(UserError, match=r"holds a name that is not UTF-8, b'bad\\xff': rename it"):
            find_photos(source)


def test_a_single_file_is_named_by_itself(photos):
    (found,) = find_photos(photos / "lot_2" / "a.png")
    assert (found.file_name, found.name, found.image_id) == ("a.png", "a", 1)


def test_a_glob_is_relative_to_its_folder(photos, monkeypatch):
    assert names(find_photos(f"{photos}/**/a.png")) == [("lot_2/a.png", "lot_2__a", 1)]
    assert names(find_photos(f"{photos}/t*.png")) == [("two.png", "two", 1)]
    monkeypatch.chdir(photos)
    assert names(find_photos("*.png")) == [
        ("good.png", "good", 1),
        ("one.png", "one", 2),
        ("two.png", "two", 3),
    ]


@pytest.mark.parametrize(
    ("layout", "fragment"),
    [
        (["a__b/c.png", "a/b__c.png"], "one output name 'a__b__c'"),  # folders flatten alike
        (["x.png", "x.jpg"], "two photos map to one output name 'x'"),  # one stem, two formats
        (["Lot/x.png", "lot/x.png"], "two photos map to one output name"),  # equal ignoring case
    ],
)
def test_photos_that_would_share_an_output_name_are_refused_naming_both(
    tmp_path, photo_painter, layout, fragment
):
    for name in layout:
        photo_painter(tmp_path / "in" / name)
    with pytest.raises(UserError, match=fragment) as error:
        find_photos(tmp_path / "in")
    assert all(str(tmp_path / "in" / name) in str(error.value) for name in layout)


def test_a_photo_deep_in_folders_whose_name_would_be_too_long_is_refused_up_front(tmp_path, photo_painter):
    # each folder's name is short, but they join into the photo's output name: 12 x 20 bytes
    deep = tmp_path / "in" / Path(*[f"batch_{i:02d}_line_seven"[:18] for i in range(12)]) / "a.png"
    photo_painter(deep)
    with pytest.raises(UserError, match=f"output files of {deep} would be named after"):
        find_photos(tmp_path / "in")
    assert find_photos(deep.parent)[0].name == "a"  # a folder nearer to it


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("empty", "no image files"),
        ("missing", "source not found"),
        ("empty/*.png", "matches no image files"),
    ],
)
def test_nothing_to_inspect_is_a_user_error(tmp_path, source, fragment):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no photos here")
    with pytest.raises(UserError, match=fragment):
        find_photos(f"{tmp_path}/{source}")


def test_check_photos_names_a_corrupt_one(photos):
    (photos / "lot_2" / "cut.png").write_bytes((photos / "one.png").read_bytes()[:200])  # truncated
    with pytest.raises(UserError, match="cut.png"):
        check_photos(find_photos(photos), progress=False)


def test_check_photos_names_every_corrupt_one_in_one_line(photos):
    # it stopped at the first: three bad photos took three runs to find
    cut = photos / "lot_2" / "cut.png"
    cut.write_bytes((photos / "one.png").read_bytes()[:200])  # truncated
    empty = photos / "zero.png"
    empty.write_bytes(b"")
    with pytest.raises(UserError) as error:
        check_photos(find_photos(photos), progress=False)
    message = str(error.value)
    assert message.startswith(f"cannot read 2 photos: {cut} (corrupt or not an image (")
    assert message.endswith(f"), {empty} (the file is empty)") and "\n" not in message


def test_check_photos_refuses_a_tiff_that_pil_reads_but_opencv_cannot(photos):
    # 32-bit floating-point samples: PIL reads them, OpenCV (which the models read photos with) does not,
    # so the photo passed the check and stopped the run when reached, the models loaded and photos done
    import numpy as np
    from PIL import Image

    from common.images import image_size

    path = photos / "lot_2" / "float.tif"
    Image.fromarray(np.linspace(0, 1, 60 * 80, dtype=np.float32).reshape(60, 80)).save(path)
    assert image_size(path) == (80, 60)
    with pytest.raises(UserError) as error:
        check_photos(find_photos(photos), progress=False)
    assert str(error.value).startswith(f"cannot decode image {path}: OpenCV cannot read it (")
    assert str(error.value).endswith("can not handle images with 32-bit samples)")  # OpenCV's log head cut


@pytest.mark.parametrize("progress", [True, False])
def test_check_photos_shows_a_progress_bar_only_when_asked(photos, capsys, progress):
    check_photos(find_photos(photos), progress=progress, desc="checking")
    assert ("checking" in capsys.readouterr().err) == progress


def test_check_photos_warns_of_12_bit_data_in_16_bit_files(tmp_path, capsys):
    import cv2
    import numpy as np

    folder = tmp_path / "lot"
    folder.mkdir()
    camera = np.full((8, 8, 3), 4000, np.uint16)  # 12-bit data: read by dropping 8 bits, grey level 15
    cv2.imwrite(str(folder / "camera.png"), camera)
    cv2.imwrite(str(folder / "full.png"), camera * 16)  # the full 16-bit range: read fine, no warning
    check_photos(find_photos(folder), progress=False)
    err = capsys.readouterr().err
    assert err.startswith("warning: 1 photo is 16-bit with every value below 4096") and "camera.png" in err
    cv2.imwrite(str(folder / "camera.png"), camera * 16)
    check_photos(find_photos(folder), progress=False)
    assert capsys.readouterr().err == ""
