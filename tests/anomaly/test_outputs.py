"""What anomaly.predict writes for one photo: COCO results and the 16-bit map."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from anomaly.masks import Instances, Segmenter
from anomaly.outputs import PredictionWriter, instance_results, map_png
from anomaly.regions import map_regions
from common.folders import output_name
from common.io import json_text


@pytest.fixture
def photo_at(tmp_path_factory):
    """``name`` -> a photo file of that name outside the writer's folder (its bytes: the name's)."""
    folder = tmp_path_factory.mktemp("photos")

    def make(name: str) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(name.encode())
        return path

    return make


def test_instance_results_give_xywh_boxes_and_the_regions_scores() -> None:
    anomaly_map = np.zeros((8, 10), np.float32)
    anomaly_map[1:3, 4:7] = 2.0
    anomaly_map[6, 0] = 3.0
    instances = Segmenter()(np.zeros((8, 10, 3), np.uint8), map_regions(anomaly_map, 1.0))
    results = instance_results(instances, 7, "a/b.png")
    assert [r["bbox"] for r in results] == [[0.0, 6.0, 1.0, 1.0], [4.0, 1.0, 3.0, 2.0]]
    assert [(r["score"], r["area"], r["image_id"]) for r in results] == [(3.0, 1, 7), (2.0, 6, 7)]


def test_map_png_spans_low_to_high() -> None:
    anomaly_map = np.array([[1.0, 2.0, 3.0, 5.0]], np.float32)
    data = map_png(anomaly_map, 1.0, 3.0)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.dtype == np.uint16
    assert decoded.tolist() == [[0, 32767, 65535, 65535]]


def test_map_png_takes_a_range_past_float32s_without_an_overflow_warning() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # --threshold 1e300: the range 0..2e300 overflowed a float32 map
        data = map_png(np.array([[1.0, 3.0]], np.float32), 0.0, 2e300)
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).tolist() == [[0, 0]]


def test_the_written_mask_is_the_union_of_the_instances(tmp_path: Path, photo_at) -> None:
    anomaly_map = np.zeros((8, 10), np.float32)
    anomaly_map[1:3, 4:7] = 2.0
    anomaly_map[6, 0] = 3.0
    instances = Segmenter()(np.zeros((8, 10, 3), np.uint8), map_regions(anomaly_map, 1.0))
    with PredictionWriter(tmp_path) as writer:
        writer.add("a/b.png", (8, 10), 3.0, instances, path=photo_at("a/b.png"))
    mask = cv2.imread(str(tmp_path / "masks" / "anomaly" / "a__b_mask.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(mask > 0, anomaly_map > 1.0) and set(np.unique(mask)) == {0, 255}


def photo_instances(spots: int) -> Instances:
    """An 8 x 10 photo's instances: ``spots`` one-pixel regions (none: a good photo)."""
    anomaly_map = np.zeros((8, 10), np.float32)
    for spot in range(spots):
        anomaly_map[spot * 2, spot * 3] = 2.0 + spot
    return Segmenter()(np.zeros((8, 10, 3), np.uint8), map_regions(anomaly_map, 1.0))


@pytest.mark.parametrize("spots", [[], [0], [2], [0, 2, 1, 3]], ids=["no photo", "good", "flagged", "mixed"])
def test_the_files_are_the_whole_lists_text_byte_for_byte(tmp_path: Path, photo_at, spots: list[int]) -> None:
    # the entries were held until close and written as json_text of the whole lists: the text stays so;
    # images.json records each photo file's sha256 (it recorded none: the annotation page read every
    # proposed photo whole at its start)
    photos = [(f"lot/{index}.png", 1.5 * index, photo_instances(n)) for index, n in enumerate(spots)]
    with PredictionWriter(tmp_path) as writer:
        for file_name, score, instances in photos:
            writer.add(file_name, (8, 10), score, instances, path=photo_at(file_name))
        writer.close({"photos": len(photos)})
    results = [r for i, (f, _, inst) in enumerate(photos) for r in instance_results(inst, i + 1, f)]
    images = [
        {"id": i + 1, "file_name": f, "width": 10, "height": 8,
         "verdict": "anomaly" if len(inst.masks) else "good", "score": round(s, 6),
         "instances": len(inst.masks), "name": output_name(f),
         "sha256": hashlib.sha256(f.encode()).hexdigest()}
        for i, (f, s, inst) in enumerate(photos)
    ]  # fmt: skip
    rows = "".join(f"{i['file_name']},{i['score']},{i['verdict']},{i['instances']}\n" for i in images)
    assert (tmp_path / "predictions.json").read_text() == json_text(results) + "\n"
    assert (tmp_path / "images.json").read_text() == json_text(images, indent=1) + "\n"
    assert (tmp_path / "scores.csv").read_text() == "file_name,score,verdict,instances\n" + rows
    assert (tmp_path / "predict.json").read_text() == json_text({"photos": len(photos)}, indent=1) + "\n"
    counts = (len(spots), sum(n > 0 for n in spots), sum(spots))
    assert (writer.photos, writer.flagged, writer.instances) == counts
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_a_photos_entries_go_to_disk_as_it_comes(tmp_path: Path, photo_at) -> None:
    # every photo's entries (RLE masks and all) were held in memory until close
    writer = PredictionWriter(tmp_path)
    writer.add("a.png", (8, 10), 3.0, photo_instances(2), path=photo_at("a.png"))
    writer.predictions.file._file.flush()
    [hidden] = tmp_path.glob(".predictions.json.*.tmp")
    assert hidden.read_text().count('"image_id": 1') == 2 and not (tmp_path / "predictions.json").exists()
    assert not any(isinstance(value, list) for value in vars(writer).values())
    writer.abort()


def test_a_writer_left_by_an_exception_drops_its_unfinished_files(tmp_path: Path, photo_at) -> None:
    with pytest.raises(KeyboardInterrupt), PredictionWriter(tmp_path) as writer:
        writer.add("a.png", (8, 10), 3.0, photo_instances(1), path=photo_at("a.png"))
        raise KeyboardInterrupt
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "masks/anomaly/a_mask.png"  # the photo's own file stays; no JSON, no CSV, no temporary
    ]
