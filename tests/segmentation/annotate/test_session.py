"""Annotation state: status rules, undo/redo, atomic persistence, resuming and repairing the tree."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import UserError
from converters.masks import mask_to_rle, read_mask, rle_to_mask
from converters.value_masks import compose_mask
from segmentation.annotate import session as session_module
from segmentation.annotate.errors import AnnotationError, ConflictError, NotFoundError, StorageError
from segmentation.annotate.records import Instance, unique_stem
from segmentation.annotate.session import STATE_FILE, AnnotationSession, check_not_hiding
from segmentation.annotate.state_file import images_dir_of


def blob(shape, box, fill=True):
    """``(H, W)`` bool mask with a filled rectangle ``(x1, y1, x2, y2)``."""
    mask = np.zeros(shape, bool)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = fill
    return mask


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def opened(photos, tmp_path):
    folder, truths = photos
    session = AnnotationSession.open(tmp_path / "new_defects", folder, classes=["scratch", "dent"])
    return session, truths


def test_a_new_session_lists_images_and_names_things_after_the_out_folder(opened):
    session, _ = opened
    assert session.category == "new_defects"
    assert session.classes == ["scratch", "dent"]
    assert session.keys == ["a.png", "b.jpg", "lot_2/c.png", "wide.png"]
    assert session.current == "a.png"
    assert session.counts() == {"unlabelled": 4, "in_progress": 0, "done": 0, "good": 0, "unreadable": 0}
    assert session.entry("lot_2/c.png").stem == "lot_2__c"
    state = json.loads(session.state_path.read_text())
    assert state["format"] == "mvtec-finetune/annotate-state" and set(state["images"]) == set(session.keys)
    # mask_values.json is written up front: the first class is 255, as in MVTec's 0/255 masks.
    values = json.loads((session.category_dir / "mask_values.json").read_text())
    assert values == {"255": "scratch", "254": "dent", "0": "good"}


def test_the_state_file_holds_each_photo_on_a_line_of_its_own(opened):
    # every change rewrites the whole state, which grows with the folder: written with indent=1, json
    # encoded all of it in pure Python, each photo's entry spread over dozens of lines
    session, truths = opened
    session.add_instance("lot_2/c.png", class_name="dent", mask=truths["lot_2/c.png"])
    lines = session.state_path.read_text().splitlines()
    for key in session.keys:
        [line] = [line for line in lines if line.startswith(f"  {json.dumps(key)}: ")]
        entry = json.loads(line.removeprefix(f"  {json.dumps(key)}: ").removesuffix(","))
        assert entry == session.entry(key).to_json()
    state = json.loads(session.state_path.read_text())
    assert state["classes"] == ["scratch", "dent"] and state["current"] == "a.png"
    resumed = AnnotationSession.read(session.out)
    assert resumed.entry("lot_2/c.png").instances == session.entry("lot_2/c.png").instances


@pytest.mark.parametrize(
    "keys, expected",
    [
        (["a.png", "a.jpg"], ["a", "a_2"]),  # one stem, two suffixes
        (["lot 3/0001.jpg", "lot_3/0001.jpg"], ["lot_3__0001", "lot_3__0001_2"]),  # unsafe characters
        (["A.png", "a.png"], ["A", "a_2"]),  # case-insensitive file systems
        (["###.png", "#1.png"], ["image", "1"]),  # nothing usable left; a leading separator
    ],
)
def test_stems_are_unique_and_folder_safe(keys, expected):
    taken: set[str] = set()
    assert [unique_stem(key, taken) for key in keys] == expected


def test_accept_delete_and_status_rules(opened):
    session, _ = opened
    shape = (120, 160)
    first = session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 30, 20)), score=0.9)
    assert (first.id, first.area, first.box) == (1, 200, (10.0, 10.0, 30.0, 20.0))
    assert session.entry("a.png").status == "in_progress"
    with pytest.raises(ConflictError, match="delete them"):
        session.set_status("a.png", "good")
    session.set_status("a.png", "done")
    session.add_instance("a.png", class_name="dent", mask=blob(shape, (50, 50, 60, 60)))
    assert session.entry("a.png").status == "done"  # adding to a done image keeps it done
    session.delete_instance("a.png", 1)
    session.delete_instance("a.png", 2)
    assert session.entry("a.png").status == "unlabelled"
    with pytest.raises(ConflictError, match="mark it good"):
        session.set_status("a.png", "done")
    session.set_status("a.png", "good")
    assert session.counts()["good"] == 1
    session.add_instance("a.png", class_name="dent", mask=blob(shape, (5, 5, 9, 9)))
    assert session.entry("a.png").status == "in_progress"  # a defect found on a "good" image
    assert [i.id for i in session.entry("a.png").instances] == [3]  # ids are never reused


def test_accepting_the_same_mask_twice_saves_it_once(opened):
    # a double Enter or a client's retry posts one prediction twice: it used to save two instances
    session, _ = opened
    shape = (120, 160)
    first = session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 30, 20)))
    again = session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 30, 20)))
    assert again == first and [i.id for i in session.entry("a.png").instances] == [1]
    session.undo("a.png")  # the repeat was no change of its own: one undo removes the instance
    assert session.entry("a.png").instances == []
    session.redo("a.png")
    # the same outline in another class would hide the first in the masks (one class per pixel) and
    # drop it from the export: refused, nothing saved (it was saved, and the scratch silently lost)
    with pytest.raises(ConflictError, match=r"covers all of instance 1 \(scratch\).*delete instance 1 first"):
        session.add_instance("a.png", class_name="dent", mask=blob(shape, (10, 10, 30, 20)))
    assert [i.id for i in session.entry("a.png").instances] == [1]
    # another mask is another instance, in either class, while each keeps a pixel of its own
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 31, 20)))
    session.add_instance("a.png", class_name="dent", mask=blob(shape, (12, 10, 30, 20)))
    assert [i.id for i in session.entry("a.png").instances] == [1, 2, 3]
    values = read_mask(session.category_dir / "ground_truth" / "combined" / "a_mask.png")
    assert set(np.unique(values[10:20, 10:31]).tolist()) == {254, 255}  # both classes show


@pytest.mark.parametrize(
    "call, error",
    [
        (
            lambda s: s.add_instance("a.png", class_name="stain", mask=blob((120, 160), (0, 0, 5, 5))),
            "unknown class",
        ),
        (lambda s: s.add_instance("a.png", class_name="dent", mask=np.zeros((120, 160), bool)), "empty"),
        (
            lambda s: s.add_instance("nope.png", class_name="dent", mask=blob((9, 9), (0, 0, 5, 5))),
            "unknown image",
        ),
        (lambda s: s.delete_instance("a.png", 7), "no instance 7"),
        (lambda s: s.set_status("a.png", "finished"), "unknown status"),
        (lambda s: s.undo("a.png"), "nothing to undo"),
        (lambda s: s.redo("a.png"), "nothing to redo"),
        (lambda s: s.entry("../a.png"), "unknown image"),
    ],
    ids=["class", "empty-mask", "image", "instance", "status", "undo", "redo", "traversal-key"],
)
def test_refused_changes_name_the_problem_and_change_nothing(opened, call, error):
    session, _ = opened
    before = session.state_path.read_bytes()
    with pytest.raises(AnnotationError, match=error):
        call(session)
    assert session.state_path.read_bytes() == before


def test_a_mask_of_another_size_than_the_image_is_refused(opened):
    session, _ = opened
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5)))
    with pytest.raises(AnnotationError, match="160x120"):
        session.add_instance("a.png", class_name="dent", mask=blob((100, 160), (0, 0, 5, 5)))


def test_undo_and_redo_walk_the_history_and_the_files_follow(opened):
    session, _ = opened
    shape = (120, 160)
    truth = session.category_dir / "ground_truth"
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 30, 20)))
    session.add_instance("a.png", class_name="dent", mask=blob(shape, (50, 50, 60, 60)))
    assert (truth / "combined" / "a_mask.png").is_file()
    session.undo("a.png")
    assert [i.class_name for i in session.entry("a.png").instances] == ["scratch"]
    assert (truth / "scratch" / "a_mask.png").is_file() and not (truth / "combined").exists()
    session.undo("a.png")
    assert session.entry("a.png").status == "unlabelled"
    assert files_under(session.category_dir) == ["mask_values.json"]
    session.redo("a.png")
    session.redo("a.png")
    assert [i.class_name for i in session.entry("a.png").instances] == ["scratch", "dent"]
    session.undo("a.png")
    session.set_status("a.png", "done")  # a new change drops the redo history
    with pytest.raises(ConflictError):
        session.redo("a.png")


def test_undo_and_redo_refuse_a_version_other_than_the_images_now(opened, photos):
    # an undo asked for by a tab that did not show the image's last change restored the whole image as it
    # was before that change: another tab's change was wiped
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 30, 20)))
    seen = session.version("a.png")
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (10, 10, 30, 20)))
    session.set_current("b.jpg")
    assert session.version("a.png") == seen  # another image's change, a move: not this image's
    session.add_instance("a.png", class_name="dent", mask=blob(shape, (50, 50, 60, 60)))  # another tab
    with pytest.raises(ConflictError, match="^a.png was changed in another tab since this page showed it"):
        session.undo("a.png", version=seen)
    assert [i.class_name for i in session.entry("a.png").instances] == ["scratch", "dent"]
    session.undo("a.png", version=session.version("a.png"))
    with pytest.raises(ConflictError, match="nothing redone"):
        session.redo("a.png", version=seen)  # the undo is a change too
    session.redo("a.png", version=session.version("a.png"))
    assert [i.class_name for i in session.entry("a.png").instances] == ["scratch", "dent"]
    # a version a page got before a restart is none of the next start's
    reopened = AnnotationSession.open(session.out, photos[0])
    reopened.add_instance("a.png", class_name="dent", mask=blob(shape, (70, 70, 80, 80)))
    assert reopened.version("a.png").rsplit("-", 1)[1] == seen.rsplit("-", 1)[1] == "1"  # a count alike
    with pytest.raises(ConflictError, match="nothing undone"):
        reopened.undo("a.png", version=seen)


def test_an_undo_from_a_page_of_an_earlier_start_says_the_server_restarted(opened, photos):
    # it was refused as "changed in another tab" though no tab had changed it: the restart took the history
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    shown = session.version("a.png")
    reopened = AnnotationSession.open(session.out, photos[0])
    for step, what in [(reopened.undo, "undone"), (reopened.redo, "redone")]:
        with pytest.raises(ConflictError) as refused:
            step("a.png", version=shown)
        assert str(refused.value) == (
            "a.png: the annotation server was restarted since this page showed it, and undo history is not "
            f"kept across restarts: nothing {what}; its labels are shown as they are now"
        )
    assert [i.class_name for i in reopened.entry("a.png").instances] == ["scratch"]


def test_a_malformed_version_is_refused_as_such_not_as_a_restart(opened):
    # "garbage" or "" was refused as a version of an earlier start: 'the annotation server was restarted'
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    for version in ("garbage", "", f"{session.version('a.png')}x", "x" * 100):
        with pytest.raises(AnnotationError) as refused:
            session.undo("a.png", version=version)
        assert type(refused.value) is AnnotationError
        assert str(refused.value) == (
            f"a.png: version {version[:40]!r} should be a version an image detail gave (8 hex digits, '-', "
            "a count)"
        )
    assert len(session.entry("a.png").instances) == 1


def test_done_or_good_from_a_tab_that_did_not_show_the_images_last_change_is_refused(opened):
    # done and good discard the undecided proposals: marked from a tab that showed none, after another
    # tab's undo brought one back, it went without a word
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 30, 20)))
    session.add_proposals({"a.png": [proposal(shape, (60, 60, 90, 90), "dent")]}, source="run-1")
    (kept,) = session.entry("a.png").proposals
    session.delete_proposal("a.png", kept.id)
    seen = session.version("a.png")  # this tab: one instance, no proposal
    session.undo("a.png")  # another tab: the proposal is back
    saved = session.state_path.read_bytes()
    for action in ("done", "good", "open"):
        with pytest.raises(
            ConflictError,
            match=f"^a.png was changed in another tab since this page showed it: not marked {action}; ",
        ):
            session.set_status("a.png", action, version=seen)
    assert session.state_path.read_bytes() == saved
    assert session.entry("a.png").proposals == [kept] and session.entry("a.png").status == "in_progress"
    session.set_status("a.png", "done", version=session.version("a.png"))  # the page shows it now
    assert session.entry("a.png").status == "done" and session.entry("a.png").proposals == []
    session.undo("a.png")
    session.set_status("a.png", "done")  # no version: not checked, as before
    assert session.entry("a.png").status == "done"


def test_done_good_or_undo_from_a_page_that_did_not_see_proposals_added_or_labels_set_aside_is_refused(
    opened, photos
):
    # add_proposals, drop_proposals and refresh_size left the version as it was: D from a page that never
    # showed the detector's proposals (another tab's run, or one ahead of this page) discarded them unseen,
    # and G from a page showing a photo replaced by one of another size marked the new photo good
    from dataclasses import replace

    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 30, 20)))
    seen = session.version("a.png")
    proposed = [replace(proposal(shape, (60, 60, 90, 90), "dent"), source="red.pt")]
    assert session.add_proposals({"a.png": proposed}, source="red.pt sha256:00") == 1
    done = partial(session.set_status, action="done")
    for step, refused in [(done, "not marked done"), (session.undo, "nothing undone")]:
        with pytest.raises(ConflictError) as refusal:
            step("a.png", version=seen)
        assert str(refusal.value) == (
            f"a.png was given new proposals since this page showed it: {refused}; "
            "its labels are shown as they are now"
        )
    assert len(session.entry("a.png").proposals) == 1 and session.entry("a.png").status == "in_progress"
    # nothing new (taken before, or a done photo): the version stays
    shown = session.version("a.png")
    assert session.add_proposals({"a.png": proposed}, source="red.pt sha256:00") == 0
    assert session.version("a.png") == shown
    # every reason since the page's version is named, in order
    session.delete_proposal("a.png", 1)
    session.undo("a.png")
    assert session.drop_proposals("a.png", source="red.pt sha256:00", name="red.pt") == 1
    with pytest.raises(ConflictError) as refusal:
        session.undo("a.png", version=shown)
    assert str(refusal.value).startswith(
        "a.png was changed in another tab and was replaced on disk, and its proposals of the old photo "
        "were dropped since this page showed it: nothing undone; "
    )
    # a photo replaced by one of another size, its labels set aside: good from the page showing the old one
    session.delete_instance("a.png", 1)
    session.add_proposals({"a.png": [proposal(shape, (60, 60, 90, 90))]}, source="run-2")
    shown = session.version("a.png")  # this page: a proposal, no instance
    replace_photo(photos[0] / "a.png")
    assert session.refresh_size("a.png") is not None
    with pytest.raises(ConflictError, match="^a.png was replaced on disk by a photo of another size since "):
        session.set_status("a.png", "good", version=shown)
    assert session.entry("a.png").status == "unlabelled"
    session.set_status("a.png", "good", version=session.version("a.png"))  # the page shows the new photo


def test_value_coded_masks_and_the_combined_folder(opened):
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 40, 20)))
    session.add_instance("a.png", class_name="dent", mask=blob(shape, (30, 15, 50, 30)))  # overlaps the first
    assert files_under(session.category_dir) == [
        "ground_truth/combined/a_mask.png",
        "mask_values.json",
        "test/combined/a.png",
    ]
    mask = read_mask(session.category_dir / "ground_truth/combined/a_mask.png")
    assert mask[12, 12] == 255 and mask[25, 45] == 254
    assert mask[17, 35] == 254  # the later instance wins the overlap
    assert set(np.unique(mask).tolist()) == {0, 254, 255}


def test_every_change_is_on_disk_before_the_call_returns(opened, tmp_path):
    session, _ = opened
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (20, 20, 40, 40)), score=0.87654)
    session.set_current("b.jpg")
    state = json.loads(session.state_path.read_text())
    entry = state["images"]["b.jpg"]
    assert state["current"] == "b.jpg"
    assert entry["status"] == "in_progress" and entry["instances"][0]["score"] == 0.8765
    assert (session.category_dir / "test/dent/b.jpg").read_bytes() == (
        session.images_dir / "b.jpg"
    ).read_bytes()
    leftovers = [p.name for p in session.out.rglob("*.tmp")]
    assert leftovers == []


def test_a_failed_save_leaves_memory_and_disk_as_they_were(opened, monkeypatch):
    session, _ = opened
    before = session.state_path.read_bytes()

    def full_disk(path, data):
        raise OSError("No space left on device")

    monkeypatch.setattr(session_module, "atomic_write", full_disk)
    with pytest.raises(StorageError, match="nothing saved: .*No space"):
        session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5)))
    assert session.entry("a.png").instances == [] and session.entry("a.png").status == "unlabelled"
    assert session.state_path.read_bytes() == before
    with pytest.raises(ConflictError):
        session.undo("a.png")  # the failed change is not in the history either


def test_a_failed_save_leaves_the_next_instance_id_as_the_disk_has_it(opened, monkeypatch):
    # the accept set next_id before the save the disk refused, and the restore left it: memory said 2
    # where the state file said 1, and the next defect, the disk freed, was saved as instance 2
    session, truths = opened
    write = session_module.atomic_write

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(session_module, "atomic_write", full_disk)
    with pytest.raises(StorageError):
        session.add_instance("a.png", class_name="dent", mask=truths["a.png"])
    assert session.entry("a.png").next_id == 1
    monkeypatch.setattr(session_module, "atomic_write", write)  # the disk freed
    instance = session.add_instance("a.png", class_name="dent", mask=truths["a.png"])
    assert instance.id == 1 and session.entry("a.png").next_id == 2
    assert AnnotationSession.read(session.out).entry("a.png").instances == [instance]


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (errno.ENOSPC, "free space on its disk, then try again"),
        (errno.EROFS, "make {out} writable, then try again"),
        (None, "free space on its disk or make {out} writable, then try again"),  # no errno: both causes
    ],
)
def test_a_failed_save_advises_what_its_error_calls_for(opened, monkeypatch, code, advice):
    session, _ = opened

    def failing(path, data):
        raise OSError(code, os.strerror(code)) if code else OSError("disk trouble")

    monkeypatch.setattr(session_module, "atomic_write", failing)
    with pytest.raises(StorageError) as raised:
        session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5)))
    message = str(raised.value)
    assert message.startswith("nothing saved: ") and message.endswith(advice.format(out=session.out))
    assert ("free space" in message) == ("free space" in advice)  # a read-only folder wants no space


def test_a_full_disk_at_the_state_file_names_it_once(opened, monkeypatch):
    # was "cannot write OUT/annotate_state.json (No space left on device: OUT/annotate_state.json)"
    session, _ = opened

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(session_module, "atomic_write", full)
    with pytest.raises(StorageError) as raised:
        session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5)))
    assert str(raised.value) == (
        f"nothing saved: cannot write {session.state_path} (No space left on device): "
        "free space on its disk, then try again"
    )


FILE_IN_THE_WAY = "a file stands where a folder of that path should be: move it away"


@pytest.mark.parametrize(
    "blocking",
    ["test/dent", "ground_truth"],  # mkdir: 'File exists' / a folder below a file: 'Not a directory'
)
def test_a_file_where_a_tree_folder_should_be_is_named_as_the_cause_not_space_or_rights(opened, blocking):
    session, _ = opened
    in_the_way = session.category_dir / blocking
    shutil.rmtree(in_the_way, ignore_errors=True)
    in_the_way.parent.mkdir(parents=True, exist_ok=True)
    in_the_way.write_text("not a folder")
    with pytest.raises(StorageError) as raised:
        session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5)))
    message = str(raised.value)
    assert message.startswith("saved in annotate_state.json, but the files of a.png")
    assert message.endswith(f"written from it at the next start or export; {FILE_IN_THE_WAY}")
    assert "free space" not in message and "writable" not in message
    assert in_the_way.read_text() == "not a folder"  # left for the user to move


def test_a_full_disk_under_the_tree_asks_for_space_alone(opened, monkeypatch):
    session, _ = opened

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(session.category_dir / "test"))

    monkeypatch.setattr(session_module.export, "sync_image", full_disk)
    with pytest.raises(StorageError) as raised:
        session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5)))
    assert str(raised.value).endswith("at the next start or export; free space on its disk")


def test_reopening_resumes_annotations_position_and_classes(opened, photos):
    session, _ = opened
    folder, _ = photos
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (20, 20, 40, 40)))
    session.set_status("lot_2/c.png", "good")
    session.set_current("b.jpg")
    again = AnnotationSession.open(session.out)  # --images and --classes left out: from the state
    assert again.images_dir == folder.absolute()
    assert again.current == "b.jpg"
    assert again.classes == ["scratch", "dent"]
    assert again.entry("lot_2/c.png").status == "good"
    (instance,) = again.entry("b.jpg").instances
    assert instance.class_name == "dent" and instance.mask().sum() == 400
    grown = AnnotationSession.open(session.out, folder, classes=["scratch", "dent", "stain"])  # appended
    assert grown.classes == ["scratch", "dent", "stain"]
    values = json.loads((grown.category_dir / "mask_values.json").read_text())
    assert values["253"] == "stain" and values["254"] == "dent"


def test_a_session_saved_with_names_windows_cannot_hold_resumes_with_a_warning(opened, photos, capsys):
    # saved before check_folder_name refused them (the old rule took 'scratch.' and 'con'): it could no
    # longer be resumed or exported; --rename-class and --rename-category rename such names
    session, _ = opened
    folder, _ = photos
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (20, 20, 40, 40)))
    state = json.loads(session.state_path.read_text())
    state["classes"], state["category"] = ["scratch", "dent."], "con"
    for instance in state["images"]["b.jpg"]["instances"]:
        instance["class"] = "dent."
    session.state_path.write_text(json.dumps(state))
    capsys.readouterr()
    again = AnnotationSession.open(session.out)
    assert (again.category, again.classes) == ("con", ["scratch", "dent."])
    assert again.entry("b.jpg").instances[0].class_name == "dent."
    assert capsys.readouterr().err == ""  # the command prints them, once (test_cli.py)
    warnings = again.warnings
    assert len(warnings) == 2
    assert warnings[0].startswith("warning: category 'con' of ")
    assert "Windows keeps the name 'con'" in warnings[0]
    assert warnings[1].startswith("warning: class 'dent.' of ") and "Windows drops a '.'" in warnings[1]
    assert warnings[0].endswith(
        "the tree cannot be copied whole to Windows: --rename-category NEW gives it another name"
    )
    assert warnings[1].endswith(
        "the tree cannot be copied whole to Windows: --rename-class dent.=NEW gives it another name"
    )
    grown = AnnotationSession.open(session.out, folder, classes=["scratch", "dent.", "stain"], category="con")
    assert grown.classes == ["scratch", "dent.", "stain"]
    # a name typed now is held to the whole rule
    with pytest.raises(AnnotationError, match="^bad class name 'nul': Windows keeps the name 'nul'"):
        AnnotationSession.open(session.out, folder, classes=["scratch", "dent.", "stain", "nul"])
    with pytest.raises(AnnotationError, match="^bad category name 'prn': Windows keeps"):
        AnnotationSession.open(session.out.parent / "other", folder, category="prn")


def test_a_resume_from_another_folder_reads_the_photos_it_compares(opened, photos, tmp_path):
    # a photo of its copy's size and modification time is still compared byte for byte; one no longer
    # in the folder, or whose copy is gone, has nothing to compare
    session, _ = opened
    folder, _ = photos
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (10, 10, 30, 30)))
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (20, 20, 40, 40)))
    copy = session.category_dir / "test" / "dent" / "a.png"
    moved = shutil.copytree(folder, tmp_path / "moved")
    other = bytearray((moved / "a.png").read_bytes())
    other[len(other) // 2] ^= 0xFF
    (moved / "a.png").write_bytes(bytes(other))
    os.utime(moved / "a.png", ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns))
    with pytest.raises(AnnotationError, match=r"a\.png is not the photo annotated as a\.png") as refused:
        AnnotationSession.read(session.out, moved)
    assert f"(its copy: {copy}): give other photos an --out of their own" in str(refused.value)
    (moved / "a.png").unlink()
    (session.category_dir / "test" / "dent" / "b.jpg").unlink()
    assert AnnotationSession.read(session.out, moved).images_dir == moved


def test_a_resume_whose_photo_folder_is_gone_says_to_give_it_as_images(opened, photos, tmp_path):
    # 'image folder does not exist or is not a folder: <stored>' on `--out X --export`: a folder not typed
    session, _ = opened
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (10, 10, 30, 30)))
    session.persist()
    moved = photos[0].rename(tmp_path / "moved")
    with pytest.raises(AnnotationError, match=r"were in .*photos, which is not a folder now: give their"):
        AnnotationSession.read(session.out)
    assert AnnotationSession.read(session.out, moved).images_dir == moved


def test_a_resume_compares_a_photo_with_an_upper_case_suffix_with_its_copy(photos, tmp_path):
    folder, _ = photos
    shutil.copy(folder / "a.png", folder / "e.PNG")  # its copy in the tree is e.png
    session = AnnotationSession.open(tmp_path / "out", folder)
    session.add_instance("e.PNG", class_name="defect", mask=blob((120, 160), (10, 10, 30, 30)))
    next_lot = shutil.copytree(folder, tmp_path / "lot_9")
    (next_lot / "e.PNG").write_bytes((folder / "lot_2" / "c.png").read_bytes())  # another photo
    with pytest.raises(AnnotationError, match=r"e\.PNG is not the photo annotated as e\.PNG"):
        AnnotationSession.read(session.out, next_lot)


def test_a_resume_from_other_photos_of_the_same_names_is_refused_and_a_moved_folder_resumes(
    opened, photos, tmp_path
):
    """Keys are relative paths: the next lot's a.png resumed with this lot's masks on it."""
    session, _ = opened
    folder, _ = photos
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (10, 10, 30, 30)))
    session.set_status("b.jpg", "good")
    before = files_under(session.out), session.state_path.read_bytes()
    moved = shutil.copytree(folder, tmp_path / "moved")
    assert AnnotationSession.read(session.out, moved).images_dir == moved  # the same photos elsewhere
    next_lot = shutil.copytree(folder, tmp_path / "lot_8")
    (next_lot / "a.png").write_bytes((folder / "lot_2" / "c.png").read_bytes())  # another photo
    with pytest.raises(AnnotationError, match=r"a\.png is not the photo annotated as a\.png in .*photos"):
        AnnotationSession.read(session.out, next_lot)
    assert (files_under(session.out), session.state_path.read_bytes()) == before


def test_files_that_are_no_image_are_named(photos, tmp_path):
    # they were listed without a word, could be neither opened nor marked good: "unlabelled" never hit 0
    photos_dir, _ = photos
    (photos_dir / "lot_2" / "broken.jpg").write_text("not a picture\n")
    (photos_dir / "empty.png").write_bytes(b"")
    session = AnnotationSession.read(tmp_path / "out", photos_dir)
    assert session.unreadable == ["empty.png", "lot_2/broken.jpg"]
    assert {"empty.png", "lot_2/broken.jpg", "a.png"} <= set(session.keys)  # still listed: labels kept
    counts = session.counts()  # not work left to do: counted apart from the unlabelled photos
    assert counts["unreadable"] == 2 and counts["unlabelled"] == len(session.keys) - 2


def test_a_labelled_photo_that_no_longer_opens_keeps_its_status_in_the_counts(opened, photos):
    # only unlabelled files are set apart as unreadable: a photo marked good stays counted good
    session, _ = opened
    folder, _ = photos
    session.set_status("b.jpg", "good")
    session.persist()
    (folder / "b.jpg").write_text("not a picture any more\n")
    reread = AnnotationSession.read(session.out, folder)
    assert "b.jpg" in reread.unreadable
    assert reread.counts() == {"unlabelled": 3, "in_progress": 0, "done": 0, "good": 1, "unreadable": 0}
    # outlined, then broken: not taken for a photo of another size, its labels stay where they are
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 40, 20)))
    (folder / "a.png").write_bytes(b"")
    reread = AnnotationSession.read(session.out, folder)
    reread.persist()
    assert len(reread.entry("a.png").instances) == 1 and not reread.notices


def test_reading_writes_nothing_until_persisted(opened, photos, tmp_path):
    session, _ = opened
    folder, _ = photos
    fresh = AnnotationSession.read(tmp_path / "later", folder, classes=["scratch"])
    assert fresh.keys == session.keys and not (tmp_path / "later").exists()  # a first run: no folder yet
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (10, 10, 30, 30)))
    before = files_under(session.out), session.state_path.read_bytes()
    resumed = AnnotationSession.read(session.out)
    assert (files_under(session.out), session.state_path.read_bytes()) == before
    assert resumed.entry("a.png").instances[0].class_name == "dent"
    fresh.persist()
    assert AnnotationSession.open(tmp_path / "later").classes == ["scratch"]


@pytest.mark.parametrize(
    "options, error",
    [
        ({"classes": ["dent", "scratch"]}, "must start with"),
        ({"classes": ["scratch"]}, "must start with"),
        ({"category": "other"}, "holds category 'new_defects', not 'other': leave --category out to resume$"),
    ],
    ids=["reordered-classes", "dropped-class", "category"],
)
def test_reopening_refuses_options_that_would_change_mask_values(opened, photos, options, error):
    session, _ = opened
    with pytest.raises(AnnotationError, match=error):
        AnnotationSession.open(session.out, photos[0], **options)


@pytest.mark.parametrize(
    "classes, error",
    [
        (["good"], "reserved"),
        (["combined"], "reserved"),
        (["dent", "Dent"], "twice"),
        (["bad/name"], "bad class name"),
        ([".hidden"], "bad class name"),
        (["scratch "], "bad class name"),  # Windows drops a trailing space from a folder name
        ([" scratch"], "bad class name"),
        (["big\tscratch"], "bad class name"),
        (["a" * 101], "bad class name"),  # up to 100, as a category
        (
            ["scratch."],
            "bad class name 'scratch.': Windows drops a '.' or space at the end",
        ),  # 'scratch' there
        (["scratch", "Con"], "bad class name 'Con': Windows keeps the name 'con' for a device"),
        (["lpt1.deep"], "bad class name 'lpt1.deep': Windows keeps the name 'lpt1' for a device"),
        (["傷/深"], "bad class name '傷/深': use letters and digits"),
        ([], "at least one"),
        ([f"c{i}" for i in range(256)], "at most 255"),
    ],
)
def test_class_names_must_work_as_folder_names_and_mask_values(photos, tmp_path, classes, error):
    with pytest.raises(AnnotationError, match=error):
        AnnotationSession.open(tmp_path / "out", photos[0], classes=classes)


def test_class_and_category_names_of_any_script_are_folders_of_the_tree_and_names_of_the_export(
    photos, tmp_path
):
    # '傷' was refused: "use letters, digits, ..." read as if it were no letter
    session = AnnotationSession.open(tmp_path / "out", photos[0], classes=["傷", "défaut"], category="ナット")
    session.add_instance("a.png", class_name="傷", mask=blob((120, 160), (10, 10, 40, 20)))
    assert read_mask(session.category_dir / "ground_truth/傷/a_mask.png").max() == 255
    assert session.category_dir.name == "ナット"
    session.export()
    coco = json.loads(next((session.out / "export" / "annotations").glob("instances_*.json")).read_text())
    assert sorted(c["name"] for c in coco["categories"]) == ["défaut", "傷"]
    with pytest.raises(AnnotationError, match="^bad category name 'nut.': Windows drops a '.'"):
        AnnotationSession.open(tmp_path / "other", photos[0], category="nut.")


def test_a_long_category_class_and_photo_name_export_within_255_bytes_per_file(photos, tmp_path):
    # the export's names join the three: 'File name too long' although each fitted its folder
    folder, _ = photos
    for end in ("1", "2"):  # two photos whose names differ only at their end
        shutil.copy(folder / "a.png", folder / f"{'p' * 178}_{end}.png")
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["s" * 100], category="c" * 100)
    for end in ("1", "2"):
        session.add_instance(
            f"{'p' * 178}_{end}.png", class_name="s" * 100, mask=blob((120, 160), (10, 10, 40, 20))
        )
    session.export()
    names = [path.name for path in (session.out / "export").rglob("*")]
    assert max(len(name.encode()) for name in names) <= 255
    files = (session.out / "export" / "annotations").glob("instances_*.json")
    images = [image["file_name"] for file in files for image in json.loads(file.read_text())["images"]]
    assert len({name for name in images if "ppp" in name}) == 2  # both kept, apart


def test_a_class_name_with_spaces_is_a_folder_of_the_tree_and_a_class_of_the_export(photos, tmp_path):
    # as converters --names-template '{defect_text}' names them, and YOLO-World reads them
    session = AnnotationSession.open(tmp_path / "out", photos[0], classes=["broken large", "dent"])
    session.add_instance("a.png", class_name="broken large", mask=blob((120, 160), (10, 10, 40, 20)))
    assert read_mask(session.category_dir / "ground_truth/broken large/a_mask.png").max() == 255
    assert (session.category_dir / "test/broken large/a.png").is_file()
    session.export()
    coco = json.loads(next((session.out / "export" / "annotations").glob("instances_*.json")).read_text())
    assert [c["name"] for c in coco["categories"]] == ["broken large", "dent"]
    with pytest.raises(AnnotationError, match="bad category name 'new defects'"):  # categories keep no spaces
        AnnotationSession.open(tmp_path / "other", photos[0], category="new defects")
    with pytest.raises(AnnotationError, match="annotated with classes 'broken large' dent: --classes must"):
        AnnotationSession.open(session.out, classes=["dent"])  # named as typed on a command line


def test_for_an_export_the_state_and_the_tree_stand_in_for_a_photo_folder_that_is_gone(photos, tmp_path):
    # the export reads only the tree, which holds a copy of every labelled photo, yet it needed the photos
    from PIL import Image

    folder, _ = photos
    phone = Image.fromarray(np.full((40, 80, 3), 120, np.uint8))
    exif = phone.getexif()
    exif[0x0112] = 6  # shown 40 wide, 80 high: its copy is re-encoded upright as PNG
    phone.save(folder / "phone.jpg", exif=exif)
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["scratch", "dent"])
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 40, 20)))
    session.add_instance("phone.jpg", class_name="dent", mask=blob((80, 40), (5, 5, 20, 30)))
    session.set_status("b.jpg", "good")
    session.set_current("phone.jpg")
    tree = {p: (session.category_dir / p).read_bytes() for p in files_under(session.category_dir)}
    shutil.move(folder, tmp_path / "archived")
    given = AnnotationSession.read(session.out, tmp_path / "archived", photos_optional=True)
    assert not given.photos_gone and given.images_dir == tmp_path / "archived"  # --images given: its photos

    with pytest.raises(AnnotationError, match="which is not a folder now"):  # the page still needs them
        AnnotationSession.read(session.out)
    reread = AnnotationSession.read(session.out, photos_optional=True)
    assert reread.photos_gone and reread.entry("phone.jpg").instances == session.entry("phone.jpg").instances
    reread.persist()
    assert {p: (reread.category_dir / p).read_bytes() for p in files_under(reread.category_dir)} == tree
    assert json.loads(session.state_path.read_text())["current"] == "phone.jpg"  # the page resumes there
    reread.export()
    annotations = sorted((reread.out / "export/annotations").glob("instances_*.json"))
    images = [image for path in annotations for image in json.loads(path.read_text())["images"]]
    assert len(images) == 3  # a, phone and the good b, from their copies
    # a copy lost from the tree cannot be made again without its photo: said so, naming the way out
    (reread.category_dir / "test/scratch/a.png").unlink()
    with pytest.raises(
        AnnotationError, match=r"the tree has no copy of a.png .* give the photos' folder as --images"
    ):
        AnnotationSession.read(session.out, photos_optional=True).persist()
    state = json.loads(session.state_path.read_text())
    session.state_path.write_text(json.dumps({**state, "images": {}}))  # edited by hand
    with pytest.raises(AnnotationError, match=r"annotate_state.json lists no photos: nothing to export$"):
        AnnotationSession.read(session.out, photos_optional=True)


def test_opening_refuses_bad_folders_and_foreign_state(photos, tmp_path):
    folder, _ = photos
    with pytest.raises(AnnotationError, match="give the image folder"):
        AnnotationSession.open(tmp_path / "fresh")
    with pytest.raises(AnnotationError, match="inside the output folder"):
        AnnotationSession.open(folder.parent, folder)
    # the other way round: a later detection.predict over the photos would read the copies in it
    with pytest.raises(AnnotationError, match="is inside the image folder .* read its copies of them"):
        AnnotationSession.open(folder / "annotations", folder)
    assert not (folder / "annotations").exists()
    begun = AnnotationSession.open(tmp_path / "annotations", folder)  # one begun there before the check
    begun.persist()
    (tmp_path / "annotations").rename(folder / "annotations")
    assert AnnotationSession.open(folder / "annotations", folder).keys == begun.keys  # still resumes
    (tmp_path / "photos_link").symlink_to(folder)  # the same folder by another name
    with pytest.raises(AnnotationError, match="is inside the image folder"):
        AnnotationSession.open(tmp_path / "photos_link" / "out", folder)
    assert not (folder / "out").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AnnotationError, match="no images"):
        AnnotationSession.open(tmp_path / "out1", empty)
    foreign = tmp_path / "out2"
    foreign.mkdir()
    (foreign / STATE_FILE).write_text('{"format": "something else"}')
    with pytest.raises(AnnotationError, match="not an annotation state"):
        AnnotationSession.open(foreign, folder)
    (foreign / STATE_FILE).write_text("{truncated")
    with pytest.raises(AnnotationError, match="cannot read"):
        AnnotationSession.open(foreign, folder)
    with pytest.raises(AnnotationError, match="export folder"):
        AnnotationSession.open(tmp_path / "out3", folder, category="export")
    with pytest.raises(AnnotationError, match="clash with the replaced folder"):  # where labels are set aside
        AnnotationSession.open(tmp_path / "out3", folder, category="replaced")


def test_reopening_repairs_a_tree_cut_short_and_keeps_removed_images(opened, photos):
    session, _ = opened
    folder, _ = photos
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5)))
    session.add_instance("b.jpg", class_name="scratch", mask=blob((150, 100), (0, 0, 5, 5)))
    tree = session.category_dir
    (tree / "ground_truth/dent/a_mask.png").unlink()  # killed between the state and the mask
    (tree / "test/scratch/a.png").write_bytes(b"stale copy in the wrong folder")
    (folder / "b.jpg").unlink()  # the photo is gone from --images
    again = AnnotationSession.open(session.out, folder)
    assert "b.jpg" not in again.keys
    with pytest.raises(NotFoundError):
        again.entry("b.jpg")
    assert files_under(tree) == [
        "ground_truth/dent/a_mask.png",
        "ground_truth/scratch/b_mask.png",  # its annotations stay, with their files
        "mask_values.json",
        "test/dent/a.png",
        "test/scratch/b.jpg",
    ]
    state = json.loads(again.state_path.read_text())
    assert state["images"]["b.jpg"]["instances"]


def proposal(shape, box, class_name="scratch", score=0.9):
    """A proposal (id 0, as a source makes it) of a rectangle mask."""
    from segmentation.annotate.proposals import make_proposal

    return make_proposal(
        blob(shape, box), class_name=class_name, score=score, mask_score=0.8, source="test.json"
    )


def test_accepting_a_proposal_that_covers_an_instance_of_another_class_is_refused(opened):
    # as a drawn mask is (add_instance): the masks hold one class per pixel, the scratch would vanish
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (12, 12, 18, 18)))
    around = proposal(shape, (10, 10, 40, 40), "dent")  # IoU 0.04 with the scratch: no duplicate
    assert session.add_proposals({"a.png": [around]}, source="run-1") == 1
    with pytest.raises(ConflictError, match=r"covers all of instance 1 \(scratch\).*delete instance 1 first"):
        session.accept_proposals("a.png")
    assert [i.class_name for i in session.entry("a.png").instances] == ["scratch"]
    assert len(session.entry("a.png").proposals) == 1  # still undecided
    (instance,) = session.accept_proposals("a.png", class_name="scratch")  # same class: both show
    assert instance.class_name == "scratch"
    # within one batch too: the later proposal would paint over the earlier one
    tall = (150, 100)  # b.jpg
    inner, outer = proposal(tall, (40, 80, 50, 90), "scratch"), proposal(tall, (35, 75, 80, 115), "dent")
    assert session.add_proposals({"b.jpg": [inner, outer]}, source="run-1") == 2
    with pytest.raises(ConflictError, match=r"covers all of instance 1 \(scratch\)"):
        session.accept_proposals("b.jpg")
    assert session.entry("b.jpg").instances == []


def test_two_masks_of_another_class_may_not_hide_an_instance_between_them(opened):
    # each covers part of the scratch; together they would leave none of it in the masks
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (12, 12, 18, 18)))
    session.add_instance("a.png", class_name="dent", mask=blob(shape, (10, 10, 15, 20)))
    with pytest.raises(
        ConflictError, match=r"covers all of instance 1 \(scratch\) that the masks still show"
    ):
        session.add_instance("a.png", class_name="dent", mask=blob(shape, (15, 10, 20, 20)))
    session.add_instance("a.png", class_name="dent", mask=blob(shape, (16, 10, 20, 20)))  # a column is left
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (12, 12, 13, 13)))  # same class
    values = read_mask(session.category_dir / "ground_truth" / "combined" / "a_mask.png")
    assert (values[12:18, 15] == 255).all()  # scratch (255) still shows where no dent lies


def counted_decodes(monkeypatch) -> list[int]:
    """``[n]``: how many masks the session and the tree's mask composition decode from RLE from now on."""
    from converters import value_masks

    count = [0]

    def counting(rle):
        count[0] += 1
        return rle_to_mask(rle)

    monkeypatch.setattr(session_module, "rle_to_mask", counting)
    monkeypatch.setattr(value_masks, "rle_to_mask", counting)
    return count


