"""An --out beside the photos of a --source: refused where a later run would read its images, or where it
holds the photos."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import UserError
from common.folders import output_name
from common.out_folders import (
    check_holds_no_photos,
    check_not_read_as_photos,
    check_out_of_photos,
    pattern_could_match,
)
from common.photo_sources import photo_files


def write_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    return path


@pytest.mark.parametrize("source", ["lots", "lots/**/*.png"])  # a folder, a recursive pattern
@pytest.mark.parametrize("out", ["lots/latest", "lots/latest/sub"])
def test_an_out_linked_into_the_photo_folder_is_refused(tmp_path, monkeypatch, out, source) -> None:
    # was: only the resolved --out (runs/r1) was held against the folder, so it passed, and the next run
    # read its files as photos: the search follows the link, under its name
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "a.png")
    write_png(tmp_path / "runs" / "r1" / "sub" / "b.png")  # a file the run could write
    (tmp_path / "lots" / "latest").symlink_to(tmp_path / "runs" / "r1", target_is_directory=True)
    assert Path("lots/latest/sub/b.png") in photo_files(source)[0]
    inside, lots = tmp_path.resolve() / out, tmp_path.resolve() / "lots"
    read = "masks" if source.endswith(".png") else "overlays and masks"  # its overlays are .jpg
    with pytest.raises(
        UserError,
        match=rf"^output folder {re.escape(str(inside))} is inside the photo folder {re.escape(str(lots))}, "
        f"where a later run would read its {read};",
    ):
        check_out_of_photos(out, source, later="read its {}", images=IMAGES)


@pytest.mark.parametrize("out", ["lots/sub/../../runs/r2", "lots/latest/../r2"])
def test_an_out_spelled_out_of_the_photo_folder_passes(tmp_path, monkeypatch, out) -> None:
    # a '..' below the folder: where it leads is the links' to say (lots/latest/.. is runs), so the
    # spelling alone does not put it inside
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "a.png")
    (tmp_path / "lots" / "sub").mkdir()
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "lots" / "latest").symlink_to(tmp_path / "runs" / "r1", target_is_directory=True)
    assert (
        check_out_of_photos(out, "lots", later="read its {}", images=IMAGES)
        == (tmp_path / "runs" / "r2").resolve()
    )


@pytest.mark.parametrize(
    ("source", "out", "message"),
    [
        ("photos", "photos", r"holds the photos \("),  # --overwrite would delete them
        ("photos", ".", r"holds the run \("),  # holds both: the kept folder is named first
        ("photos", "run/sub", r"holds the run \("),
        ("photos", "photos/pred", "is inside the photo folder .*, where a later run would read its overlays"),
        ("photos/**/*", "photos/pred", "is inside the photo folder"),  # a ** pattern is recursive
        ("photos/one.png", "photos", r"holds the photos \("),  # a file: its own root
    ],
)
def test_an_out_holding_or_inside_the_photos_is_refused(tmp_path, monkeypatch, source, out, message) -> None:
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "photos" / "one.png")
    (tmp_path / "run" / "sub").mkdir(parents=True)
    with pytest.raises(
        UserError, match=rf"^output folder {re.escape(str((tmp_path / out).resolve()))} {message}"
    ):
        check_out_of_photos(
            out,
            source,
            later="read its {}",
            images={"overlays/*.jpg": "overlays"},
            kept=[(Path("run/sub"), "the run")],
        )


@pytest.mark.parametrize(
    ("source", "out"),
    [
        ("photos/*.png", "photos/pred"),  # a pattern without ** reads no folder below
        ("photos/one.png", "photos/pred"),  # a single photo
        ("photos", "elsewhere/pred"),
    ],
)
def test_an_out_clear_of_the_photos_comes_back_resolved(tmp_path, monkeypatch, source, out) -> None:
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "photos" / "one.png")
    assert (
        check_out_of_photos(out, source, later="read its {}", images={"overlays/*.jpg": "overlays"})
        == (tmp_path / out).resolve()
    )


@pytest.mark.parametrize("source", ["photos", "photos/**/*.jpg"])
@pytest.mark.parametrize(("out", "where"), [("photos", "is the photo folder"), ("photos/pred", "is inside")])
def test_an_out_read_as_photos_says_what_a_later_run_would_read(tmp_path, monkeypatch, source, out, where):
    # detection.predict refused it with no reason: '--out ... is inside the photo folder ...'
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "photos" / "one.png")
    with pytest.raises(
        UserError,
        match=rf"^output folder {re.escape(str((tmp_path / out).resolve()))} {where}.*, where a later run "
        "would read its overlays as photos; choose another --out$",
    ):
        check_not_read_as_photos(
            out, source, later="read its {} as photos", images={"overlays/*.jpg": "overlays"}
        )


@pytest.mark.parametrize("source", ["photos", "photos/**/*.png", "photos/*/*.jpg"])
def test_an_out_writing_no_image_is_never_read_as_photos(tmp_path, monkeypatch, source) -> None:
    # detection.predict --overlays 0 (its JSON files alone) was refused inside the photo folder
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "photos" / "one.png")
    for out in ("photos", "photos/pred"):
        check_not_read_as_photos(out, source, later="read its {} as photos", images={})


#: What a command writes in its --out, each with what it is.
IMAGES = {"overlays/*.jpg": "overlays", "masks/*/*.png": "masks"}


@pytest.mark.parametrize(
    ("source", "out", "what"),
    [
        ("lots/*/*/*.jpg", "lots/run", "overlays"),
        # was 'read it' whatever matched: a command without overlays said a later run would read them
        ("lots/*/*/*/*.png", "lots/run", "masks"),
        ("lots/**/*", "lots/run", "overlays and masks"),  # inside the folder ** searches
        ("lots/**/*.png", "lots/run", "masks"),  # was 'overlays and masks': its overlays are .jpg
    ],
)
def test_a_refused_out_names_the_images_a_later_run_would_read(tmp_path, monkeypatch, source, out, what):
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "line_1" / "cam" / "a.jpg")
    with pytest.raises(UserError, match=f", where a later run would read its {what}; choose another --out$"):
        check_out_of_photos(out, source, later="read its {}", images=IMAGES)


def test_a_refused_out_writing_three_kinds_lists_them(tmp_path) -> None:
    # the masks of two depths, named once
    images = {"a/*.jpg": "overlays", "b/*.png": "maps", "c/*/*.png": "masks", "c/*.png": "masks"}
    with pytest.raises(UserError, match="where a later run would read its overlays, maps and masks; choose"):
        check_out_of_photos(tmp_path / "run", tmp_path, later="read its {}", images=images)


@pytest.mark.parametrize(
    ("source", "out"),
    [
        ("lots/*/*/*.jpg", "lots/run"),  # lots/run/overlays/a.jpg: a later run's photo
        ("*/*/*/*.jpg", "lots/run"),  # no fixed leading folder
        ("lots/*/overlays/*.jpg", "lots/run"),
        ("lots/l*/*/*/*.jpg", "lots/line_2/run"),
        ("lots/*/*/*", "lots/run"),  # any name
        ("lots/*/*/*.*", "lots/run"),  # any name with a suffix
        ("lots/*/*/*.[jp][pn]g", "lots/run"),
        ("lots/l*/.*/*/*.jpg", "lots/line_2/.run"),  # a hidden folder, named with its dot: glob goes in
        # (not the first below lots: its photos, .cam__x__a, would be hidden, as their overlays)
        ("{tmp}/lots/*/*/*.jpg", "lots/run"),  # an absolute pattern, a relative --out
        ("lots/*/*/*.jpg", "{tmp}/lots/../lots/run"),  # --out resolved
    ],
)
def test_an_out_whose_images_a_pattern_could_match_is_refused(tmp_path, monkeypatch, source, out) -> None:
    # was: only a ** pattern's leading folder was checked, so lots/*/*/*.jpg passed --out lots/run
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "line_1" / "cam" / "a.jpg")
    source, out = source.format(tmp=tmp_path), out.format(tmp=tmp_path)
    resolved = (tmp_path / "lots" / out.rsplit("lots/", 1)[1]).resolve()
    with pytest.raises(
        UserError,
        match=rf"^output folder {re.escape(str(resolved))} would hold images "
        rf"\({re.escape(str(resolved / 'overlays' / '*.jpg'))}\) that the pattern '{re.escape(source)}' "
        "matches, where a later run would read its overlays; choose another --out$",
    ):
        check_out_of_photos(out, source, later="read its {}", images=IMAGES)


@pytest.mark.parametrize("source", ["lots/*/*/*.jpg", "lots/*/overlays/*.jpg"])
def test_an_out_linked_into_a_patterns_reach_is_refused(tmp_path, monkeypatch, source) -> None:
    # was: only the resolved --out (runs/r1) was matched, so it passed, and the next run read its overlays
    # as photos: glob reads lots/latest/overlays/a.jpg under the link's name
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "line_1" / "cam" / "a.jpg")
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "lots" / "latest").symlink_to(tmp_path / "runs" / "r1", target_is_directory=True)
    write_png(tmp_path / "runs" / "r1" / "overlays" / "b.jpg")  # what the run will write
    assert Path("lots/latest/overlays/b.jpg") in photo_files(source)[0]
    (tmp_path / "runs" / "r1" / "overlays" / "b.jpg").unlink()
    linked = tmp_path.resolve() / "lots" / "latest"
    with pytest.raises(
        UserError,
        match=rf"^output folder {re.escape(str(linked))} would hold images "
        rf"\({re.escape(str(linked / 'overlays' / '*.jpg'))}\) that the pattern '{re.escape(source)}' "
        "matches, where a later run would read its overlays;",
    ):
        check_out_of_photos("lots/latest", source, later="read its {}", images=IMAGES)


def test_an_out_spelled_through_a_link_and_back_is_where_it_lies(tmp_path, monkeypatch) -> None:
    # lots/latest/../x is runs/x (latest links to runs/r1), which lots/*/*/*.jpg does not reach: its
    # spelling is not read as lots/x, as a '..' taken by its letters would read it
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "line_1" / "cam" / "a.jpg")
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "lots" / "latest").symlink_to(tmp_path / "runs" / "r1", target_is_directory=True)
    out = check_out_of_photos("lots/latest/../x", "lots/*/*/*.jpg", later="read its {}", images=IMAGES)
    assert out == (tmp_path / "runs" / "x").resolve()


@pytest.mark.parametrize(
    ("source", "out"),
    [
        ("lots/*/*.jpg", "lots/run"),  # its images lie two folders down: lots/run/overlays/a.jpg
        ("lots/*/*/*.jpg", "lots/line_1/run"),  # beside the cam folder: one folder too deep
        ("lots/*/cam/*.jpg", "lots/run"),  # overlays/ is not cam/
        ("lots/line_*/*/*.jpg", "lots/run"),  # run is not line_*
        ("lots/**/*.jpg", "elsewhere/run"),
        # was refused: the pattern's last part was matched against any name, whatever its suffix
        ("lots/*/*/*.png", "lots/run"),  # the overlays are .jpg
        ("lots/*/*/*.jpeg", "lots/run"),
        ("lots/*/*/*.JPG", "lots/run"),  # glob's case where it counts case (not on Windows)
        # was refused: '*' was matched against a hidden name, which glob leaves out
        ("lots/*/*/*.jpg", "lots/.run"),
        ("lots/*/.*/*.jpg", "lots/run"),  # .* matches no visible folder
        ("lots/*/*/.*", "lots/run"),  # a hidden file is never read as a photo
        # was refused: masks/*/x.png was taken for any depth below masks/
        ("lots/*/*/*.png", "lots/pred"),  # masks/<category>/<name>.png lies one folder deeper
        # was refused as inside the photo folder lots: '**' searches below lots/l* alone
        ("lots/l*/**/*.png", "lots/run"),
        ("lots/l*/**/*", "lots/run"),
        ("lots/**/*.png", "lots/.run"),  # '**' goes into no hidden folder
        ("lots/**/*.bmp", "lots/run"),  # nothing it writes is a .bmp
        ("lots/**/cam/*.jpg", "lots/run"),  # nor lies in a cam/ folder
    ],
)
def test_an_out_beside_a_patterns_photos_passes(tmp_path, monkeypatch, source, out) -> None:
    if source.endswith(".JPG") and Path("A") == Path("a"):  # Windows: glob ignores case
        pytest.skip("glob ignores case here")
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "line_1" / "cam" / "a.jpg")
    assert check_out_of_photos(out, source, later="read its {}", images=IMAGES) == (tmp_path / out).resolve()


def test_an_out_inside_the_folder_a_patterns_double_star_searches_names_it(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "line_1" / "cam" / "a.png")
    searched = (tmp_path / "lots" / "line_1").resolve()
    with pytest.raises(
        UserError,
        match=rf"^output folder {re.escape(str(searched / 'run'))} is inside the photo folder "
        rf"{re.escape(str(searched))}, where a later run would read its masks; choose another --out$",
    ):
        check_out_of_photos("lots/line_1/run", "lots/l*/**/*.png", later="read its {}", images=IMAGES)


#: Patterns with a '**', and --out folders around the photo lots/line_1/cam/b.jpg.
DOUBLE_STAR_PATTERNS = [
    "lots/**/*.png",
    "lots/**/*.jpg",
    "lots/**/*",
    "lots/l*/**/*.png",
    "lots/l*/**/*",
    "lots/*/cam/**/*.jpg",
    "lots/[!r]*/**/*",
    "lots/**/masks/*/*.png",
    "lots/**/overlays/*.jpg",  # masks/<category>/: a category may be named overlays
    "lots/l*/**/cam/*.jpg",
    "lots/*/../**/*.jpg",
    "lots/*/**/../*/*.png",
    "*/l*/**/*",
    "lots/**/*/**/*.png",
]
DOUBLE_STAR_OUTS = ["lots", "lots/run", "lots/.run", "lots/line_1", "lots/line_1/run", "lots/line_1/.r/run"]


@pytest.mark.parametrize("pattern", DOUBLE_STAR_PATTERNS)
def test_a_double_star_pattern_refuses_an_out_just_where_a_later_run_reads_its_images(
    tmp_path, monkeypatch, pattern
) -> None:
    # held against what photo_files lists once the images are written: the images named are those read
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "line_1" / "cam" / "b.jpg")
    write_png(tmp_path / "lots" / "line_1" / "cam" / "b.png")
    for out in DOUBLE_STAR_OUTS:
        written = {"overlays": Path(out, "overlays", "a.jpg"), "masks": Path(out, "masks", "c", "a.png")}
        for path in written.values():
            write_png(path)
        try:
            listed = [path.resolve() for path in photo_files(pattern)[0]]
        except UserError:  # matches no image file
            listed = []
        read = [what for what, path in written.items() if path.resolve() in listed]
        for path in written.values():
            path.unlink()
        if not read:
            check_not_read_as_photos(out, pattern, later="read its {}", images=IMAGES)
            continue
        with pytest.raises(UserError, match="where a later run would read its ") as refused:
            check_not_read_as_photos(out, pattern, later="read its {}", images=IMAGES)
        named = re.search("read its (.*); choose", str(refused.value))[1].split(" and ")
        # inside the folder '**' searches, all that is read; else the images the message names
        assert named == read if " photo folder" in str(refused.value) else set(named) <= set(read)


@pytest.mark.parametrize(
    ("pattern", "image", "expected"),
    [
        ("/l/**/*.jpg", "/l/run/overlays/*.jpg", True),  # ** takes two folders
        ("/l/**/overlays/*.jpg", "/l/overlays/*.jpg", True),  # ... or none
        ("/l/**", "/l/run/overlays/*.jpg", True),  # last, files too
        ("/l/**/*.jpg", "/l/.run/overlays/*.jpg", False),  # never a hidden folder
        ("/l/**/*.jpg", "/l/run/.overlays/*.jpg", False),
        ("/l/*/*/*.jp?", "/l/run/overlays/*.jpg", True),
        ("/l/*/*/?.jpg", "/l/run/overlays/*.jpg", True),  # a one-letter name
        ("/l/*/*/[!.]*", "/l/run/overlays/*.jpg", True),
        ("/l/*/*/[.]*", "/l/run/overlays/*.jpg", False),  # glob leaves a dot to a pattern starting with one
        ("/l/*/*/*.jpg", "/l/run/overlays/*_mask.png", False),
        ("/l/*/*/*_mask.png", "/l/run/masks/*_mask.png", True),
        ("/l/*/*/*/*.png", "/l/run/masks/*/*_mask.png", True),
        ("/l/*/*/*.png", "/l/run/masks/*/*_mask.png", False),  # one folder short
        ("/l/*/*/*/*/*.png", "/l/run/masks/*/*_mask.png", False),  # one too many
        ("/l/run/overlays/a.jpg", "/l/run/overlays/*.jpg", True),  # no wildcard: that very file
        ("/l/*/overlays/.a.jpg", "/l/run/overlays/*.jpg", False),  # hidden: no photo
        ("/m/*/*/*.jpg", "/l/run/overlays/*.jpg", False),  # another leading folder
    ],
)
def test_pattern_could_match_reads_a_pattern_as_glob_does(pattern, image, expected) -> None:
    assert pattern_could_match(pattern, Path(image)) is expected


@pytest.mark.parametrize(
    ("pattern", "written"),
    [
        ("lots/*/*/*.jpg", "lots/run/overlays/a.jpg"),
        ("lots/*/*/*.png", "lots/run/overlays/a.jpg"),
        ("lots/*/*/*.*", "lots/run/overlays/a.jpg"),
        ("lots/*/*/*.jpg", "lots/.run/overlays/a.jpg"),
        ("lots/.*/*/*.jpg", "lots/.run/overlays/a.jpg"),
        ("lots/**/*.jpg", "lots/.run/overlays/a.jpg"),
        ("lots/**/*.jpg", "lots/run/overlays/a.jpg"),
        ("lots/*/*/*/*.png", "lots/run/masks/cat/a_mask.png"),
        ("lots/*/*/*.png", "lots/run/masks/cat/a_mask.png"),
    ],
)
def test_pattern_could_match_answers_as_photo_files_reads(tmp_path, monkeypatch, pattern, written) -> None:
    # held against what a later run would read: the written file is among its photos just when matched
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "line_1" / "cam" / "b.png")
    write_png(tmp_path / written)
    try:
        read = Path(written) in photo_files(pattern)[0]
    except UserError:  # matches no image files
        read = False
    shape = (tmp_path / written).parent / f"*{Path(written).suffix}"
    assert pattern_could_match(pattern, shape) is read


@pytest.mark.parametrize(
    ("pattern", "read"),
    [
        ("lots/*/../*/*/*.jpg", True),  # lots/line_1/../run/overlays/a.jpg
        ("lots/*/../run/*/*.jpg", True),
        ("lots/**/../*/*/*.jpg", True),  # '**' took a folder, '..' gave it back
        ("lots/*/../../lots/*/*/*.jpg", True),  # up past the leading folder, and down again
        ("lots/*/../*/*.jpg", False),  # one folder short
        ("lots/*/*/../*/*/*.jpg", False),  # lots/run/overlays/../<x>/<y>: one too deep
    ],
)
def test_pattern_could_match_reads_parent_parts_as_glob_does(tmp_path, monkeypatch, pattern, read) -> None:
    # was: '..' after a wildcard was matched against a folder's name, so no such pattern could match
    # --out lots/run's overlays, though glob reads them through it
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "line_1" / "cam" / "b.jpg")
    write_png(tmp_path / "lots" / "line_1" / "c.jpg")  # each pattern matches a photo
    write_png(tmp_path / "lots" / "line_1" / "cam" / "sub" / "d.jpg")
    write_png(tmp_path / "lots" / "run" / "overlays" / "a.jpg")
    written = (tmp_path / "lots" / "run" / "overlays" / "a.jpg").resolve()
    assert (written in [path.resolve() for path in photo_files(pattern)[0]]) is read
    assert pattern_could_match(pattern, written.parent / "*.jpg") is read


@pytest.mark.parametrize(
    ("source", "expected"),
    [("~/lots", "is inside the photo folder"), ("~/lots/*/*/*.jpg", "that the pattern")],
)
def test_an_out_among_photos_given_with_a_quoted_tilde_is_refused(tmp_path, monkeypatch, source, expected):
    # photo_files read '~/lots' as the home folder's, the out-of-photos check as a folder named '~': passed
    monkeypatch.setenv("HOME", str(tmp_path))
    write_png(tmp_path / "lots" / "l1" / "a.png")
    with pytest.raises(UserError, match=expected):
        check_out_of_photos(tmp_path / "lots" / "run", source, later="read its {}", images=IMAGES)


def test_an_output_folder_holding_a_photo_is_refused(tmp_path):
    photo = tmp_path / "lot" / "line_2" / "c.png"
    check_holds_no_photos(tmp_path / "out", [photo])  # beside: fine
    check_holds_no_photos(tmp_path / "lot" / "line_3", [photo])
    for out in (tmp_path / "lot" / "line_2", tmp_path / "lot", tmp_path / "lot" / "line_2" / ".." / "line_2"):
        with pytest.raises(UserError, match=f"^output folder {tmp_path / 'lot'}.* holds the photo {photo}; "):
            check_holds_no_photos(out, [tmp_path / "b.png", photo])
    why = "a run that draws overlays replaces it whole, the photo with it"  # detection.predict's overlays/
    with pytest.raises(UserError, match=rf"holds the photo {photo} \({why}\); choose another --out$"):
        check_holds_no_photos(tmp_path / "lot", [photo], why=why)


@pytest.mark.parametrize("source", ["lots/.*/*/*.jpg", "lots/.*/*/*", "lots/.[cr]*/*/*.jpg"])
def test_an_out_whose_photo_names_are_hidden_passes_a_pattern_that_reads_no_hidden_name(
    tmp_path, monkeypatch, source
) -> None:
    # was refused: a photo below lots/.cam is named .cam__x__a (its path below lots), so its overlay is
    # hidden, and glob leaves it out of every pattern that matches a photo: refused for nothing
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / ".cam" / "x" / "a.jpg")
    [photo], base = photo_files(source)
    written = Path("lots/.run/overlays") / f"{output_name(photo.relative_to(base).as_posix())}.jpg"
    assert written.name == ".cam__x__a.jpg"
    write_png(written)  # what the run writes: a later run over the pattern reads it not
    assert photo_files(source)[0] == [photo]
    written.unlink()
    out = check_out_of_photos("lots/.run", source, later="read its {}", images={"overlays/*.jpg": "overlays"})
    assert out == (tmp_path / "lots" / ".run").resolve()


def test_an_out_whose_photo_names_are_visible_is_refused_below_a_hidden_folder(tmp_path, monkeypatch) -> None:
    # the pattern's hidden folder is its leading one: the photos' names below it are visible, and read
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / ".cam" / "x" / "a.jpg")
    with pytest.raises(UserError, match=r"would hold images \(.*/lots/\.cam/run/overlays/\*\.jpg\) that the"):
        check_out_of_photos(
            "lots/.cam/run", "lots/.cam/*/*/*.jpg", later="read its {}", images={"overlays/*.jpg": "overlays"}
        )


def test_a_refused_out_names_every_kind_of_image_a_pattern_matches(tmp_path, monkeypatch) -> None:
    # was: the first kind alone ('read its overlays'), the anomaly maps it matches too left unsaid
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "line_1" / "cam" / "a.jpg")
    images = {"overlays/*.jpg": "overlays", "anomaly_maps/*.png": "anomaly maps", "masks/*/*.png": "masks"}
    run = (tmp_path / "lots" / "run").resolve()
    with pytest.raises(
        UserError,
        match=rf"^output folder {re.escape(str(run))} would hold images \({re.escape(str(run / 'overlays'))}"
        rf"/\*\.jpg, {re.escape(str(run / 'anomaly_maps'))}/\*\.png\) that the pattern 'lots/\*/\*/\*' "
        "matches, where a later run would read its overlays and anomaly maps; choose another --out$",
    ):
        check_out_of_photos("lots/run", "lots/*/*/*", later="read its {}", images=images)


@pytest.mark.parametrize(
    ("source", "link", "target", "what"),
    [
        ("lots", "lots/latest", "runs/r1", "overlays and masks"),  # a link to --out itself
        ("lots", "lots/l1/runs", "runs", "overlays and masks"),  # ... to a folder above it
        ("lots/*/*/*.jpg", "lots/latest", "runs/r1", "overlays"),
        ("lots/*/*.jpg", "lots/ov", "runs/r1/overlays", "overlays"),  # ... to one of its image folders
        ("lots/**/*.png", "lots/l1/m", "runs/r1/masks", "masks"),
    ],
)
def test_an_out_a_link_in_the_source_leads_to_is_refused_before_writing(
    tmp_path, monkeypatch, source, link, target, what
) -> None:
    # was: passed (the link led nowhere yet); the run wrote where the next one reads, which read its images
    # as photos or refused them as an earlier run's
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "cam" / "a.jpg")
    write_png(tmp_path / "lots" / "l1" / "a.png")
    (tmp_path / link).symlink_to(tmp_path / target, target_is_directory=True)
    out = (tmp_path / "runs" / "r1").resolve()
    with pytest.raises(
        UserError,
        match=rf"^output folder {re.escape(str(out))} is reached through the link {re.escape(link)} \(to "
        rf"{re.escape(str(tmp_path / target))}\) in '{re.escape(source)}', where a later run would read its "
        f"{what}; choose another --out$",
    ):
        check_out_of_photos("runs/r1", source, later="read its {}", images=IMAGES)
    write_png(tmp_path / "runs" / "r1" / "overlays" / "a.jpg")  # what it would write: read through the link
    write_png(tmp_path / "runs" / "r1" / "masks" / "c" / "a.png")
    assert any(out in path.resolve().parents for path in photo_files(source)[0])


@pytest.mark.parametrize(
    ("source", "link"),
    [
        ("lots/*/*/*.jpg", "lots/.latest"),  # '*' leaves a hidden name out
        ("lots/*/*.png", "lots/latest"),  # lots/latest/overlays/a.jpg: one folder deeper, and a .jpg
        ("lots/l1*/*/*.jpg", "lots/latest"),  # beside the folders the pattern passes through
        ("lots/l1/cam", "lots/.latest"),  # a folder search goes into no hidden folder
    ],
)
def test_an_out_a_link_leads_to_passes_where_the_source_reads_none_of_its_images(
    tmp_path, monkeypatch, source, link
) -> None:
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "cam" / "a.jpg")
    write_png(tmp_path / "lots" / "l1" / "a.png")
    (tmp_path / link).symlink_to(tmp_path / "runs" / "r1", target_is_directory=True)
    assert check_out_of_photos("runs/r1", source, later="read its {}", images=IMAGES) == tmp_path / "runs/r1"


def test_a_folder_a_link_leads_to_is_named_as_it_is_not_read_as_a_pattern(tmp_path, monkeypatch) -> None:
    # was: the name of a folder inside --out was matched as a wildcard against the run's image folders:
    # a link to runs/r1/[o]verlays (not the run's overlays) was refused, one to runs/r1/masks/[.]x (the
    # masks of a photo [.]x.png: '[.]' as a pattern names a hidden folder, which '*' does not match) passed
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "a.png")
    (tmp_path / "runs" / "r1" / "[o]verlays").mkdir(parents=True)
    (tmp_path / "lots" / "ov").symlink_to(tmp_path / "runs" / "r1" / "[o]verlays", target_is_directory=True)
    assert check_out_of_photos("runs/r1", "lots", later="read its {}", images=IMAGES) == tmp_path / "runs/r1"
    masks = tmp_path / "runs" / "r1" / "masks" / "[.]x"
    masks.mkdir(parents=True)
    (tmp_path / "lots" / "m").symlink_to(masks, target_is_directory=True)
    with pytest.raises(UserError, match=r"is reached through the link lots/m .* would read its masks; "):
        check_out_of_photos("runs/r1", "lots", later="read its {}", images=IMAGES)


def test_an_out_in_a_hidden_folder_below_a_linked_one_passes_a_folder_source(tmp_path, monkeypatch) -> None:
    # was refused: lots/latest, a link to runs, spells --out runs/.r1 as lots/latest/.r1, a hidden folder
    # that the search of lots never goes into (its images are not read, as the photos below show)
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "a.png")
    (tmp_path / "lots" / "latest").symlink_to(tmp_path / "runs", target_is_directory=True)
    out = check_out_of_photos("runs/.r1", "lots", later="read its {}", images=IMAGES)
    assert out == tmp_path / "runs/.r1"
    write_png(tmp_path / "runs" / ".r1" / "overlays" / "a.jpg")
    assert photo_files("lots")[0] == [Path("lots/l1/a.png")]


@pytest.mark.parametrize("source", ["lots", "lots/*/*.png", "lots/**/*.png"])
@pytest.mark.parametrize("loop", ["lots/self", "lots/l1/up"])
def test_a_link_loop_in_the_source_is_passed_over_as_the_search_passes_it(
    tmp_path, monkeypatch, source, loop
) -> None:
    # was a traceback (OSError: too many levels of symbolic links; RuntimeError: symlink loop) where the
    # photos themselves are listed without a word
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "lots" / "l1" / "a.png")
    (tmp_path / loop).symlink_to(Path(loop).name)  # a link to itself
    assert check_out_of_photos("runs/r1", source, later="read its {}", images=IMAGES) == tmp_path / "runs/r1"
    assert photo_files(source)[0] == [Path("lots/l1/a.png")]
