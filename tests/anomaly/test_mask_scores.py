"""Instance masks scored against ground truth, on maps made by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomaly.data import eval_records, load_records, read_mask, read_rgb
from anomaly.mask_scores import ground_truth_coco, mask_ap, score_masks
from anomaly.masks import Segmenter
from converters.masks import mask_to_instances


class Checks:
    """A run's photo checks, passing every photo: :func:`score_masks` takes the maps it is given."""

    def check_photo(self, image, name) -> None:
        pass


def truth_of(record) -> np.ndarray:
    """The record's ground truth at its photo's size, ``(H, W)`` bool."""
    return read_mask(record, read_rgb(record.image).shape[:2])


def hand_made_map(record) -> np.ndarray:
    """A map at the photo's size, 2 on the ground truth and 3 on a 4 x 4 false alarm top left."""
    anomaly_map = 2.0 * truth_of(record).astype(np.float32)
    anomaly_map[:4, :4] = 3.0
    return anomaly_map


def test_an_images_iou_is_that_of_all_its_instances(parts: Path) -> None:
    records = [r for r in eval_records(load_records(parts.parent, "part")) if not r.is_good]
    truths = [read_mask(r, (64, 64)) for r in records]
    assert not any(t[:4, :4].any() for t in truths)
    maps = [hand_made_map(r) for r in records]
    masks = score_masks(Checks(), records, maps, Segmenter(), 1.0, "given", min_area=1, progress=False)
    expected = np.mean([t.sum() / (t.sum() + 16) for t in truths])
    assert masks["iou_defect"] == pytest.approx(expected)
    assert masks["instances"] == 2 * len(records)


def shrunk_map(record) -> np.ndarray:
    """A map 2 on each defect's box less a one-pixel rim, 3 on a 15-pixel speck, 0 elsewhere.

    Good images get an empty map. The speck is below ``score_masks``'s default ``min_area`` of 16.
    """
    truth = truth_of(record)
    anomaly_map = np.zeros(truth.shape, np.float32)
    if truth.any():
        rows, cols = truth.nonzero()
        anomaly_map[rows.min() + 1 : rows.max(), cols.min() + 1 : cols.max()] = 2.0
        anomaly_map[-3:, -5:] = 3.0
    return anomaly_map


class RecordingSegmenter(Segmenter):
    def __init__(self) -> None:
        super().__init__()
        self.min_areas: list[int] = []

    def __call__(self, image, regions, *, min_area: int = 1, path=None):
        self.min_areas.append(min_area)
        return super().__call__(image, regions, min_area=min_area)


def test_scores_of_masks_a_rim_short_of_the_truth_on_defect_and_good_images(parts: Path) -> None:
    records = eval_records(load_records(parts.parent, "part"))
    defect = [not r.is_good for r in records]
    assert 0 < sum(defect) < len(records)
    truths = [read_mask(r, (64, 64)) for r in records]
    assert all(t.sum() == 14 * 14 for t, d in zip(truths, defect, strict=True) if d)
    segmenter = RecordingSegmenter()
    maps = [shrunk_map(r) for r in records]
    masks = score_masks(Checks(), records, maps, segmenter, 1.0, "val", progress=False)
    # 12 x 12 of a 14 x 14 defect, the speck dropped (default min_area 16), good images left clean
    iou, dice = 144 / 196, 2 * 144 / (144 + 196)
    assert masks["instances"] == sum(defect) and masks["threshold_from"] == "val"
    assert masks["iou_defect"] == pytest.approx(iou) and masks["dice_defect"] == pytest.approx(dice)
    assert masks["iou_good"] == 1.0
    assert masks["iou_all"] == pytest.approx((sum(defect) * iou + len(records) - sum(defect)) / len(records))
    # mask IoU 0.73: a hit at the thresholds 0.5 to 0.7, 5 of COCO's 10
    assert masks["mask_ap50"] == pytest.approx(1.0) and masks["mask_ap"] == pytest.approx(0.5)
    assert segmenter.min_areas == [16] * len(records)


def test_ground_truth_coco_is_one_instance_per_component_with_coco_fields() -> None:
    first = np.zeros((6, 10), bool)
    first[1:3, 2:7] = True  # 2 x 5
    first[4:6, 8:10] = True  # 2 x 2
    second = np.zeros((6, 10), bool)
    second[0:4, 0:1] = True  # 4 x 1
    coco = ground_truth_coco([first, second])
    assert [(i["id"], i["width"], i["height"]) for i in coco["images"]] == [(1, 10, 6), (2, 10, 6)]
    rows = sorted(
        (a["image_id"], a["bbox"], a["area"], a["iscrowd"], a["category_id"]) for a in coco["annotations"]
    )
    assert rows == [
        (1, [2.0, 1.0, 5.0, 2.0], 10, 0, 1),
        (1, [8.0, 4.0, 2.0, 2.0], 4, 0, 1),
        (2, [0.0, 0.0, 1.0, 4.0], 4, 0, 1),
    ]
    assert sorted(a["id"] for a in coco["annotations"]) == [1, 2, 3]
    assert coco["categories"] == [{"id": 1, "name": "anomaly"}]