def test_an_accept_decodes_only_its_own_mask_and_those_it_may_hide(opened, monkeypatch):
    # each accept decoded every earlier mask of the photo twice (check_not_hiding, then the tree's
    # mask): its cost grew with the instances; the masks written stay what composing them all gives
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (0, 0, 10, 10)))
    decodes = counted_decodes(monkeypatch)
    for n in range(1, 8):  # far apart, classes alternating
        decodes[0] = 0
        x = 20 * n
        session.add_instance(
            "a.png", class_name=("dent", "scratch")[n % 2], mask=blob(shape, (x, 0, x + 10, 10))
        )
        assert decodes[0] == 1  # its own, painted into the tree's mask
    # a dent over the scratch at x 60..70: that scratch, and what meets its box, are looked at
    decodes[0] = 0
    with pytest.raises(ConflictError, match=r"covers all of instance 4 \(scratch\)"):
        session.add_instance("a.png", class_name="dent", mask=blob(shape, (58, 0, 72, 12)))
    assert decodes[0] == 1
    entry = session.entry("a.png")
    for change in ("undo", "redo", "delete", "accept"):
        if change == "delete":
            session.delete_instance("a.png", 2)
        elif change == "accept":
            session.add_instance("a.png", class_name="dent", mask=blob(shape, (5, 5, 25, 25)))
        else:
            getattr(session, change)("a.png")
        values = read_mask(
            session.category_dir / "ground_truth" / "combined" / "a_mask.png", value_coded=True
        )
        instances = ((i.class_name, i.rle) for i in entry.instances)
        assert np.array_equal(values, compose_mask(instances, classes=session.classes, shape=shape)), change


