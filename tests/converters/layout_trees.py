"""A tiny data set tree per layout, written the way each real archive lays its files out.

``make_layout_tree(tmp_path, "mvtec_loco")`` writes one category ``widget`` of 32x32
noise images: ``N_GOOD`` good images spread over the layout's own folders and one
defect image per mask of :data:`DEFECT_MASKS`; it returns the folder to pass as
``--root``. :data:`EXPECTED` holds what a conversion of it must count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SIZE = (32, 32)
CATEGORY = "widget"


def _blobs(*boxes: tuple[int, int, int, int], value: int = 255) -> np.ndarray:
    mask = np.zeros(SIZE, np.uint8)
    for x1, y1, x2, y2 in boxes:
        mask[y1:y2, x1:x2] = value
    return mask


#: One defect image per mask: one blob, two blobs (far apart), one blob touching the border.
DEFECT_MASKS = (
    _blobs((4, 4, 10, 10)),
    _blobs((2, 2, 6, 6), (20, 20, 28, 26)),
    _blobs((0, 24, 8, 32)),
)
N_DEFECT = len(DEFECT_MASKS)
N_INSTANCES = 4


@dataclass(frozen=True)
class Expected:
    """What the tree of one layout holds once converted with every good image used."""

    good: int
    unlabelled: int = 0


#: Good images per layout (Kolektor's good images are those with an empty ``_GT``).
EXPECTED = {
    "mvtec_ad": Expected(good=3),
    "mvtec_ad2": Expected(good=4, unlabelled=3),
    "mvtec_3d": Expected(good=4),
    "mvtec_loco": Expected(good=4),
    "visa": Expected(good=3),
    "btad": Expected(good=3),
    "kolektor_sdd2": Expected(good=3),
    "kolektor_sdd": Expected(good=3),
    "folder": Expected(good=2),
}


def write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array), path
    return path


def noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (*SIZE, 3), np.uint8)


def _goods(folders: list[Path], ext: str = ".png", start: int = 0) -> None:
    for index, folder in enumerate(folders):
        write(folder / f"{index + start:03d}{ext}", noise(100 + index + start))


def _mvtec_ad(cat: Path) -> None:
    _goods([cat / "train/good", cat / "train/good", cat / "test/good"])
    for i, mask in enumerate(DEFECT_MASKS):
        write(cat / f"test/crack/{i:03d}.png", noise(i))
        write(cat / f"ground_truth/crack/{i:03d}_mask.png", mask)


def _mvtec_ad2(cat: Path) -> None:
    _goods([cat / "train/good", cat / "train/good", cat / "validation/good", cat / "test_public/good"])
    for i, mask in enumerate(DEFECT_MASKS):
        write(cat / f"test_public/bad/{i:03d}.png", noise(i))
        write(cat / f"test_public/ground_truth/bad/{i:03d}_mask.png", mask)
    _goods([cat / "test_private", cat / "test_private", cat / "test_private_mixed"])


def _mvtec_3d(cat: Path) -> None:
    folders = [cat / "train/good", cat / "train/good", cat / "validation/good", cat / "test/good"]
    for index, folder in enumerate(folders):
        write(folder / "rgb" / f"{index:03d}.png", noise(100 + index))
        (folder / "xyz").mkdir(parents=True, exist_ok=True)
        (folder / "xyz" / f"{index:03d}.tiff").write_bytes(b"not read")
    write(cat / "test/good/gt/003.png", np.zeros(SIZE, np.uint8))  # good gt: all zero, ignored
    for i, mask in enumerate(DEFECT_MASKS):
        write(cat / f"test/crack/rgb/{i:03d}.png", noise(i))
        write(cat / f"test/crack/gt/{i:03d}.png", mask)
        (cat / "test/crack/xyz").mkdir(parents=True, exist_ok=True)
        (cat / f"test/crack/xyz/{i:03d}.tiff").write_bytes(b"not read")


def _mvtec_loco(cat: Path) -> None:
    _goods([cat / "train/good", cat / "train/good", cat / "validation/good", cat / "test/good"])
    for i, mask in enumerate(DEFECT_MASKS):
        kind = "logical_anomalies" if i % 2 == 0 else "structural_anomalies"
        write(cat / f"test/{kind}/{i:03d}.png", noise(i))
        # one file per region, LOCO's way: split the mask into its blobs
        count, labels = cv2.connectedComponents(mask, connectivity=8)
        for region in range(1, count):
            write(
                cat / f"ground_truth/{kind}/{i:03d}/{region - 1:03d}.png",
                np.where(labels == region, 255, 0).astype(np.uint8),
            )


def _visa(root: Path, cat: Path) -> None:
    rows = ["object,split,label,image,mask"]
    for index in range(3):
        path = write(cat / f"Data/Images/Normal/{index:04d}.JPG", noise(100 + index))
        rows.append(f"{CATEGORY},{'train' if index < 2 else 'test'},normal,{path.relative_to(root)},")
    for i, mask in enumerate(DEFECT_MASKS):
        image = write(cat / f"Data/Images/Anomaly/{i:03d}.JPG", noise(i))
        mask_path = write(cat / f"Data/Masks/Anomaly/{i:03d}.png", (mask > 0).astype(np.uint8) * (i + 1))
        rows.append(f"{CATEGORY},test,anomaly,{image.relative_to(root)},{mask_path.relative_to(root)}")
    (root / "split_csv").mkdir(parents=True, exist_ok=True)
    (root / "split_csv" / "1cls.csv").write_text("\n".join(rows) + "\n")


def _btad(cat: Path) -> None:
    _goods([cat / "train/ok", cat / "train/ok", cat / "test/ok"], ext=".bmp")
    for i, mask in enumerate(DEFECT_MASKS):
        write(cat / f"test/ko/{i:03d}.bmp", noise(i))
        write(cat / f"ground_truth/ko/{i:03d}.png", mask)


def _kolektor(cat: Path) -> None:
    for index, subset in enumerate(["train", "train", "test"]):
        write(cat / subset / f"{100 + index}.png", noise(100 + index))
        write(cat / subset / f"{100 + index}_GT.png", np.zeros(SIZE, np.uint8))
    for i, mask in enumerate(DEFECT_MASKS):
        subset = "train" if i < 2 else "test"
        write(cat / subset / f"{i}.png", noise(i))
        write(cat / subset / f"{i}_GT.png", mask)


def _kolektor_sdd(cat: Path) -> None:
    # KolektorSDD (v1): kosNN/PartN.jpg with PartN_label.bmp, an all-zero label for a good photo
    for index, item in enumerate(["kos01", "kos01", "kos02"]):
        write(cat / item / f"Part{index}.jpg", noise(100 + index))
        write(cat / item / f"Part{index}_label.bmp", np.zeros(SIZE, np.uint8))
    for i, mask in enumerate(DEFECT_MASKS):
        item = "kos02" if i < 2 else "kos03"
        write(cat / item / f"Part{3 + i}.jpg", noise(i))
        write(cat / item / f"Part{3 + i}_label.bmp", mask)


def _folder(cat: Path) -> None:
    _goods([cat / "good", cat / "good"])
    for i, mask in enumerate(DEFECT_MASKS):
        write(cat / f"images/{i:03d}.png", noise(i))
        write(cat / f"masks/{i:03d}.png", mask)


def make_layout_tree(root: Path, layout: str) -> Path:
    """Writes category ``widget`` of ``layout`` under ``root/<layout>``; returns the data root."""
    data = root / layout
    cat = data / CATEGORY
    writers = {
        "mvtec_ad": _mvtec_ad,
        "mvtec_ad2": _mvtec_ad2,
        "mvtec_3d": _mvtec_3d,
        "mvtec_loco": _mvtec_loco,
        "btad": _btad,
        "kolektor_sdd2": _kolektor,
        "kolektor_sdd": _kolektor_sdd,
        "folder": _folder,
    }
    if layout == "visa":
        _visa(data, cat)
    else:
        writers[layout](cat)
    return data


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path