def test_mask_ap_of_the_ground_truth_itself_is_one() -> None:
    from anomaly.outputs import instance_results
    from anomaly.regions import map_regions

    first = np.zeros((6, 10), bool)
    first[1:3, 2:7] = True
    first[4:6, 8:10] = True
    second = np.zeros((6, 10), bool)
    second[0:4, 0:1] = True
    results = []
    for image_id, mask in enumerate([first, second], start=1):
        instances = Segmenter()(np.zeros((6, 10, 3), np.uint8), map_regions(mask.astype(float), 0.5))
        results += instance_results(instances, image_id, f"{image_id}.png")
    assert len(results) == 3
    assert mask_ap([first, second], results) == pytest.approx((1.0, 1.0))


def test_masks_of_wide_photos_are_read_at_the_photos_size(tmp_path: Path, category_factory) -> None:
    category_factory(tmp_path, "wide", size=(48, 64))
    records = eval_records(load_records(tmp_path, "wide"))
    maps = [2.0 * truth_of(r).astype(np.float32) for r in records]  # 2 on the ground truth, 0 elsewhere
    masks = score_masks(Checks(), records, maps, Segmenter(), 1.0, "given", min_area=1, progress=False)
    assert masks["iou_defect"] == 1.0 and masks["iou_good"] == 1.0
    assert masks["mask_ap"] == pytest.approx(1.0)


@pytest.mark.parametrize("found", [False, True], ids=["no masks", "a false alarm"])
def test_mask_ap_without_ground_truth_is_undefined_not_zero(found: bool) -> None:
    # good images only (a category without test defects, --threshold given): AP read 0.000, as if
    # every mask were wrong; metrics.json's null and report.md's '-' say it is not defined
    truths = [np.zeros((8, 8), bool), np.zeros((8, 8), bool)]
    speck = np.zeros((8, 8), np.uint8)
    speck[2:4, 2:4] = 1  # a false alarm on the first image
    results = []
    if found:
        rle = mask_to_instances(speck).instances[0].rle
        results = [{"image_id": 1, "category_id": 1, "segmentation": rle, "score": 0.9}]
    ap, ap50 = mask_ap(truths, results)
    assert np.isnan(ap) and np.isnan(ap50)


def test_each_photos_masks_are_scored_as_they_come_not_held_to_the_end(parts: Path, monkeypatch) -> None:
    # every photo's full-size true and predicted masks were kept until the split was scored
    import weakref

    import anomaly.mask_scores
    from common.metrics import mean_iou_dice

    records = eval_records(load_records(parts.parent, "part"))
    read, made, alive = anomaly.mask_scores.read_mask, [], []

    def tracked(record, shape):  # noqa: ANN001, ANN202
        alive.append(sum(ref() is not None for ref in made))
        truth = read(record, shape)
        made.append(weakref.ref(truth))
        return truth

    maps = [hand_made_map(r) for r in records]
    monkeypatch.setattr(anomaly.mask_scores, "read_mask", tracked)
    masks = score_masks(Checks(), records, maps, Segmenter(), 1.0, "given", min_area=1, progress=False)
    assert len(alive) == len(records) > 2 and not any(alive)
    # the figures of every mask held to the end, as before
    truths = [read_mask(r, (64, 64)) for r in records]
    predicted = []
    for truth in truths:
        union = truth.copy()
        union[:4, :4] = True
        predicted.append(union)
    overlap = mean_iou_dice(predicted, truths)
    assert (masks["iou_all"], masks["iou_defect"], masks["dice_defect"]) == (
        overlap.iou,
        overlap.defect_iou,
        overlap.defect_dice,
    )


def square(top: int, left: int, side: int = 6) -> np.ndarray:
    """A 32 x 32 region file's pixels: 255 on a ``side``-pixel square at (``top``, ``left``)."""
    region = np.zeros((32, 32), np.uint8)
    region[top : top + side, left : left + side] = 255
    return region