@settings(max_examples=200, deadline=None)
@given(
    boxes=st.lists(
        st.tuples(
            st.integers(0, 11), st.integers(0, 11), st.integers(1, 6), st.integers(1, 6), st.booleans()
        ),
        max_size=6,
    ),
    new=st.tuples(
        st.integers(0, 11), st.integers(0, 11), st.integers(1, 8), st.integers(1, 8), st.booleans()
    ),
)
def test_check_not_hiding_refuses_as_when_it_decoded_every_mask(boxes, new):
    # the masks it leaves undecoded (their boxes meet no box that matters) never changed its answer
    def rect(x, y, w, h):
        return blob((12, 12), (x, y, x + w, y + h))

    classes = ("scratch", "dent")
    instances = [
        Instance(
            id=n + 1, class_name=classes[dent], rle=mask_to_rle(rect(x, y, w, h)), area=1, box=(0, 0, 1, 1)
        )
        for n, (x, y, w, h, dent) in enumerate(boxes)
    ]
    mask, class_name = rect(*new[:4]), classes[new[4]]
    expected = None  # the old rule, every mask decoded
    shown = np.full(mask.shape, -1, np.int16)
    masks = [rle_to_mask(i.rle) for i in instances]
    for instance, pixels in zip(instances, masks, strict=True):
        shown[pixels] = classes.index(instance.class_name)
    for instance, pixels in zip(instances, masks, strict=True):
        left = pixels & (shown == classes.index(instance.class_name))
        if instance.class_name != class_name and left.any() and not (left & ~mask).any():
            expected = expected or instance.id
    try:
        check_not_hiding("a.png", instances, mask, class_name)
        refused = None
    except ConflictError as error:
        refused = int(str(error).split("instance ")[1].split()[0])
    assert refused == expected


