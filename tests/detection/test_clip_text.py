"""Finding CLIP's weights on disk (``detection.clip_text.find_clip_weights``)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from detection import clip_text
from detection.embedding_table import TextEmbeddingError

GOOD = b"the official bytes"


@pytest.fixture
def candidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Three candidate places, none holding a file yet; the official sha256 is that of :data:`GOOD`."""
    places = [tmp_path / folder / "ViT-B-32.pt" for folder in ("project", "ultralytics", "clip")]
    for place in places:
        place.parent.mkdir()
    monkeypatch.setattr(clip_text, "clip_weight_candidates", lambda: places)
    official = dataclasses.replace(clip_text.CLIP_WEIGHTS, sha256=hashlib.sha256(GOOD).hexdigest())
    monkeypatch.setattr(clip_text, "CLIP_WEIGHTS", official)
    return places


def test_a_corrupt_candidate_is_passed_over_for_a_later_verified_one(candidates, capsys) -> None:
    # the first corrupt copy (a partial download in the project's cache) raised before the good one was seen
    project, ultralytics, clip = candidates
    project.write_bytes(b"half a download")
    clip.write_bytes(GOOD)
    assert clip_text.find_clip_weights() == clip
    err = capsys.readouterr().err
    assert err == f"note: {project} has another sha256 than the official ViT-B-32.pt; using {clip}\n"
    assert project.read_bytes() == b"half a download"  # left where it is


def test_when_no_candidate_verifies_the_corrupt_ones_are_named_in_one_line(candidates) -> None:
    project, ultralytics, clip = candidates
    project.write_bytes(b"half a download")
    clip.write_bytes(b"another half")
    with pytest.raises(TextEmbeddingError) as error:
        clip_text.find_clip_weights(option="--clip-weights PATH")
    message = str(error.value)
    sha = clip_text.CLIP_WEIGHTS.sha256
    assert message.startswith(
        f"no CLIP ViT-B/32 weights on disk with the official sha256 {sha}: {project}, {clip} have another "
        f"(looked for ViT-B-32.pt in {project.parent}, {ultralytics.parent}, {clip.parent}; "
    )
    assert message.endswith(" or pass --clip-weights PATH)") and "\n" not in message


@pytest.mark.parametrize("good", [True, False])
def test_a_corrupt_copy_reached_through_a_linked_cache_folder_is_named_once(candidates, capsys, good) -> None:
    # ultralytics' weights/clip linked to the project's cache: its one corrupt file was named twice
    project, ultralytics, clip = candidates
    ultralytics.parent.rmdir()
    ultralytics.parent.symlink_to(project.parent, target_is_directory=True)
    project.write_bytes(b"half a download")
    if good:
        clip.write_bytes(GOOD)
        assert clip_text.find_clip_weights() == clip
        err = capsys.readouterr().err
        assert err == f"note: {project} has another sha256 than the official ViT-B-32.pt; using {clip}\n"
        return
    with pytest.raises(TextEmbeddingError, match=f"^no CLIP .*: {project} has another \\(looked for "):
        clip_text.find_clip_weights()


def test_no_candidate_at_all_names_only_where_it_looked(candidates) -> None:
    with pytest.raises(TextEmbeddingError, match=r"^no CLIP ViT-B/32 weights on disk \(looked for "):
        clip_text.find_clip_weights()