def loco_tree(root: Path) -> Path:
    """An MVTec LOCO category ``widget`` of 32 x 32 noise photos, one region file per defect region:
    ``000`` has one file whose region lies in two parts apart, ``001`` two files whose squares touch."""
    import cv2

    def write(path: Path, array: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), array), path

    rng = np.random.default_rng(0)
    for folder in ("train/good/000", "train/good/001", "validation/good/000", "test/good/000"):
        write(root / "widget" / f"{folder}.png", rng.integers(0, 255, (32, 32, 3), np.uint8))
    files = {"000": [square(2, 2) | square(20, 20)], "001": [square(10, 4), square(10, 10)]}
    for stem, regions in files.items():
        write(
            root / f"widget/test/structural_anomalies/{stem}.png", rng.integers(0, 255, (32, 32, 3), np.uint8)
        )
        for index, region in enumerate(regions):
            write(root / f"widget/ground_truth/structural_anomalies/{stem}/{index:03d}.png", region)
    return root


def scored_truth(records, monkeypatch) -> tuple[dict, dict]:
    """:func:`score_masks`'s figures of maps 2 on each record's ground truth, and the COCO ground truth
    its mask AP was measured against."""
    import anomaly.mask_scores

    seen = []
    real = anomaly.mask_scores.mask_ap
    monkeypatch.setattr(
        anomaly.mask_scores, "mask_ap", lambda truths, results: seen.append(truths) or real(truths, results)
    )
    maps = [2.0 * truth_of(r).astype(np.float32) for r in records]
    masks = score_masks(Checks(), records, maps, Segmenter(), 1.0, "given", min_area=1, progress=False)
    return masks, seen[0].coco()


def test_loco_ground_truth_is_one_instance_per_region_file(tmp_path: Path, monkeypatch) -> None:
    # it was one per connected region of the merged mask; the converters (and MVTec's evaluation) keep one
    # per region file: a file in two parts apart is one instance, two files whose regions touch are two
    records = [r for r in eval_records(load_records(loco_tree(tmp_path), "widget")) if not r.is_good]
    assert [(r.layout, r.image.stem, len(r.masks)) for r in records] == [
        ("mvtec_loco", "000", 1),
        ("mvtec_loco", "001", 2),
    ]
    masks, coco = scored_truth(records, monkeypatch)
    rows = sorted((a["image_id"], a["bbox"], a["area"]) for a in coco["annotations"])
    assert rows == [
        (1, [2.0, 2.0, 24.0, 24.0], 72),  # both parts of 000/000.png, one instance
        (2, [4.0, 10.0, 6.0, 6.0], 36),  # 001/000.png
        (2, [10.0, 10.0, 6.0, 6.0], 36),  # 001/001.png, touching it
    ]
    # the pixel figures read the files merged, as before; the maps' regions are their components (2 + 1)
    assert masks["iou_defect"] == 1.0 and masks["instances"] == 3


def converted_boxes(root: Path, out: Path) -> dict[str, list]:
    """The converters' COCO boxes of each defect photo of ``root`` (all splits), by photo stem."""
    import json

    from converters.convert import ConvertConfig, convert

    convert(ConvertConfig(root=root, out=out, progress=False, formats=("coco",), background_ratio=100.0))
    boxes: dict[str, list] = {}
    for path in sorted((out / "annotations").glob("instances_*.json")):
        coco = json.loads(path.read_text())
        stems = {image["id"]: Path(image["file_name"]).stem[-3:] for image in coco["images"]}
        for annotation in coco["annotations"]:
            boxes.setdefault(stems[annotation["image_id"]], []).append(annotation["bbox"])
    return {stem: sorted(found) for stem, found in boxes.items()}