def test_dropping_a_replaced_photos_proposals_keeps_the_other_sources_and_undo_brings_none_back(opened):
    from dataclasses import replace

    session, _ = opened
    shape = (120, 160)
    mine = [replace(proposal(shape, box), source="red.pt") for box in [(10, 10, 30, 20), (50, 50, 60, 70)]]
    session.add_proposals({"a.png": mine}, source="red.pt sha256:00")
    session.add_proposals({"a.png": [proposal(shape, (90, 10, 99, 30))]}, source="run-1")  # test.json's
    session.accept_proposals("a.png", [1])  # accepted: decided by the user, kept
    session.delete_proposal("a.png", 2)  # undo would bring it back
    assert session.drop_proposals("a.png", source="red.pt sha256:00", name="red.pt") == 0
    assert session.entry("a.png").proposed == ["run-1"]
    assert session.drop_proposals("a.png", source="red.pt sha256:00", name="red.pt") == 0  # once
    session.undo("a.png")
    entry = session.entry("a.png")
    assert [p.source for p in entry.proposals] == ["test.json"] and len(entry.instances) == 1
    session.undo("a.png")
    assert [p.source for p in session.entry("a.png").proposals] == ["test.json"]
    assert session.entry("a.png").instances == []
    state = json.loads(session.state_path.read_text())["images"]["a.png"]
    assert state["proposed"] == ["run-1"] and [p["source"] for p in state["proposals"]] == ["test.json"]


def test_dropping_a_replaced_photos_proposals_strips_redo_too_and_a_failed_save_changes_nothing(
    opened, monkeypatch
):
    from dataclasses import replace

    session, _ = opened
    shape = (120, 160)
    mine = [replace(proposal(shape, box), source="red.pt") for box in [(10, 10, 30, 20), (50, 50, 60, 70)]]
    session.add_proposals({"a.png": mine}, source="red.pt sha256:00")
    session.delete_proposal("a.png", 1)
    session.undo("a.png")  # redo would delete it again: a snapshot holding the old photo's other outline
    entry = session.entry("a.png")
    before = (list(entry.proposals), list(entry.proposed), list(entry.undo_stack), list(entry.redo_stack))
    state = session.state_path.read_bytes()
    monkeypatch.setattr(session_module, "atomic_write", full_disk)
    with pytest.raises(StorageError, match="nothing saved: .*No space"):
        session.drop_proposals("a.png", source="red.pt sha256:00", name="red.pt")
    assert (entry.proposals, entry.proposed, entry.undo_stack, entry.redo_stack) == before
    assert session.state_path.read_bytes() == state
    monkeypatch.undo()
    assert session.drop_proposals("a.png", source="red.pt sha256:00", name="red.pt") == 2
    assert entry.redo_stack and all(not proposals for _, _, proposals in entry.redo_stack)
    session.redo("a.png")
    assert session.entry("a.png").proposals == []


def test_accepting_a_proposal_saves_it_as_an_instance_and_undo_brings_it_back(opened):
    session, _ = opened
    shape = (120, 160)
    added = session.add_proposals(
        {"a.png": [proposal(shape, (10, 10, 30, 20)), proposal(shape, (50, 50, 60, 70), "dent", 0.6)]},
        source="run-1",
    )
    assert added == 2 and [p.id for p in session.entry("a.png").proposals] == [1, 2]
    assert session.entry("a.png").status == "unlabelled" and not session.entry("a.png").undo_stack
    (instance,) = session.accept_proposals("a.png", [2])
    assert (instance.class_name, instance.area, instance.score) == ("dent", 200, 0.8)
    assert instance.prompt == {
        "box": [50.0, 50.0, 60.0, 70.0],
        "proposal": {"source": "test.json", "score": 0.6},
    }
    entry = session.entry("a.png")
    assert entry.status == "in_progress" and [p.id for p in entry.proposals] == [1]
    mask = read_mask(session.category_dir / "ground_truth" / "dent" / "a_mask.png")
    assert (mask == 254).sum() == 200  # written like any accepted instance
    session.undo("a.png")
    assert [p.id for p in entry.proposals] == [1, 2] and entry.instances == []
    session.redo("a.png")
    session.delete_proposal("a.png", 1)
    assert entry.proposals == [] and len(entry.instances) == 1
    session.undo("a.png")
    assert [p.id for p in entry.proposals] == [1]
    with pytest.raises(NotFoundError, match="no undecided proposal 2"):
        session.delete_proposal("a.png", 2)


def test_accept_all_is_one_change_and_a_corrected_proposal_is_replaced_by_its_instance(opened):
    session, _ = opened
    shape = (120, 160)
    session.add_proposals(
        {"a.png": [proposal(shape, (10, 10, 30, 20)), proposal(shape, (50, 50, 60, 70))]}, source="s"
    )
    corrected = session.add_instance("a.png", class_name="dent", mask=blob(shape, (8, 8, 32, 22)), proposal=1)
    assert [p.id for p in session.entry("a.png").proposals] == [2] and corrected.id == 1
    session.undo("a.png")
    assert [p.id for p in session.entry("a.png").proposals] == [1, 2]
    instances = session.accept_proposals("a.png")
    assert [i.id for i in instances] == [2, 3]  # instance ids are never reused
    assert session.entry("a.png").proposals == []
    with pytest.raises(ConflictError, match="no proposals to accept"):
        session.accept_proposals("a.png")
    session.undo("a.png")  # all of them in one step
    assert len(session.entry("a.png").proposals) == 2 and session.entry("a.png").instances == []


def test_an_image_takes_a_source_once_and_decided_proposals_never_come_back(opened, photos):
    session, _ = opened
    shape = (120, 160)
    batch = {"a.png": [proposal(shape, (10, 10, 30, 20))], "b.jpg": [proposal((150, 100), (5, 5, 9, 9))]}
    assert session.add_proposals(batch, source="run-1") == 2
    session.accept_proposals("a.png")
    session.delete_proposal("b.jpg", 1)
    assert session.add_proposals(batch, source="run-1") == 0  # restart with the same file
    again = AnnotationSession.open(session.out, photos[0])
    assert again.add_proposals(batch, source="run-1") == 0
    assert again.entry("a.png").proposals == [] and again.entry("b.jpg").proposals == []
    # Another source: what duplicates an accepted instance is left out, the rest comes.
    batch["a.png"].append(proposal(shape, (100, 100, 110, 110)))
    assert again.add_proposals(batch, source="run-2") == 2
    assert [p.box for p in again.entry("a.png").proposals] == [(100.0, 100.0, 110.0, 110.0)]


def test_done_and_good_images_take_no_proposals_and_marking_them_discards_undecided_ones(opened):
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (0, 0, 5, 5)))
    session.add_proposals({"a.png": [proposal(shape, (10, 10, 30, 20))]}, source="s")
    session.set_status("a.png", "done")
    assert session.entry("a.png").proposals == []
    session.undo("a.png")
    assert len(session.entry("a.png").proposals) == 1 and session.entry("a.png").status == "in_progress"
    session.set_status("b.jpg", "good")
    assert session.add_proposals({"b.jpg": [proposal((150, 100), (5, 5, 9, 9))]}, source="s") == 0
    assert "s" not in session.entry("b.jpg").proposed  # reopened later, it takes them then


def test_proposals_are_kept_across_a_restart_and_undo_never_drops_them(opened, photos):
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (0, 0, 5, 5)))
    session.add_proposals({"a.png": [proposal(shape, (10, 10, 30, 20))]}, source="s")
    session.undo("a.png")  # undoes the instance, not the proposals that came after it
    assert len(session.entry("a.png").proposals) == 1 and session.entry("a.png").instances == []
    again = AnnotationSession.open(session.out, photos[0])
    (kept,) = again.entry("a.png").proposals
    assert (kept.id, kept.class_name, kept.score, kept.area) == (1, "scratch", 0.9, 200)
    assert again.entry("a.png").proposed == ["s"] and again.entry("a.png").next_proposal_id == 2


def test_a_first_run_may_take_its_classes_from_a_detector(opened, photos, tmp_path):
    session, _ = opened
    fresh = AnnotationSession.read(tmp_path / "fresh", photos[0], default_classes=["crack", "hole"])
    assert fresh.classes == ["crack", "hole"]
    resumed = AnnotationSession.read(session.out, photos[0], default_classes=["crack", "hole"])
    assert resumed.classes == ["scratch", "dent"]  # the stored ones win


def full_disk(path, data):
    raise OSError("No space left on device")


def test_a_failed_undo_leaves_memory_and_disk_as_they_were(opened, monkeypatch):
    session, _ = opened
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5)))
    before = session.state_path.read_bytes()
    monkeypatch.setattr(session_module, "atomic_write", full_disk)
    with pytest.raises(StorageError, match="nothing saved: .*No space"):
        session.undo("a.png")
    entry = session.entry("a.png")
    assert len(entry.instances) == 1 and entry.status == "in_progress"
    assert session.state_path.read_bytes() == before
    monkeypatch.undo()
    session.undo("a.png")
    assert entry.instances == [] and entry.redo_stack


def test_proposals_of_another_size_are_refused_and_none_of_the_batch_is_added(opened):
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (0, 0, 5, 5)))
    before = session.state_path.read_bytes()
    batch = {"b.jpg": [proposal((150, 100), (5, 5, 9, 9))], "a.png": [proposal((100, 100), (10, 10, 30, 20))]}
    with pytest.raises(AnnotationError, match="not of its size"):
        session.add_proposals(batch, source="s")
    assert session.entry("b.jpg").proposals == [] and not session.has_proposed("b.jpg", "s")
    assert session.state_path.read_bytes() == before


def test_marking_an_image_good_discards_its_undecided_proposals(opened):
    session, _ = opened
    session.add_proposals({"b.jpg": [proposal((150, 100), (5, 5, 9, 9))]}, source="s")
    session.set_status("b.jpg", "good")
    assert session.entry("b.jpg").proposals == []
    assert json.loads(session.state_path.read_text())["images"]["b.jpg"]["proposals"] == []
    session.undo("b.jpg")
    assert len(session.entry("b.jpg").proposals) == 1


