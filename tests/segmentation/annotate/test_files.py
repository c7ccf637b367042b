"""What the annotation server may read (only below its roots) and how it writes (atomically)."""

from __future__ import annotations

import os

import pytest

from common.errors import UserError
from common.io import atomic_write
from segmentation.annotate.errors import AnnotationError, NotFoundError
from segmentation.annotate.files import check_relative, list_images, resolve_inside


@pytest.fixture
def roots(tmp_path):
    """``served/`` with a photo, a nested photo and links in and out; ``secret.txt`` beside it."""
    served = tmp_path / "served"
    (served / "lot").mkdir(parents=True)
    (served / "a.png").write_bytes(b"png")
    (served / "lot" / "b.jpg").write_bytes(b"jpg")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "outside_dir").mkdir()
    (tmp_path / "outside_dir" / "c.png").write_bytes(b"png")
    os.symlink(tmp_path / "secret.txt", served / "leak.png")  # file link leading outside
    os.symlink(tmp_path / "outside_dir", served / "linked_dir")  # folder link leading outside
    os.symlink(served / "a.png", served / "alias.png")  # link that stays inside
    return served, tmp_path


@pytest.mark.parametrize(
    "path, message",
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("//host/share/x.png", "absolute"),
        ("C:/Windows/win.ini", "absolute"),
        ("c:", "absolute"),
        ("../secret.txt", "'..'"),
        ("lot/../../secret.txt", "'..'"),
        ("..", "'..'"),
        ("./a.png", "'.'"),
        ("lot//b.jpg", "''"),
        ("lot/", "''"),
        ("lot\\..\\..\\secret.txt", "backslash"),
        ("a.png\x00.txt", "control"),
        ("x" * 2000, "longer"),
    ],
    ids=[
        "empty", "absolute", "unc", "drive", "bare-drive", "dotdot", "nested-dotdot", "bare-dotdot", "dot",
        "empty-part", "trailing-slash", "backslash", "nul", "too-long",
    ],
)  # fmt: skip
def test_malformed_paths_are_refused_before_any_lookup(roots, path, message):
    served, _ = roots
    with pytest.raises(AnnotationError, match=message):
        check_relative(path)
    with pytest.raises(AnnotationError, match=message) as error:
        resolve_inside(served, path)
    assert not isinstance(error.value, NotFoundError)  # refused on its shape, not looked up and missed


def test_resolve_inside_serves_files_and_links_inside(roots):
    served, _ = roots
    assert resolve_inside(served, "a.png") == (served / "a.png").resolve()
    assert resolve_inside(served, "lot/b.jpg").read_bytes() == b"jpg"
    assert resolve_inside(served, "alias.png") == (served / "a.png").resolve()


@pytest.mark.parametrize("path", ["leak.png", "linked_dir/c.png"], ids=["file-link", "folder-link"])
def test_symlinks_leading_outside_are_refused(roots, path):
    served, _ = roots
    with pytest.raises(AnnotationError, match="outside"):
        resolve_inside(served, path)


@pytest.mark.parametrize(
    "path", ["missing.png", "lot", "lot/missing/x.png"], ids=["missing", "folder", "deep"]
)
def test_missing_files_and_folders_are_not_found(roots, path):
    served, _ = roots
    with pytest.raises(NotFoundError):
        resolve_inside(served, path)


def test_list_images_skips_hidden_foreign_excluded_and_outside_files(roots):
    served, _ = roots
    (served / ".hidden.png").write_bytes(b"png")
    (served / ".cache").mkdir()
    (served / ".cache" / "d.png").write_bytes(b"png")
    (served / "notes.txt").write_text("not an image")
    (served / "UPPER.JPG").write_bytes(b"jpg")
    (served / "out" / "x").mkdir(parents=True)
    (served / "out" / "x" / "e.png").write_bytes(b"png")  # the output folder inside --images
    keys = list_images(served, exclude=served / "out")
    # alias.png stays inside; leak.png and linked_dir/ lead outside; the link folder is not followed.
    assert keys == ["UPPER.JPG", "a.png", "alias.png", "lot/b.jpg"]


@pytest.mark.parametrize(
    ("renamed", "bad", "folder"),
    [
        ("lot/b.jpg", b"bad\xff.jpg", "lot"),  # annotate_state.json and the page's JSON carried "\udcff"
        (
            "lot",
            b"bad\xff",
            ".",
        ),  # the key 'bad\udcff/b.jpg' names the folder: the file's name alone missed it
        (".", b"bad\xff", ".."),  # annotate_state.json records the served folder itself
    ],
)
def test_list_images_refuses_a_name_that_is_not_utf8_naming_its_folder(roots, renamed, bad, folder):
    served, _ = roots
    old = served / renamed
    try:
        new = old.resolve().rename(old.resolve().with_name(os.fsdecode(bad)))
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    served = new if renamed == "." else served
    with pytest.raises(UserError) as error:
        list_images(served)
    shown = (served / folder).resolve() if folder != ".." else served.parent.resolve()
    assert str(error.value).startswith(f"{shown} holds a name that is not UTF-8, {ascii(bad)}: rename it")


@pytest.mark.skipif(os.name == "nt", reason="Windows names hold no backslash, newline or colon")
@pytest.mark.parametrize(
    "name, reason",
    [
        ("back\\slash.png", "backslashes are not allowed"),  # a Windows path copied as one name
        ("new\nline.png", "control characters"),
        ("C:/a.png", "absolute paths are refused"),  # a top folder named like a drive
        ("/".join(letter * 250 for letter in "xyzuv") + ".png", "longer than 1024"),
    ],
    ids=["backslash", "newline", "drive-like-folder", "long-path"],
)
def test_list_images_refuses_a_photo_the_page_could_not_ask_for_instead_of_leaving_it_out(
    tmp_path, name, reason
):
    (tmp_path / "a.png").write_bytes(b"png")
    photo = tmp_path.joinpath(*name.split("/"))
    photo.parent.mkdir(parents=True, exist_ok=True)
    photo.write_bytes(b"png")
    with pytest.raises(AnnotationError, match=f"{reason}.*: rename it$"):  # was left out of the list, unsaid
        list_images(tmp_path)


def test_list_images_refuses_a_missing_folder(tmp_path):
    with pytest.raises(AnnotationError, match="does not exist"):
        list_images(tmp_path / "nope")


def test_atomic_write_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "deep" / "state.json"
    atomic_write(target, b"one")
    atomic_write(target, lambda file: file.write(b"two"))
    assert target.read_bytes() == b"two"

    def fail(file):
        file.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_bytes() == b"two"  # the old file, whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_a_colon_in_a_photos_name_is_no_drive(tmp_path):
    for name in ("1:30.png", "x:y.png"):  # a time of day, a camera's naming: valid POSIX names
        (tmp_path / name).write_bytes(b"png")
    assert list_images(tmp_path) == ["1:30.png", "x:y.png"]
    assert resolve_inside(tmp_path, "x:y.png") == (tmp_path / "x:y.png").resolve()