def test_loco_region_file_holding_two_values_is_two_instances(tmp_path: Path, monkeypatch) -> None:
    # the files were read as defect or not (> 0): one instance per file, where the converters keep one per
    # file and value of defects_config.json; a file holding values 1 and 2 apart is two instances in both
    import json

    import cv2

    root = loco_tree(tmp_path / "data")
    config = [{"defect_name": name, "pixel_value": value} for name, value in (("a", 1), ("b", 2), ("c", 255))]
    (root / "widget/defects_config.json").write_text(json.dumps(config))
    two_values = (square(2, 2) // 255) | (square(20, 20) // 255 * 2)
    assert cv2.imwrite(str(root / "widget/ground_truth/structural_anomalies/000/000.png"), two_values)
    records = [r for r in eval_records(load_records(root, "widget")) if not r.is_good]
    masks, coco = scored_truth(records, monkeypatch)
    ours = {"000": [], "001": []}
    for annotation in coco["annotations"]:
        ours[f"{annotation['image_id'] - 1:03d}"].append(annotation["bbox"])
    assert {stem: sorted(found) for stem, found in ours.items()} == {
        "000": [[2.0, 2.0, 6.0, 6.0], [20.0, 20.0, 6.0, 6.0]],  # value 1, value 2: one instance each
        "001": [[4.0, 10.0, 6.0, 6.0], [10.0, 10.0, 6.0, 6.0]],
    }
    assert converted_boxes(root, tmp_path / "out") == {stem: sorted(found) for stem, found in ours.items()}
    assert masks["iou_defect"] == 1.0


def test_mvtec_ad_ground_truth_is_still_one_instance_per_component(parts: Path, monkeypatch) -> None:
    # records with one mask file (MVTec AD, hazelnut's layout): the instances of the mask's components
    records = eval_records(load_records(parts.parent, "part"))
    assert all(not r.masks for r in records) and any(not r.is_good for r in records)
    masks, coco = scored_truth(records, monkeypatch)
    assert coco == ground_truth_coco([truth_of(r) for r in records])
    assert masks["mask_ap"] == pytest.approx(1.0) and masks["iou_defect"] == 1.0


def test_loco_palette_region_file_is_read_by_its_indices_as_the_converters_read_it(
    tmp_path: Path, monkeypatch
) -> None:
    # a region file saved as a palette PNG (index 1 shown (128, 0, 0), 2 (0, 128, 0)): the converters read
    # its indices, values 1 and 2 of defects_config.json, two instances; anomaly read its colours, both 128,
    # one instance of a value the map does not name
    import json

    from PIL import Image

    from anomaly.data import read_regions

    root = loco_tree(tmp_path / "data")
    config = [{"defect_name": name, "pixel_value": value} for name, value in (("a", 1), ("b", 2), ("c", 255))]
    (root / "widget/defects_config.json").write_text(json.dumps(config))
    image = Image.fromarray((square(2, 2) // 255) | (square(20, 20) // 255 * 2), mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0])
    image.save(root / "widget/ground_truth/structural_anomalies/000/000.png")
    records = [r for r in eval_records(load_records(root, "widget")) if not r.is_good]
    assert [sorted(np.unique(part).tolist()) for part in read_regions(records[0], (32, 32))] == [[0, 1, 2]]
    masks, coco = scored_truth(records, monkeypatch)
    ours = {"000": [], "001": []}
    for annotation in coco["annotations"]:
        ours[f"{annotation['image_id'] - 1:03d}"].append(annotation["bbox"])
    assert {stem: sorted(found) for stem, found in ours.items()} == {
        "000": [[2.0, 2.0, 6.0, 6.0], [20.0, 20.0, 6.0, 6.0]],  # index 1, index 2: one instance each
        "001": [[4.0, 10.0, 6.0, 6.0], [10.0, 10.0, 6.0, 6.0]],
    }
    assert converted_boxes(root, tmp_path / "out") == {stem: sorted(found) for stem, found in ours.items()}
    assert masks["iou_defect"] == 1.0


def test_loco_region_value_missing_from_defects_config_is_refused_as_the_converters_refuse_it(
    tmp_path: Path, monkeypatch
) -> None:
    # a region file's value that defects_config.json does not name was a defect instance of its own in the
    # mask AP and a defect pixel in the pixel figures; the converters refuse it, naming the file and value
    import json

    from anomaly.data import mask_warnings, read_regions
    from common.errors import UserError
    from converters.convert import ConvertConfig, convert

    root = loco_tree(tmp_path / "data")
    config = [{"defect_name": name, "pixel_value": value} for name, value in (("a", 1), ("b", 2))]
    (root / "widget/defects_config.json").write_text(json.dumps(config))
    with pytest.raises(UserError) as converters_error:
        convert(ConvertConfig(root=root, out=tmp_path / "out", progress=False, formats=("coco",)))
    message = str(converters_error.value)
    assert message.startswith(f"{root}/widget/ground_truth/structural_anomalies/000/000.png: mask value 255 ")
    assert "defects_config.json (known: 0, 1, 2)" in message and "\n" not in message
    records = [r for r in eval_records(load_records(root, "widget")) if not r.is_good]
    for read in (read_regions, read_mask):
        with pytest.raises(UserError) as error:
            read(records[0], (32, 32))
        assert str(error.value) == message
    with pytest.raises(UserError, match="mask value 255 is not in"):
        mask_warnings(records)
    with pytest.raises(UserError) as error:
        scored_truth(records, monkeypatch)
    assert str(error.value) == message


def test_mask_ap_writes_no_file_a_full_or_unusable_temp_folder_is_no_traceback(
    tmp_path: Path, monkeypatch
) -> None:
    # the ground truth went through a temporary instances.json: a full /tmp (OSError 28, no file name) or
    # an unusable TMPDIR was a traceback in anomaly.evaluate after every photo was scored
    import tempfile

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    truth = np.zeros((6, 10), bool)
    truth[1:3, 2:7] = True
    rle = mask_to_instances(truth.astype(np.uint8)).instances[0].rle
    results = [{"image_id": 1, "category_id": 1, "segmentation": rle, "score": 0.9}]
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    monkeypatch.setattr(Path, "write_text", full)
    monkeypatch.setattr(Path, "write_bytes", full)
    assert mask_ap([truth], results) == pytest.approx((1.0, 1.0))