def test_marking_good_again_after_an_undo_back_to_good_discards_proposals(opened):
    session, _ = opened
    session.set_status("b.jpg", "good")
    session.set_status("b.jpg", "open")
    session.add_proposals({"b.jpg": [proposal((150, 100), (5, 5, 9, 9))]}, source="s")
    session.undo("b.jpg")
    assert session.entry("b.jpg").status == "good" and session.entry("b.jpg").proposals == []
    session.set_status("b.jpg", "good")
    assert session.entry("b.jpg").proposals == []


def test_proposals_added_after_an_undo_stay_off_a_decided_state_redo_brings_back(opened):
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (0, 0, 5, 5)))
    session.set_status("a.png", "done")
    session.undo("a.png")
    session.add_proposals({"a.png": [proposal(shape, (50, 50, 60, 70))]}, source="s")
    session.redo("a.png")
    assert session.entry("a.png").status == "done" and session.entry("a.png").proposals == []
    session.undo("a.png")
    assert len(session.entry("a.png").proposals) == 1


def test_redo_keeps_the_proposals_added_after_the_undo(opened):
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (0, 0, 5, 5)))
    session.undo("a.png")
    session.add_proposals({"a.png": [proposal(shape, (10, 10, 30, 20))]}, source="s")
    session.redo("a.png")
    entry = session.entry("a.png")
    assert len(entry.instances) == 1 and len(entry.proposals) == 1


def test_added_proposals_are_on_disk_at_once(opened, photos):
    session, _ = opened
    session.add_proposals({"a.png": [proposal((120, 160), (10, 10, 30, 20))]}, source="s")
    again = AnnotationSession.open(session.out, photos[0])
    (kept,) = again.entry("a.png").proposals
    assert again.has_proposed("a.png", "s") and kept.mask_score == 0.8
    (instance,) = again.accept_proposals("a.png")
    assert instance.score == 0.8


def test_a_proposal_overlapping_an_instance_by_half_is_a_duplicate(opened):
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 30, 20)))
    half, apart = proposal(shape, (10, 10, 20, 20)), proposal(shape, (60, 60, 80, 70))
    assert session.add_proposals({"a.png": [half, apart]}, source="s") == 1
    assert [p.box for p in session.entry("a.png").proposals] == [(60.0, 60.0, 80.0, 70.0)]


def test_correcting_a_proposal_into_an_existing_instance_decides_the_proposal(opened):
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 30, 20)))
    session.add_proposals({"a.png": [proposal(shape, (50, 50, 60, 70))]}, source="s")
    kept = session.add_instance("a.png", class_name="scratch", mask=blob(shape, (10, 10, 30, 20)), proposal=1)
    assert session.entry("a.png").proposals == []
    assert [i.id for i in session.entry("a.png").instances] == [kept.id] == [1]  # no second copy
    session.undo("a.png")
    assert [p.id for p in session.entry("a.png").proposals] == [1]


def test_a_retried_correction_answers_with_the_instance_it_saved(opened):
    session, _ = opened
    shape = (120, 160)
    session.add_proposals({"a.png": [proposal(shape, (50, 50, 60, 70))]}, source="s")
    corrected = blob(shape, (48, 50, 62, 72))
    first = session.add_instance("a.png", class_name="scratch", mask=corrected, proposal=1)
    again = session.add_instance("a.png", class_name="scratch", mask=corrected, proposal=1)
    assert again == first and [i.id for i in session.entry("a.png").instances] == [first.id]
    assert session.entry("a.png").proposals == []
    session.undo("a.png")  # the retry was no change of its own
    assert (session.entry("a.png").instances, [p.id for p in session.entry("a.png").proposals]) == ([], [1])
    with pytest.raises(NotFoundError, match="no undecided proposal 2"):  # a new mask still needs its proposal
        session.add_instance("a.png", class_name="scratch", mask=blob(shape, (0, 0, 9, 9)), proposal=2)


def test_a_mask_must_be_two_dimensional(opened):
    session, _ = opened
    with pytest.raises(AnnotationError, match=r"one \(H, W\) array, got shape \(1, 120, 160\)"):
        session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5))[None])


def replace_photo(path, size=(160, 200)):
    """Another photo of ``size`` ``(H, W)`` saved under ``path``'s name (re-exported, cropped)."""
    assert cv2.imwrite(str(path), np.full((*size, 3), 90, np.uint8))


def test_a_photo_replaced_by_one_of_another_size_starts_afresh_at_the_start_its_labels_set_aside(
    opened, photos
):
    # Its labels stayed at the old 160x120 size: drawn over the new photo, refused for every new mask,
    # and exported with the old photo's copy; the user had to rename the new one.
    session, _ = opened
    old_mask = blob((120, 160), (10, 10, 40, 20))
    old_instance = session.add_instance("a.png", class_name="scratch", mask=old_mask)
    session.set_status("a.png", "done")
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (5, 5, 20, 20)))
    copy = session.category_dir / "test/scratch/a.png"
    old_copy = copy.read_bytes()
    replace_photo(photos[0] / "a.png")

    reread = AnnotationSession.read(session.out)  # reading writes nothing: only persist sets aside
    assert not (session.out / "replaced").exists() and reread.entry("a.png").status == "done"
    reread.persist()
    [notice] = reread.notices
    [folder] = (session.out / "replaced").iterdir()
    assert folder.name.startswith("a-") and "\n" not in notice
    assert notice == (
        f"a.png was replaced by a 200x160 photo: the labels of the 160x120 one it replaced (1 instance(s), "
        f"marked done) are set aside in {folder} with its copy and mask; it starts unlabelled"
    )
    record = json.loads((folder / "labels.json").read_text())
    assert (record["image"], record["size"], record["replaced_by"]) == ("a.png", [120, 160], [160, 200])
    assert set(record) == {"image", "size", "replaced_by", "set_aside", "classes", "entry"}
    assert record["classes"] == ["scratch", "dent"]  # what the mask values in it stand for
    assert record["entry"]["status"] == "done" and record["entry"]["instances"][0]["rle"] == old_instance.rle
    assert (folder / "a.png").read_bytes() == old_copy  # the photo the outlines were drawn on
    assert read_mask(folder / "a_mask.png").shape == (120, 160)
    entry = reread.entry("a.png")
    assert (entry.status, entry.instances, entry.size) == ("unlabelled", [], None)
    assert not [p for p in files_under(reread.category_dir) if "/a" in p]  # no stale copy or mask left
    assert reread.entry("b.jpg").instances  # the other photos are untouched
    assert AnnotationSession.read(reread.out).entry("a.png").status == "unlabelled"  # saved
    # the new photo takes masks at its own size, and the tree stays one data set for the converters
    reread.add_instance("a.png", class_name="dent", mask=blob((160, 200), (10, 10, 40, 20)))
    assert read_mask(reread.category_dir / "ground_truth/dent/a_mask.png").shape == (160, 200)
    reread.persist()  # set aside once: the new photo's labels stay
    assert len(reread.entry("a.png").instances) == 1 and len(list((session.out / "replaced").iterdir())) == 1
    from converters.mvtec import categories_to_convert

    assert categories_to_convert(reread.out) == [reread.category]


def test_a_photo_replaced_while_the_page_runs_starts_afresh_when_opened_or_accepted_on(opened, photos):
    session, _ = opened
    # Nothing but its size left (all instances deleted): the new photo's mask is simply saved.
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 40, 20)))
    session.delete_instance("a.png", 1)
    replace_photo(photos[0] / "a.png")
    with pytest.raises(AnnotationError, match="mask is 90x80, image a.png is 200x160"):  # a bad mask still is
        session.add_instance("a.png", class_name="scratch", mask=blob((80, 90), (10, 10, 40, 20)))
    session.add_instance("a.png", class_name="scratch", mask=blob((160, 200), (10, 10, 40, 20)))
    assert session.entry("a.png").size == (160, 200) and not (session.out / "replaced").exists()
    # With labels: set aside when the photo is opened ...
    replace_photo(photos[0] / "a.png", (100, 100))
    notice = session.refresh_size("a.png")
    assert notice.startswith("a.png was replaced by a 100x100 photo: the labels of the 200x160 one")
    assert session.entry("a.png").instances == [] and session.refresh_size("a.png") is None
    # ... or when a mask of the new photo is accepted over them: refused, the page shows the old labels
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (5, 5, 20, 20)))
    replace_photo(photos[0] / "b.jpg", (50, 60))
    with pytest.raises(ConflictError, match=r"^b.jpg was replaced by a 60x50 photo: .*: open it again"):
        session.add_instance("b.jpg", class_name="dent", mask=blob((50, 60), (5, 5, 20, 20)))
    assert session.entry("b.jpg").status == "unlabelled"
    assert len(list((session.out / "replaced").iterdir())) == 2
    session.add_instance("b.jpg", class_name="dent", mask=blob((50, 60), (5, 5, 20, 20)))


def test_a_photo_set_aside_twice_in_one_second_gets_two_folders_and_its_proposals_go_too(
    opened, photos, monkeypatch
):
    from datetime import datetime, timezone

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            return datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    monkeypatch.setattr(session_module, "datetime", Frozen)
    session, _ = opened
    session.add_proposals({"a.png": [proposal((120, 160), (10, 10, 40, 20))]}, source="run-1")
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (60, 60, 90, 80)))
    replace_photo(photos[0] / "a.png")
    notice = session.refresh_size("a.png")
    assert "(1 instance(s), 1 proposal(s))" in notice
    entry = session.entry("a.png")
    assert (entry.proposals, entry.proposed, entry.undo_stack, entry.redo_stack) == ([], [], [], [])
    # the source proposes on the new photo anew (its proposals fit the old one's pixels)
    assert session.add_proposals({"a.png": [proposal((160, 200), (10, 10, 40, 20))]}, source="run-1") == 1
    replace_photo(photos[0] / "a.png", (100, 100))
    assert session.refresh_size("a.png") is not None
    folders = sorted(p.name for p in (session.out / "replaced").iterdir())
    assert folders == ["a-20260102T030405Z", "a-20260102T030405Z-2"]


def test_a_photo_set_aside_keeps_its_labels_in_memory_when_the_state_cannot_be_saved(
    opened, photos, monkeypatch
):
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 40, 20)))
    session.set_status("a.png", "done")
    replace_photo(photos[0] / "a.png")

    def full_disk():
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(session, "_save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        session.refresh_size("a.png")
    entry = session.entry("a.png")  # what the state on disk says: the next start sets it aside again
    assert (entry.status, len(entry.instances), entry.size) == ("done", 1, (120, 160))
    assert len(entry.undo_stack) == 2


def test_a_mask_of_another_size_than_an_unreplaced_photo_names_both(opened):
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 40, 20)))
    with pytest.raises(AnnotationError, match="mask is 90x80, image a.png is 160x120"):
        session.add_instance("a.png", class_name="scratch", mask=blob((80, 90), (10, 10, 40, 20)))
    assert session.refresh_size("a.png") is None and len(session.entry("a.png").instances) == 1


def test_a_first_mask_of_another_size_than_the_upright_photo_is_refused_before_saving(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    image = Image.fromarray(np.zeros((40, 80, 3), np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6  # shown 40 wide, 80 high
    image.save(folder / "phone.jpg", exif=exif)
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["dent"])
    with pytest.raises(AnnotationError, match="mask is 80x40, image phone.jpg is 40x80"):
        session.add_instance("phone.jpg", class_name="dent", mask=blob((40, 80), (0, 0, 5, 5)))
    assert session.entry("phone.jpg").instances == []
    reopened = AnnotationSession.open(tmp_path / "out")
    reopened.add_instance("phone.jpg", class_name="dent", mask=blob((80, 40), (0, 0, 5, 5)))
    assert len(reopened.entry("phone.jpg").instances) == 1


def test_the_image_folder_may_not_be_the_output_folder(photos):
    folder, _ = photos
    with pytest.raises(AnnotationError, match="inside the output folder"):
        AnnotationSession.open(folder, folder)
    assert not (folder / STATE_FILE).exists()


def test_a_state_of_another_version_is_refused(opened):
    session, _ = opened
    state = json.loads(session.state_path.read_text())
    state["version"] = 2
    session.state_path.write_text(json.dumps(state))
    with pytest.raises(AnnotationError, match="state version 2, this app reads 1$"):
        AnnotationSession.open(session.out)


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda entry: entry.update(stem="../../escaped"), "bad stem"),
        (lambda entry: entry.update(stem="_a"), "bad stem"),  # unique_stem strips a leading separator
        (lambda entry: entry.update(status="finished"), "unknown status"),
    ],
    ids=["stem", "stem-separator-first", "status"],
)
def test_a_state_with_a_bad_entry_is_refused(opened, change, error):
    session, _ = opened
    session.add_proposals({"a.png": [proposal((120, 160), (10, 10, 30, 20))]}, source="s")
    state = json.loads(session.state_path.read_text())
    change(state["images"]["a.png"])
    session.state_path.write_text(json.dumps(state))
    with pytest.raises(AnnotationError, match=error):
        AnnotationSession.open(session.out)


def test_a_state_keeps_an_undecided_proposal_of_a_class_it_lacks_but_accepts_it_only_as_one_of_them(
    opened,
):
    # anomaly.predict's 'anomaly' proposals under --classes scratch dent: the state was refused on reading
    session, _ = opened
    shape = (120, 160)
    session.add_proposals(
        {"a.png": [proposal(shape, (10, 10, 30, 20), "anomaly"), proposal(shape, (40, 40, 60, 60))]},
        source="s",
    )
    again = AnnotationSession.open(session.out)
    assert [p.class_name for p in again.entry("a.png").proposals] == ["anomaly", "scratch"]
    with pytest.raises(
        ConflictError, match=r"^a.png: anomaly is not a class here: press R to accept proposal #1 "
    ):
        again.accept_proposals("a.png", [1])
    (accepted,) = again.accept_proposals("a.png")  # all: those of a class, the other left
    assert accepted.class_name == "scratch" and [p.id for p in again.entry("a.png").proposals] == [1]
    assert again.not_a_class_notice("a.png").startswith("anomaly is not a class here")
    with pytest.raises(ConflictError, match="anomaly is not a class here"):
        again.accept_proposals("a.png")
    (renamed,) = again.accept_proposals("a.png", [1], class_name="dent")
    assert renamed.class_name == "dent" and again.not_a_class_notice("a.png") is None


