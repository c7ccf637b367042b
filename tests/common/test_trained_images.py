"""Which photos a model was trained on, by their bytes, and the warning when a scored split holds them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from common.errors import UserError
from common.trained_images import (
    TRAINED_IMAGES,
    read_trained_images,
    record_trained_images,
    trained_overlap_warning,
)


def photo(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_a_split_holding_train_photos_is_warned_of(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train = [photo(tmp_path / "images" / "train" / f"{n}.png", n.encode()) for n in ("a", "b", "c")]
    record_trained_images(run, [*train, train[0]])  # a repeat-sampled list names a photo twice
    assert read_trained_images(run) == {
        "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb": "a.png",
        "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d": "b.png",
        "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6": "c.png",
    }
    folder = tmp_path / "images" / "test"
    test = [photo(folder / "d.png", b"d"), photo(folder / "b.png", b"b")]
    test.append(shutil.copyfile(train[2], folder / "renamed.png"))
    warning = trained_overlap_warning(run, test, "test", model="the detector")
    assert warning == (
        f"warning: 2 of the 3 test photos (b.png, ...) are photos the detector was trained on, byte for byte "
        f"({run / TRAINED_IMAGES}): the data set was converted again since it was trained? Its figures here "
        "overstate it"
    )
    renamed = trained_overlap_warning(run, test[2:], "val")
    assert "(renamed.png, its train photo c.png) is a photo the model was" in renamed
    assert trained_overlap_warning(run, test[:1], "test") is None  # nothing of train
    assert trained_overlap_warning(run, train, "train") is None  # scoring train is what it says
    assert trained_overlap_warning(None, test, "test") is None  # no run known


@pytest.mark.parametrize("text", [None, "not json", json.dumps({"images": [{"file": "a.png"}]}), "[]"])
def test_without_a_readable_record_nothing_is_said(tmp_path: Path, text: str | None) -> None:
    if text is not None:
        (tmp_path / TRAINED_IMAGES).write_text(text)
    scored = [photo(tmp_path / "a.png", b"a")]
    assert read_trained_images(tmp_path) is None and trained_overlap_warning(tmp_path, scored, "test") is None


def test_an_unreadable_photo_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=f"{tmp_path / 'gone.png'}"):
        record_trained_images(tmp_path, [tmp_path / "gone.png"])
    assert not (tmp_path / TRAINED_IMAGES).exists()


def test_a_resumed_run_keeps_the_photos_its_earlier_epochs_trained_on(tmp_path: Path) -> None:
    # a data set converted again between a run and its --resume: epochs 1-2 trained on a.png, now a test photo
    run = tmp_path / "run"
    a, b, c = (photo(tmp_path / f"{n}.png", n.encode()) for n in ("a", "b", "c"))
    record_trained_images(run, [a, b])
    record_trained_images(run, [b, c], keep=True)
    assert sorted(read_trained_images(run).values()) == ["a.png", "b.png", "c.png"]
    assert "(a.png) is a photo the model was trained on" in trained_overlap_warning(run, [a], "test")
    record_trained_images(run, [c])  # a new run (exist_ok) trained on c alone
    assert sorted(read_trained_images(run).values()) == ["c.png"]


def test_the_hashing_has_a_bar_only_when_asked(tmp_path: Path, capsys) -> None:
    # every photo of the split is read whole: on a large one it sat minutes without a word
    run = tmp_path / "run"
    record_trained_images(run, [photo(tmp_path / "a.png", b"a")])
    scored = [photo(tmp_path / "test" / f"{n}.png", n.encode()) for n in ("b", "c", "d")]
    assert trained_overlap_warning(run, scored, "val", model="the detector", progress=True) is None
    assert "hashing val photos (vs the detector's train photos): 100%" in capsys.readouterr().err
    assert trained_overlap_warning(run, scored, "val") is None  # the default: quiet, for library callers
    assert capsys.readouterr().err == ""
