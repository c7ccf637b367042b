"""A tiny MVTec-layout category whose defects a random-weight backbone can still see."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import interrupting

SIZE = 64


def part_photo(rng: np.random.Generator, defect: bool) -> tuple[np.ndarray, np.ndarray]:
    """A grey textured 64 x 64 BGR photo; a defect is a saturated red square. Returns (photo, mask)."""
    photo = (120 + rng.integers(-10, 10, (SIZE, SIZE, 3))).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    if defect:
        y, x = rng.integers(8, 40, 2)
        photo[y : y + 14, x : x + 14] = (0, 0, 255)
        mask[y : y + 14, x : x + 14] = 255
    return photo, mask


def make_parts(
    root: Path, *, n_train: int = 2, n_good: int = 2, n_defect: int = 3, name: str = "part"
) -> Path:
    """``root/name`` with ``train/good`` (n_train), ``test/good`` and ``test/spot`` with masks."""
    rng = np.random.default_rng(0)
    folder = root / name
    for subset, defect, count in (
        ("train", "good", n_train),
        ("test", "good", n_good),
        ("test", "spot", n_defect),
    ):
        (folder / subset / defect).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            photo, mask = part_photo(rng, defect != "good")
            cv2.imwrite(str(folder / subset / defect / f"{i:03d}.png"), photo)
            if defect != "good":
                (folder / "ground_truth" / defect).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / "ground_truth" / defect / f"{i:03d}_mask.png"), mask)
    return folder


def repaint_as_another_product(folder: Path) -> Path:
    """``folder``'s photos (``train/``, ``test/``) redrawn as another product: a yellow disc on blue, its
    masks kept."""
    rng = np.random.default_rng(1)
    for photo in sorted(folder.glob("t*/*/*.png")):
        other = np.zeros((SIZE, SIZE, 3), np.uint8)
        other[:] = (160, 40, 20)  # BGR blue
        cv2.circle(other, (SIZE // 2, SIZE // 2), SIZE // 3, (40, 200, 230), -1)
        cv2.imwrite(str(photo), (other + rng.integers(0, 10, other.shape)).astype(np.uint8))
    return folder


#: A config that fits in well under a second: random MobileNetV2 weights at 64 px.
TINY = {"pretrained": False, "image_size": 64, "coreset_ratio": 0.5, "num_neighbors": 3}


@pytest.fixture
def parts(tmp_path: Path) -> Path:
    return make_parts(tmp_path / "data")


@pytest.fixture
def tiny_config() -> dict:
    return dict(TINY)


@pytest.fixture
def interrupted_sam(monkeypatch):
    """``interrupted_sam(after) -> calls``: ``--sam-zero-shot`` loads a tiny random SAM whose encoder
    raises KeyboardInterrupt (a Ctrl-C) on its call ``after + 1``; ``calls`` grows by one per call."""
    import segmentation.embeddings
    import segmentation.models
    from tests.segmentation.conftest import build_tiny_sam

    sam = build_tiny_sam()
    monkeypatch.setattr(segmentation.models, "load_sam", lambda name, **kwargs: sam)
    encode = segmentation.embeddings.embed_images

    def interrupted(after: int) -> list[int]:
        counted, calls = interrupting(encode, after=after)
        monkeypatch.setattr(segmentation.embeddings, "embed_images", counted)
        return calls

    return interrupted


#: The colour head of :func:`colour_decoders`: colour alone decides, in-box pixels over 20 CIE76 from the
#: box border's colour are defect (a saturated stain on grey), SAM's logit ignored.
STAIN_HEAD = (0.0, 10.0, -10.0)


@pytest.fixture
def colour_decoders(tmp_path: Path, monkeypatch):
    """``decoder.pt`` files of one tiny SAM (loaded as ``vit_b``, no official weights) by what they carry:
    ``head`` (:data:`STAIN_HEAD`), ``prompt``, ``both``, ``none``; and the head and prompt."""
    import segmentation.finetuned
    from segmentation.colour_head import ColourHead
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.finetuned import save_decoder
    from tests.segmentation.conftest import build_tiny_sam

    sam = build_tiny_sam()
    monkeypatch.setattr(segmentation.finetuned, "load_finetuned", lambda path, model, **kw: (sam, "vit_b"))
    head, prompt = ColourHead(STAIN_HEAD), ColourPrompt(centre=18.0)
    carried = {
        "head": {"colour_head": head},
        "prompt": {"colour_prompt": prompt},
        "both": {"colour_head": head, "colour_prompt": prompt},
        "none": {},
    }
    (tmp_path / "decoders").mkdir()
    paths = {
        name: save_decoder(sam, tmp_path / "decoders" / f"{name}.pt", model="vit_b", **kwargs)
        for name, kwargs in carried.items()
    }
    return paths, head, prompt