def test_ids_follow_the_stored_ones_when_the_state_lacks_its_counters(opened):
    session, _ = opened
    shape = (120, 160)
    session.add_instance("a.png", class_name="scratch", mask=blob(shape, (0, 0, 5, 5)))
    session.add_proposals({"a.png": [proposal(shape, (10, 10, 30, 20))]}, source="s")
    state = json.loads(session.state_path.read_text())
    del state["images"]["a.png"]["next_id"], state["images"]["a.png"]["next_proposal_id"]
    session.state_path.write_text(json.dumps(state))
    again = AnnotationSession.open(session.out)
    assert again.add_instance("a.png", class_name="dent", mask=blob(shape, (50, 50, 60, 60))).id == 2
    again.add_proposals({"a.png": [proposal(shape, (100, 100, 110, 110))]}, source="t")
    assert [p.id for p in again.entry("a.png").proposals] == [1, 2]


def test_moving_to_another_photo_does_not_encode_every_photos_entry_again(opened, monkeypatch):
    # set_current encoded each photo's entry for the state file again (the larger the folder, the
    # longer each move took); a move changes none of them: the lines of the file written last are kept
    from segmentation.annotate.records import ImageEntry

    session, _ = opened
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (20, 20, 40, 40)))
    before = json.loads(session.state_path.read_text())
    encoded = []
    to_json = ImageEntry.to_json
    monkeypatch.setattr(ImageEntry, "to_json", lambda entry: encoded.append(entry.key) or to_json(entry))
    session.set_current("wide.png")
    assert encoded == []
    state = json.loads(session.state_path.read_text())
    assert state["current"] == "wide.png" and state["images"] == before["images"]
    session.set_current("wide.png")  # the same photo again: nothing to write
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5)))  # a change: all
    assert sorted(encoded) == sorted(session.keys)
    session.set_current("b.jpg")
    again = AnnotationSession.open(session.out)
    assert again.current == "b.jpg" and len(again.entry("a.png").instances) == 1
    assert [i.class_name for i in again.entry("b.jpg").instances] == ["dent"]


def test_a_resume_whose_current_photo_is_gone_starts_on_the_first(opened, photos):
    session, _ = opened
    session.set_current("b.jpg")
    (photos[0] / "b.jpg").unlink()
    assert AnnotationSession.open(session.out).current == "a.png"


def test_a_new_photo_never_takes_the_stem_of_an_annotated_one(opened, photos):
    session, _ = opened
    folder, _ = photos
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (0, 0, 5, 5)))
    (folder / "a.jpg").write_bytes((folder / "b.jpg").read_bytes())
    again = AnnotationSession.open(session.out)
    assert (again.entry("a.png").stem, again.entry("a.jpg").stem) == ("a", "a_2")
    assert files_under(again.category_dir) == [
        "ground_truth/dent/a_mask.png",
        "mask_values.json",
        "test/dent/a.png",
    ]


def test_a_removed_photo_whose_copy_is_gone_too_does_not_stop_a_resume(opened, photos):
    session, _ = opened
    folder, _ = photos
    session.add_instance("b.jpg", class_name="scratch", mask=blob((150, 100), (0, 0, 5, 5)))
    (folder / "b.jpg").unlink()
    (session.category_dir / "test/scratch/b.jpg").unlink()
    again = AnnotationSession.open(session.out, folder)
    assert "b.jpg" not in again.keys


@pytest.mark.parametrize("name", ["Good", "COMBINED"])
def test_reserved_folder_names_are_refused_in_any_case(photos, tmp_path, name):
    with pytest.raises(AnnotationError, match="reserved"):
        AnnotationSession.open(tmp_path / "out", photos[0], classes=[name])


def test_an_out_folder_named_export_gets_a_category_of_its_own(photos, tmp_path):
    assert AnnotationSession.open(tmp_path / "export", photos[0]).category == "export_defects"
    assert AnnotationSession.open(tmp_path / "replaced", photos[0]).category == "replaced_defects"
    # in any case: the category 'Export' beside the folder 'export' is one folder on macOS and Windows
    assert AnnotationSession.open(tmp_path / "Export", photos[0]).category == "Export_defects"
    out = tmp_path / "annotate_state.json"
    assert AnnotationSession.open(out, photos[0]).category == "annotate_state_defects.json"


@pytest.mark.parametrize(
    ("category", "message"),
    [
        ("Export", "the export folder beside it (macOS and Windows ignore case)"),
        ("REPLACED", "the replaced folder beside it (macOS and Windows ignore case)"),
        ("annotate_state.json", "the annotate_state.json file beside it; choose another"),
        ("Annotate_State.JSON", "the annotate_state.json file beside it (macOS and Windows ignore case)"),
    ],
)
def test_a_category_named_as_what_the_tool_writes_beside_it_in_any_case_is_refused(
    photos, tmp_path, category, message
):
    # taken on Linux, the first run on macOS failed with 'File exists' once the state was written (the
    # tree's folder was the export folder, or the state file)
    clash = f"^category '{category}' would clash with " + re.escape(message)
    with pytest.raises(AnnotationError, match=clash):
        AnnotationSession.open(tmp_path / "out", photos[0], category=category)
    assert not (tmp_path / "out").exists()


def test_a_session_saved_with_a_category_beside_which_only_case_tells_apart_resumes_with_a_warning(opened):
    # saved on Linux before such names were refused: it resumes, and --rename-category renames it
    session, _ = opened
    state = json.loads(session.state_path.read_text())
    state["category"] = "Export"
    session.state_path.write_text(json.dumps(state))
    session.category_dir.rename(session.out / "Export")
    again = AnnotationSession.open(session.out)
    assert again.category == "Export" and again.category_dir.is_dir()
    assert again.warnings == [
        f"warning: category 'Export' of {session.state_path} was saved before such names were refused: "
        "macOS and Windows take it for the export beside it (they ignore case); the tree cannot be copied "
        "whole to them: --rename-category NEW gives it another name"
    ]
    again.rename_category("lot_7")
    assert AnnotationSession.read(session.out).category == "lot_7"
    assert AnnotationSession.read(session.out).warnings == []


@pytest.mark.parametrize(
    ("out", "category"),
    [
        ("キズ_2026", "キズ_2026"),  # was 'new_defects': ASCII characters only were kept
        ("défauts lot 7", "défauts_lot_7"),
        ("lot 7 (new)", "lot_7_new"),  # as before
        ("con", "con_defects"),  # refused as a --category never typed
        ("Nul.lot", "Nul_defects.lot"),
        ("傷" * 84, "傷" * 82),  # room left for "_defects" in 255 bytes
        ("(((", "new_defects"),
    ],
)
def test_the_default_category_keeps_letters_of_any_script_and_is_a_folder_on_every_os(
    photos, tmp_path, out, category
):
    session = AnnotationSession.open(tmp_path / out, photos[0])
    assert session.category == category and session.category_dir.is_dir()


def test_a_new_photo_takes_no_stem_of_a_stored_one_in_another_case(photos, tmp_path):
    # Q_mask.png and q_mask.png are one file on macOS and Windows
    folder, _ = photos
    cv2.imwrite(str(folder / "Q.png"), np.full((20, 30, 3), 80, np.uint8))
    AnnotationSession.open(tmp_path / "out", folder).persist()
    cv2.imwrite(str(folder / "q.jpg"), np.full((20, 30, 3), 80, np.uint8))
    reopened = AnnotationSession.open(tmp_path / "out")
    assert (reopened.entry("Q.png").stem, reopened.entry("q.jpg").stem) == ("Q", "q_2")


def test_a_new_session_refuses_a_category_folder_it_did_not_write(photos, tmp_path):
    # --out datasets/mvtec_ad --category hazelnut: the data set's test/scratch/a.png and its mask
    # were overwritten by the photo of the same name, and deleting the instance removed them
    folder = tmp_path / "mvtec_ad" / "hazelnut"
    for path in ("test/scratch/a.png", "ground_truth/scratch/a_mask.png", "train/good/000.png"):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(b"theirs")
    written = (
        rf"hazelnut exists and was not written by this tool \({tmp_path / 'mvtec_ad'} holds no {STATE_FILE}\)"
    )
    with pytest.raises(AnnotationError, match=written) as refused:
        AnnotationSession.open(tmp_path / "mvtec_ad", photos[0], classes=["scratch"], category="hazelnut")
    assert str(refused.value).endswith(
        ": its files would be overwritten; give --out a new folder, or another --category"
    )
    assert (folder / "test/scratch/a.png").read_bytes() == b"theirs"
    (tmp_path / "empty" / "empty").mkdir(parents=True)  # made beforehand, as --out may be: taken
    assert AnnotationSession.open(tmp_path / "empty", photos[0]).category == "empty"


def test_a_photo_named_in_another_script_keeps_its_stem_on_resume(photos, tmp_path):
    # the state's stems are checked on reading: one in another script must read back as written
    folder, _ = photos
    shutil.copy(folder / "a.png", folder / "傷.png")
    session = AnnotationSession.open(tmp_path / "out", folder, classes=["scratch"])
    assert session.entry("傷.png").stem == "傷"
    assert AnnotationSession.open(tmp_path / "out").entry("傷.png").stem == "傷"


def test_a_link_named_as_the_category_is_refused_even_if_it_leads_nowhere(photos, tmp_path):
    # a dangling link exists() not: the tree would be written wherever it comes to point
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "hazelnut").symlink_to(tmp_path / "nowhere")
    with pytest.raises(AnnotationError, match=r"hazelnut exists and was not written by this tool"):
        AnnotationSession.open(tmp_path / "out", photos[0], category="hazelnut")


def test_an_mvtec_category_as_images_is_refused_naming_its_photos_folder(tmp_path, category_factory):
    # its ground_truth/<defect>/*_mask.png were listed first among the photos to outline
    category = category_factory(tmp_path / "mvtec", "hazelnut")
    with pytest.raises(UserError, match=r"an MVTec category's defect masks, not photos: .*hazelnut/test"):
        AnnotationSession.open(tmp_path / "labelled", category)
    assert not (tmp_path / "labelled").exists()
    keys = AnnotationSession.open(tmp_path / "labelled", category / "test").keys
    assert keys and not any(key.endswith("_mask.png") for key in keys)


@pytest.mark.parametrize(
    "keys, expected",
    [
        (["a.png", "A.png"], ["a", "A_2"]),
        (["x" * 250 + ".png"], ["x" * 180]),
        (["傷.png", "lot #1/ü.png", "°.png"], ["傷", "lot_1__ü", "image"]),  # were 'image', 'lot_1___'
        (["de\u0301faut.png", "d\u00e9faut.jpg"], ["d\u00e9faut", "d\u00e9faut_2"]),  # macOS: NFD
        (["傷" * 100 + ".png"], ["傷" * 60]),  # 180 bytes of UTF-8, not 180 characters
        (["-rf.png", ".x.png"], ["rf", "x"]),  # no stem starts like a shell option or a hidden file
        (["ＡＢ.png"], ["ＡＢ"]),  # NFC composes accents only: full-width letters stay as they are
    ],
    ids=[
        "case-clash",
        "long-name",
        "other-scripts",
        "decomposed",
        "long-name-in-bytes",
        "separator-first",
        "compatibility-forms",
    ],
)
def test_stems_clash_case_insensitively_and_fit_a_file_name(keys, expected):
    taken: set[str] = set()
    assert [unique_stem(key, taken) for key in keys] == expected


def test_an_instance_the_masks_already_hide_does_not_refuse_every_other_mask(opened, monkeypatch):
    # a state saved before two masks were checked together: the scratch shows nowhere in the masks;
    # a dent elsewhere covers none of it and is accepted
    session, _ = opened
    shape = (120, 160)
    with monkeypatch.context() as patch:
        patch.setattr(session_module, "check_not_hiding", lambda *args: None)
        session.add_instance("a.png", class_name="scratch", mask=blob(shape, (12, 12, 18, 18)))
        session.add_instance("a.png", class_name="dent", mask=blob(shape, (10, 10, 20, 20)))
    session.add_instance("a.png", class_name="dent", mask=blob(shape, (50, 50, 60, 60)))
    assert [i.class_name for i in session.entry("a.png").instances] == ["scratch", "dent", "dent"]


def test_a_session_begun_inside_its_photo_folder_lists_none_of_its_own_copies(photos, tmp_path):
    # begun so before that was refused: its tree's copies of the photos are no photos to outline
    folder, _ = photos
    begun = AnnotationSession.open(tmp_path / "annotations", folder, classes=["scratch"])
    begun.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    (tmp_path / "annotations").rename(folder / "annotations")
    assert next((folder / "annotations").rglob("a.png"), None) is not None  # the tree's copy
    assert AnnotationSession.open(folder / "annotations", folder).keys == begun.keys


def test_a_stored_instance_of_an_unknown_class_is_refused(opened):
    # a state edited by hand, or one whose class list lost a name: not only proposals are checked
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    state = json.loads(session.state_path.read_text())
    state["images"]["a.png"]["instances"][0]["class"] = "stain"
    session.state_path.write_text(json.dumps(state))
    with pytest.raises(
        AnnotationError, match=r"annotate_state.json: image a.png has instances of unknown class"
    ):
        AnnotationSession.open(session.out)


@pytest.mark.parametrize(
    "status, instances, message",
    [
        # 'good' with instances went into test/good without them: "no defect image left to convert"
        ("good", True, r"status 'good' with 1 instance\(s\), which a photo marked good never has: set its"),
        ("unlabelled", True, r"status 'unlabelled' with 1 instance\(s\), which a photo marked unlabelled"),
        # counted as done, left out of every export
        (
            "done",
            False,
            r"status 'done' with no instance, which a photo done always has: set its 'status' to",
        ),
        (
            "in_progress",
            False,
            r"status 'in_progress' with no instance, which a photo in progress always has",
        ),
    ],
)
def test_a_stored_status_its_instances_contradict_is_refused_naming_the_file_and_photo(
    opened, status, instances, message
):
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    state = json.loads(session.state_path.read_text())
    entry = state["images"]["a.png"]
    entry["status"] = status  # edited by hand
    if not instances:
        entry["instances"] = []
    session.state_path.write_text(json.dumps(state))
    with pytest.raises(
        AnnotationError, match=rf"^{re.escape(str(session.state_path))}: bad entry for image a.png: {message}"
    ):
        AnnotationSession.open(session.out)
    with pytest.raises(AnnotationError, match=message):  # nor exported from
        AnnotationSession.read(session.out, photos_optional=True)


@pytest.mark.parametrize("what", ["instances", "proposals"])
def test_a_stored_id_two_instances_or_proposals_share_is_refused(opened, what):
    # edited by hand (an instance copied): one delete took both, and the page showed one's outline twice
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (50, 50, 60, 60)))
    session.add_proposals({"a.png": [proposal((120, 160), (80, 80, 90, 90))]}, source="run-1")
    session.add_proposals({"a.png": [proposal((120, 160), (100, 10, 110, 20))]}, source="run-2")
    state = json.loads(session.state_path.read_text())
    items = state["images"]["a.png"][what]
    items[1]["id"] = items[0]["id"]
    session.state_path.write_text(json.dumps(state))
    kind = what[:-1]
    with pytest.raises(
        AnnotationError,
        match=rf"^{re.escape(str(session.state_path))}: bad entry for image a.png: two {kind}s with id 1, "
        rf"which the app never gives twice in a photo \(a delete would take both\): give each {kind}",
    ):
        AnnotationSession.open(session.out)


def _set(*path_and_value):
    """A change of a state: the value at a path of keys and indices (``"images", "a.png", "stem"``)."""
    *path, last, value = path_and_value

    def change(state: dict) -> None:
        for key in path:
            state = state[key]
        state[last] = value

    return change


def _first_rle(state: dict) -> dict:
    return state["images"]["a.png"]["instances"][0]["rle"]


@pytest.mark.parametrize(
    "change, error",
    [
        # each stopped the command with a traceback: pycocotools' "Invalid RLE mask representation",
        # AttributeError ('list' object has no attribute 'items'), TypeError, KeyError
        (lambda state: _first_rle(state).update(size=[10, 10]), "runs do not cover its 10x10 mask"),
        (lambda state: _first_rle(state).update(counts="!!"), "not a character of COCO's RLE"),
        (lambda state: _first_rle(state).update(counts=5), "counts must be COCO's compressed string"),
        (_set("images", "a.png", "size", [60, 80]), r"instances of size \[\(120, 160\)\] on an image of"),
        (_set("images", "a.png", None), "an entry is a JSON object, got NoneType"),
        (_set("images", []), "'images' must be an object, got \\[\\]"),
        (_set("classes", "scratch"), "'classes' must be a list of class names"),  # was "listed twice: c"
        (_set("classes", [1, "dent"]), "'classes' must be a list of class names"),
        (_set("images_dir", 5), "'images_dir' must be a string, got 5"),
        (lambda state: state.pop("images_dir"), "'images_dir' must be a string, got null"),
        (_set("current", ["a.png"]), "'current' must be a string"),
        # a category rename cut short: the next start moved that folder, outside --out too, into the tree
        (_set("category_was", "../photos"), "'category_was' must be a category name, got \"../photos\""),
        (_set("category_was", "export"), "'category_was' must be a category name, got \"export\""),
        # an export with the photos gone copies images_dir / key into the tree
        (lambda state: state["images"].update({"../x.png": state["images"]["a.png"]}), "is no path below"),
        # two photos, one copy and one mask in the tree
        (lambda state: state["images"].update({"b.jpg": state["images"]["a.png"]}), "have one stem, a$"),
    ],
    ids=(
        "rle-size rle-characters rle-counts-number instance-size entry-null images-list classes-text "
        "classes-number images-dir-number images-dir-missing current-list category-was-path "
        "category-was-export key-outside stem-twice"
    ).split(),
)
def test_a_hand_edited_state_is_refused_in_one_line_naming_what_is_wrong(opened, change, error):
    session, _ = opened
    session.add_instance("a.png", class_name="dent", mask=blob((120, 160), (10, 10, 30, 20)))
    state = json.loads(session.state_path.read_text())
    change(state)
    session.state_path.write_text(json.dumps(state))
    with pytest.raises(AnnotationError, match=error):
        AnnotationSession.open(session.out)
    assert session.images_dir.is_dir()  # no folder of the state's moved into the tree


def test_an_empty_category_is_a_bad_name_not_the_default_one(photos, tmp_path):
    # --category "$CATEGORY" with the variable unset wrote the tree under the --out folder's name
    with pytest.raises(AnnotationError, match="^bad category name ''"):
        AnnotationSession.read(tmp_path / "out", photos[0], category="")


def test_a_read_only_out_is_refused_when_read_not_once_the_model_has_loaded(opened, monkeypatch):
    # the command reads the session, loads SAM, then writes: a read-only --out failed only then
    session, _ = opened
    writable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != session.out and writable(path, mode))
    with pytest.raises(AnnotationError, match=f"^{session.out} is not writable: every change is saved there"):
        AnnotationSession.read(session.out)


def test_a_state_file_holding_no_json_object_is_named_as_no_state(opened):
    session, _ = opened
    session.state_path.write_text("[]")  # not an AttributeError's traceback
    with pytest.raises(AnnotationError, match=r"annotate_state.json is not an annotation state written by"):
        AnnotationSession.open(session.out)


def test_a_resume_may_name_its_own_category(opened, photos):
    session, _ = opened
    session.persist()
    again = AnnotationSession.open(session.out, photos[0], category="new_defects")
    assert again.category == "new_defects"


def test_the_photo_folder_is_stored_absolute_with_home_expanded(photos, tmp_path, monkeypatch):
    # --images=~/photos (no shell expands a ~ after '='), or a relative one resumed from elsewhere
    folder, _ = photos
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(folder.parent)
    for images, out in (("~/photos", tmp_path / "out1"), ("photos", tmp_path / "out2")):
        AnnotationSession.open(out, images).persist()
        assert json.loads((out / STATE_FILE).read_text())["images_dir"] == str(folder), images
    monkeypatch.chdir(tmp_path / "out1")
    assert AnnotationSession.open(tmp_path / "out2").images_dir == folder


def test_a_photo_folder_typed_with_a_leading_dotdot_is_named_without_it(photos, tmp_path, monkeypatch):
    # --images ../photos from tmp/lot was stored, and named in every line, as tmp/lot/../photos
    folder, _ = photos
    (tmp_path / "lot").mkdir()
    monkeypatch.chdir(tmp_path / "lot")
    session = AnnotationSession.open(tmp_path / "out", "../photos")
    assert session.images_dir == folder
    session.persist()
    assert json.loads((tmp_path / "out" / STATE_FILE).read_text())["images_dir"] == str(folder)
    # a '..' after a folder typed stays: through a link it opens the link's target's parent
    (tmp_path / "deep" / "sub").mkdir(parents=True)
    (tmp_path / "lot" / "link").symlink_to(tmp_path / "deep" / "sub")
    typed = images_dir_of({}, "link/../photos", tmp_path / "out2")
    assert typed.parts[-3:] == ("link", "..", "photos") and typed.parent.parent.parent == tmp_path / "lot"
    assert images_dir_of({}, str(tmp_path / "lot" / ".." / "photos"), tmp_path / "out2").parts[-2] == ".."


def test_an_out_folder_typed_with_a_leading_dotdot_is_named_without_it(photos, tmp_path, monkeypatch):
    # --out ../out from tmp/lot was named tmp/lot/../out by the session, the lock and the saved classes
    from segmentation.annotate.__main__ import OutLock
    from segmentation.annotate.state_file import saved_classes

    folder, _ = photos
    (tmp_path / "lot").mkdir()
    monkeypatch.chdir(tmp_path / "lot")
    session = AnnotationSession.open("../out", folder, classes=["dent"])
    assert session.out == tmp_path / "out" and session.state_path == tmp_path / "out" / STATE_FILE
    assert OutLock(Path("../out")).out == tmp_path / "out"
    assert saved_classes("../out") == ["dent"]
    assert AnnotationSession.open("../out").out == tmp_path / "out"  # a resume: the same folder


def test_a_stored_photo_folder_is_named_without_a_dotdot_after_a_folder_no_link(photos, tmp_path):
    # a state saved before --images ../photos was tidied holds tmp/lot/../photos: every line of a resume
    # without --images named it so
    folder, _ = photos
    (tmp_path / "lot").mkdir()
    (tmp_path / "deep" / "sub").mkdir(parents=True)
    (tmp_path / "lot" / "link").symlink_to(tmp_path / "deep" / "sub")
    session = AnnotationSession.open(tmp_path / "out", folder)
    session.add_instance("a.png", class_name="defect", mask=blob((120, 160), (10, 10, 30, 30)))
    state = json.loads(session.state_path.read_text())

    def stored(images_dir: str) -> dict:
        session.state_path.write_text(json.dumps({**state, "images_dir": images_dir}))
        return json.loads(session.state_path.read_text())

    stored(os.path.join(tmp_path, "lot", "..", "photos"))
    again = AnnotationSession.open(session.out)
    assert again.images_dir == folder
    assert json.loads(session.state_path.read_text())["images_dir"] == str(folder)  # saved tidied
    # after a link, '..' opens the target's parent: tmp/lot/link/../.. is tmp, not tmp/lot; kept as stored
    through_link = os.path.join(tmp_path, "lot", "link", "..", "..", "photos")
    assert images_dir_of(stored(through_link), None, session.out) == Path(through_link)
    assert AnnotationSession.read(session.out).images_dir == Path(through_link)
    # after a folder that is not there, it opens nothing: kept, and named as stored
    gone = os.path.join(tmp_path, "gone", "..", "photos")
    with pytest.raises(AnnotationError, match=f"were in {re.escape(gone)}, which is not a folder now"):
        images_dir_of(stored(gone), None, session.out)
    # another folder of the same names is refused naming the stored folder tidied
    moved = shutil.copytree(folder, tmp_path / "moved")
    other = bytearray((moved / "a.png").read_bytes())
    other[len(other) // 2] ^= 0xFF
    (moved / "a.png").write_bytes(bytes(other))
    stored(os.path.join(tmp_path, "lot", "..", "photos"))
    with pytest.raises(AnnotationError, match=f"as a\\.png in {re.escape(str(folder))} \\(its copy"):
        AnnotationSession.read(session.out, moved)
    # the photos gone, an export names their folder tidied
    folder.rename(tmp_path / "archived")
    assert AnnotationSession.read(session.out, photos_optional=True).images_dir == folder


def test_entries_follow_the_folder_order_then_the_gone_photos(opened, photos):
    session, _ = opened
    session.persist()
    state = json.loads(session.state_path.read_text())
    state["images"] = dict(reversed(state["images"].items()))  # stored in another order
    session.state_path.write_text(json.dumps(state))
    (photos[0] / "b.jpg").unlink()
    again = AnnotationSession.open(session.out)
    assert again.keys == ["a.png", "lot_2/c.png", "wide.png"]  # the page's list
    again.persist()
    assert list(json.loads(session.state_path.read_text())["images"]) == [*again.keys, "b.jpg"]


def test_a_rename_gives_the_state_and_the_tree_the_new_name_and_keeps_the_mask_values(opened):
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (20, 20, 40, 40)))
    session.add_instance("lot_2/c.png", class_name="scratch", mask=blob((96, 128), (5, 5, 15, 15)))
    session.add_instance("lot_2/c.png", class_name="dent", mask=blob((96, 128), (50, 50, 60, 60)))
    session.add_proposals({"wide.png": [proposal((300, 640), (10, 10, 40, 40))]}, source="test.json")
    masks = {p.name: p.read_bytes() for p in (session.category_dir / "ground_truth").rglob("*.png")}
    session.rename_classes({"scratch": "scuff"})
    assert session.classes == ["scuff", "dent"]
    tree = files_under(session.category_dir)
    assert "test/scuff/a.png" in tree and "ground_truth/scuff/a_mask.png" in tree
    assert not any("scratch" in path for path in tree)
    assert {p.name: p.read_bytes() for p in (session.category_dir / "ground_truth").rglob("*.png")} == masks
    values = json.loads((session.category_dir / "mask_values.json").read_text())
    assert values == {"255": "scuff", "254": "dent", "0": "good"}
    again = AnnotationSession.open(session.out)  # the state says so too
    assert again.classes == ["scuff", "dent"]
    assert [i.class_name for i in again.entry("lot_2/c.png").instances] == ["scuff", "dent"]
    assert [p.class_name for p in again.entry("wide.png").proposals] == ["scuff"]
    assert "scratch" not in session.state_path.read_text()


def test_undo_after_a_rename_brings_no_old_name_back(opened):
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (50, 50, 60, 60)))
    session.rename_classes({"scratch": "scuff"})
    session.undo("a.png")
    session.redo("a.png")
    session.undo("a.png")
    assert [i.class_name for i in session.entry("a.png").instances] == ["scuff"]
    assert AnnotationSession.open(session.out).classes == ["scuff", "dent"]  # was: unknown class 'scratch'


def test_two_classes_swap_names_and_their_photos_swap_folders(opened):
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (20, 20, 40, 40)))
    session.rename_classes({"scratch": "dent", "dent": "scratch"})
    assert session.classes == ["dent", "scratch"]
    assert files_under(session.category_dir) == [
        "ground_truth/dent/a_mask.png",
        "ground_truth/scratch/b_mask.png",
        "mask_values.json",
        "test/dent/a.png",
        "test/scratch/b.jpg",
    ]
    assert read_mask(session.category_dir / "ground_truth/dent/a_mask.png").max() == 255  # the first class


def _case_rename_cut_before_the_tree(session, monkeypatch) -> bytes:
    """``session`` with one instance of ``scratch`` renamed ``Scratch``, cut short after the state, before the
    tree's folders; the instance's mask file as saved."""
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    mask = (session.category_dir / "ground_truth/scratch/a_mask.png").read_bytes()

    def killed(category_dir, renames):
        raise KeyboardInterrupt

    monkeypatch.setattr(session_module.export, "rename_class_folders", killed)
    with pytest.raises(KeyboardInterrupt):
        session.rename_classes({"scratch": "Scratch"})
    monkeypatch.undo()
    return mask


def test_a_photo_removed_from_the_folder_moves_with_its_class_in_a_swap(opened, photos):
    # its copy stayed in test/scratch, the folder of the class that now names the other: the tree, and the
    # export's file names, filed it under the wrong class until the photo came back
    session, _ = opened
    folder, _ = photos
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    session.add_instance("b.jpg", class_name="dent", mask=blob((150, 100), (20, 20, 40, 40)))
    (folder / "a.png").unlink()
    again = AnnotationSession.open(session.out)
    assert "a.png" not in again.keys  # labelled, its copy in the tree
    again.rename_classes({"scratch": "dent", "dent": "scratch"})
    assert files_under(again.category_dir) == [
        "ground_truth/dent/a_mask.png",
        "ground_truth/scratch/b_mask.png",
        "mask_values.json",
        "test/dent/a.png",
        "test/scratch/b.jpg",
    ]


@pytest.mark.parametrize("cut", ["before the tree", "between test and ground_truth"])
def test_a_rename_cut_short_after_the_state_resumes_with_the_new_names(opened, monkeypatch, cut):
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    session.set_status("a.png", "done")
    mask = (session.category_dir / "ground_truth/scratch/a_mask.png").read_bytes()

    def killed(category_dir, renames):
        if cut != "before the tree":
            os.rename(category_dir / "test/scratch", category_dir / "test/scuff")
        raise KeyboardInterrupt

    monkeypatch.setattr(session_module.export, "rename_class_folders", killed)
    with pytest.raises(KeyboardInterrupt):
        session.rename_classes({"scratch": "scuff"})
    monkeypatch.undo()
    again = AnnotationSession.open(session.out)
    assert again.classes == ["scuff", "dent"] and again.entry("a.png").status == "done"
    assert files_under(again.category_dir) == [
        "ground_truth/scuff/a_mask.png",
        "mask_values.json",
        "test/scuff/a.png",
    ]
    assert (again.category_dir / "ground_truth/scuff/a_mask.png").read_bytes() == mask


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_a_case_only_rename_cut_short_gets_the_folders_new_spelling_on_a_case_blind_file_system(
    opened, monkeypatch
):
    # macOS and Windows find test/Scratch as the folder test/scratch: after a rename scratch=Scratch cut
    # short before the tree, every file was found in place and the folders kept their old spelling for
    # good. Here that file system is a link Scratch -> scratch for the lookup, a listing of the names as
    # stored (the links left out), and a rename onto the link's name that leaves no second entry.
    session, _ = opened
    mask = _case_rename_cut_before_the_tree(session, monkeypatch)
    for part in ("test", "ground_truth"):
        (session.category_dir / part / "Scratch").symlink_to("scratch")
    listdir, rename = os.listdir, os.rename

    def stored_names(path="."):
        return [name for name in listdir(path) if not os.path.islink(os.path.join(path, name))]

    def rename_blind_to_case(source, target):
        if os.path.islink(target):  # the stand-in for the folder's other spelling
            os.unlink(target)
        rename(source, target)

    monkeypatch.setattr(os, "listdir", stored_names)
    monkeypatch.setattr(os, "rename", rename_blind_to_case)
    again = AnnotationSession.open(session.out)
    monkeypatch.undo()
    assert again.classes == ["Scratch", "dent"]
    for part in ("test", "ground_truth"):
        assert os.listdir(again.category_dir / part) == ["Scratch"]
        assert not (again.category_dir / part / "Scratch").is_symlink()
    assert files_under(again.category_dir) == [
        "ground_truth/Scratch/a_mask.png",
        "mask_values.json",
        "test/Scratch/a.png",
    ]
    assert (again.category_dir / "ground_truth/Scratch/a_mask.png").read_bytes() == mask


def test_a_case_only_rename_cut_short_in_its_hidden_folder_leaves_no_folder_behind(opened, monkeypatch):
    # cut short between match_class_folder_case's two renames (a case-blind file system): the next start
    # moved the photo's files out of the hidden folder, but a file browser's .DS_Store in it kept it for good
    session, _ = opened
    mask = _case_rename_cut_before_the_tree(session, monkeypatch)
    for part in ("test", "ground_truth"):
        hidden = session.category_dir / part / ".scratch.case-4242.tmp"
        os.rename(session.category_dir / part / "scratch", hidden)
        (hidden / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    again = AnnotationSession.open(session.out)
    for part in ("test", "ground_truth"):
        assert os.listdir(again.category_dir / part) == ["Scratch"]
    assert files_under(again.category_dir) == [
        "ground_truth/Scratch/a_mask.png",
        "mask_values.json",
        "test/Scratch/a.png",
    ]
    assert (again.category_dir / "ground_truth/Scratch/a_mask.png").read_bytes() == mask


def test_a_users_hidden_folder_in_the_tree_survives_a_start(opened):
    # the start's tree repair took every folder under test/ and ground_truth/ for a class folder: a copy
    # kept in test/.backup was moved into the class folder, a mask kept beside it deleted as a stale one
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    tree = session.category_dir
    kept = {
        tree / "test/.backup/a.png": b"an older copy",
        tree / "ground_truth/.backup/a_mask.png": b"an older mask",
        tree / "ground_truth/.old/b_mask.png": b"a mask of a photo with no files",
    }
    for path, data in kept.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    os.unlink(tree / "test/scratch/a.png")  # a start repairs it: from the photo, not the user's copy
    again = AnnotationSession.open(session.out)
    assert {path: path.read_bytes() for path in kept} == kept
    assert (again.category_dir / "test/scratch/a.png").read_bytes() not in (b"", b"an older copy")


def test_a_rename_the_state_cannot_take_changes_nothing(opened, monkeypatch):
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    state = session.state_path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(session_module, "atomic_write", full)
    with pytest.raises(StorageError, match="^nothing saved: cannot write"):
        session.rename_classes({"scratch": "scuff"})
    assert session.classes == ["scratch", "dent"]
    assert session.entry("a.png").instances[0].class_name == "scratch"
    assert session.state_path.read_bytes() == state
    assert (session.category_dir / "test/scratch/a.png").is_file()
    monkeypatch.undo()
    session.undo("a.png")  # its history is as it was
    assert not session.entry("a.png").instances


def test_a_rename_refused_by_the_name_rules_writes_nothing(opened):
    session, _ = opened
    state = session.state_path.read_bytes()
    with pytest.raises(AnnotationError, match="^no class 'scrach' to rename: the classes are scratch dent$"):
        session.rename_classes({"scrach": "scuff"})
    with pytest.raises(AnnotationError, match="^cannot rename class 'scratch' to 'Dent'"):
        session.rename_classes({"scratch": "Dent"})
    assert session.state_path.read_bytes() == state and session.classes == ["scratch", "dent"]


def test_a_category_rename_moves_the_tree_and_the_state_and_a_resume_takes_it(opened):
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    tree = files_under(session.category_dir)
    session.rename_category("lot_7")
    assert session.category_dir == session.out / "lot_7"
    assert files_under(session.category_dir) == tree and not (session.out / "new_defects").exists()
    state = json.loads(session.state_path.read_text())
    assert state["category"] == "lot_7" and "category_was" not in state
    assert AnnotationSession.open(session.out).category == "lot_7"


@pytest.mark.parametrize("photos_gone", [False, True], ids=["photos there", "photos gone"])
def test_a_category_rename_cut_short_is_finished_by_the_next_start(opened, photos, monkeypatch, photos_gone):
    # the state names the new folder at once: without the old name beside it, the next start wrote a
    # second tree under the new name beside the old one (or, the photos gone, failed for want of copies)
    session, _ = opened
    folder, _ = photos
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    tree = files_under(session.category_dir)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(session_module.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        session.rename_category("lot_7")
    monkeypatch.undo()
    assert json.loads(session.state_path.read_text())["category_was"] == "new_defects"
    if photos_gone:
        shutil.rmtree(folder)
    again = AnnotationSession.read(session.out, photos_optional=True)
    again.persist()
    assert sorted(p.name for p in session.out.iterdir()) == ["annotate_state.json", "lot_7"]
    assert files_under(session.out / "lot_7") == tree
    assert "category_was" not in json.loads(session.state_path.read_text())
    again.export()
    assert (session.out / "export" / "data.yaml").is_file()


def test_a_category_rename_cut_short_whose_folder_stays_refused_says_so_at_the_next_start(
    opened, monkeypatch
):
    # the next start stopped with a bare 'Permission denied: .../lot_7 (from .../new_defects)' (exit 1)
    session, _ = opened
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))

    def killed(*args):
        raise KeyboardInterrupt

    def refused(source, target):
        raise PermissionError(errno.EACCES, "Permission denied", str(source), None, str(target))

    monkeypatch.setattr(session_module.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        session.rename_category("lot_7")
    monkeypatch.setattr(session_module.os, "rename", refused)
    state = session.state_path.read_bytes()
    out = session.out
    message = (
        f"the rename of category new_defects to lot_7, cut short earlier, must be finished before anything "
        f"else, but {out / 'new_defects'} cannot be renamed to {out / 'lot_7'} (Permission denied: "
        f"{out / 'lot_7'} (from {out / 'new_defects'})); make {out} writable, then run it again"
    )
    for splits_later in (False, True):  # a page cannot start without its tree either
        with pytest.raises(StorageError, match=f"^{re.escape(message)}$"):
            AnnotationSession.read(out, photos_optional=True).persist(splits_later=splits_later)
    assert session.state_path.read_bytes() == state


@pytest.mark.parametrize("what", ["class", "category"])
def test_a_resume_from_other_photos_after_a_rename_cut_short_is_refused(opened, photos, monkeypatch, what):
    # the state names the new folder, the tree is still under the old one: the copy was looked for where
    # the state puts it alone, so the next lot's a.png resumed, its copy overwritten under a.png's masks
    session, _ = opened
    folder, _ = photos
    session.add_instance("a.png", class_name="scratch", mask=blob((120, 160), (10, 10, 30, 20)))
    tree = session.category_dir
    before = files_under(tree)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(session_module.os, "rename", killed)
    monkeypatch.setattr(session_module.export, "rename_class_folders", killed)
    with pytest.raises(KeyboardInterrupt):
        session.rename_classes({"scratch": "scuff"}) if what == "class" else session.rename_category("lot_7")
    monkeypatch.undo()
    next_lot = shutil.copytree(folder, folder.parent / "lot_8")
    (next_lot / "a.png").write_bytes((folder / "lot_2" / "c.png").read_bytes())  # another photo
    with pytest.raises(AnnotationError, match=r"a\.png is not the photo annotated as a\.png in .*photos"):
        AnnotationSession.read(session.out, next_lot)
    assert files_under(tree) == before


@pytest.mark.parametrize(
    "name, message",
    [
        ("nul", "bad category name 'nul': Windows keeps the name 'nul'"),
        ("lot 7", "bad category name 'lot 7': use letters and digits"),
        ("export", "category 'export' would clash with the export folder beside it"),
        ("Export", "category 'Export' would clash with the export folder beside it (macOS and Windows"),
        ("taken", "cannot rename category 'new_defects' to 'taken': {out}/taken exists; move it away"),
    ],
)
def test_a_category_rename_refused_writes_nothing(opened, name, message):
    session, _ = opened
    (session.out / "taken").mkdir()
    state = session.state_path.read_bytes()
    with pytest.raises(AnnotationError, match="^" + re.escape(message.format(out=session.out))):
        session.rename_category(name)
    assert session.state_path.read_bytes() == state and session.category == "new_defects"
    assert session.category_dir.is_dir()


def test_a_proposal_accepted_on_a_photo_changed_since_it_was_proposed_says_what_to_do(opened, photos):
    # proposals are a photo's only outlines until one is accepted: a photo removed from --images while the
    # page ran answered 'no such file: a.png' (docs/annotate.md's 404 says nothing changed), and one
    # replaced by another size 400 'mask is 160x120, image b.jpg is 40x30', the old photo's proposals kept
    session, _ = opened
    folder, _ = photos
    session.add_proposals({"a.png": [proposal((120, 160), (10, 10, 30, 20))]}, source="s")
    session.add_proposals({"b.jpg": [proposal((150, 100), (5, 5, 9, 9))]}, source="s")
    (folder / "a.png").unlink()
    with pytest.raises(
        NotFoundError, match=f"^a.png is no longer in {re.escape(str(folder))}: nothing changed"
    ):
        session.accept_proposals("a.png", class_name="dent")
    assert len(session.entry("a.png").proposals) == 1
    cv2.imwrite(str(folder / "b.jpg"), np.zeros((30, 40, 3), np.uint8))
    with pytest.raises(
        ConflictError, match=r"^b.jpg was replaced by a 40x30 photo: .*: open it again to annotate it$"
    ):
        session.accept_proposals("b.jpg")
    assert session.entry("b.jpg").proposals == [] and session.entry("b.jpg").instances == []
