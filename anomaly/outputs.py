"""What ``anomaly.predict`` writes, in the inspection cascade's formats (the annotation page reads them).

Under the output folder::

    predictions.json        COCO results, one entry per instance, category "anomaly" (id 1):
                            {"image_id", "category_id": 1, "category_name": "anomaly", "bbox": [x, y, w, h],
                             "score": peak map value, "box_score", "mask_score": SAM's IoU,
                             "segmentation": RLE, "area": mask pixels, "file_name": path relative to --source}
    images.json             [{"id", "file_name", "width", "height", "verdict": "anomaly" | "good",
                              "score": image score, "instances", "name", "sha256": the photo file's}]:
                             the list the annotation page's proposals reader takes
                             (segmentation/annotate/proposal_file.py; the sha256 tells it the photo
                             from another of its name when opened, no photo read at its start)
    predict.json            how it was made: run and source (absolute), photo count, threshold and where it
                            came from, segmenter and its --sam file, the colour parts applied or left out
    masks/anomaly/<name>_mask.png   MVTec layout: the union of a photo's instances (255), photos with any
    anomaly_maps/<name>.png         16-bit map, 0 at distance 0, 65535 at twice the threshold (clipped),
                                    so maps of one run compare
    scores.csv              file_name, score, verdict, instances

``python -m segmentation.annotate --images <source> --proposals <out>/predictions.json`` puts the
instances on the photos for a person to name: with ``--classes`` naming the defect types, an ``anomaly``
proposal is not a class there and is accepted as one of them (R: the selected class); without, a first
run's only class is ``anomaly``. All files are written atomically; ``predictions.json``, ``images.json``
and ``scores.csv`` a photo at a time, into hidden temporaries renamed into place at the end.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from anomaly.masks import Instances
from common.coco import predicted_image
from common.folders import output_name
from common.image_files import encode_image
from common.io import StreamedFile, atomic_write, json_text
from converters.masks import mask_to_rle

CATEGORY = "anomaly"
PREDICTIONS_FILE = "predictions.json"
IMAGES_FILE = "images.json"
#: The folders of ``--out`` that hold images.
IMAGE_FOLDERS = ("masks", "anomaly_maps")
#: What a predictions folder holds; ``--overwrite`` replaces no folder holding anything else.
OUTPUT_NAMES = (PREDICTIONS_FILE, IMAGES_FILE, "predict.json", "scores.csv", *IMAGE_FOLDERS)


def written_images(*, maps: bool) -> dict[str, str]:
    """The images a :class:`PredictionWriter` writes, ``*`` a photo's output name (a later ``--source``
    pattern must not match them), each with what it is: the masks, and the anomaly maps with ``maps``.

    Those of the option alone: no earlier run's stays, as ``--out`` is replaced whole, and one that a
    pattern matches now is among the photos, refused as such
    (:func:`common.out_folders.check_holds_no_photos`).
    """
    maps_written = {"anomaly_maps/*.png": "anomaly maps"} if maps else {}
    return {f"masks/{CATEGORY}/*_mask.png": "masks", **maps_written}


def instance_results(instances: Instances, image_id: int, file_name: str) -> list[dict]:
    """The COCO results of one photo (see the module docstring)."""
    results = []
    for mask, box, score, mask_score in zip(
        instances.masks, instances.boxes, instances.scores, instances.mask_scores, strict=True
    ):
        x1, y1, x2, y2 = (float(v) for v in box)
        results.append(
            {
                "image_id": image_id,
                "category_id": 1,
                "category_name": CATEGORY,
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "score": round(float(score), 6),
                "box_score": round(float(score), 6),
                "mask_score": round(float(mask_score), 6),
                "segmentation": mask_to_rle(mask),
                "area": int(mask.sum()),
                "file_name": file_name,
            }
        )
    return results


def map_png(anomaly_map: np.ndarray, low: float, high: float) -> bytes:
    """``(H, W)`` float map -> 16-bit PNG, ``low`` -> 0 and ``high`` -> 65535 (clipped)."""
    # in float64: a scale past float32's range (--threshold 1e300 maps to 0..2e300) would overflow
    scaled = np.clip((anomaly_map.astype(np.float64) - low) / max(high - low, 1e-12), 0, 1)
    return encode_image(".png", (scaled * 65535).astype(np.uint16))


class JsonList:
    r"""A JSON list written an entry at a time (:class:`~common.io.StreamedFile`), the text of
    ``json_text(entries, indent=indent) + "\n"`` byte for byte, without the entries held.

    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> entries = JsonList(Path(folder.name) / "a.json", indent=1)
    >>> entries.add({"id": 1}); entries.add({"id": 2})
    >>> entries.close().read_text() == json_text([{"id": 1}, {"id": 2}], indent=1) + "\n"
    True
    >>> folder.cleanup()
    """

    def __init__(self, path: str | Path, *, indent: int | None = None) -> None:
        self.file = StreamedFile(path)
        self.indent = indent
        self.count = 0

    def add(self, entry: object) -> None:
        if self.indent is None:  # json.dumps' ", " between entries, all on one line
            self.file.write(("[" if self.count == 0 else ", ") + json_text(entry))
        else:  # an entry a line, each of its lines a level deeper (strings hold a newline escaped)
            pad = " " * self.indent
            text = pad + json_text(entry, indent=self.indent).replace("\n", "\n" + pad)
            self.file.write(("[\n" if self.count == 0 else ",\n") + text)
        self.count += 1

    def close(self) -> Path:
        """Ends the list and renames the file into place."""
        if self.count == 0:
            end = "[]"
        else:
            end = "]" if self.indent is None else "\n]"
        self.file.write(end + "\n")
        return self.file.close()

    def abort(self) -> None:
        self.file.abort()


class PredictionWriter:
    """Writes one photo's outputs as it comes; the JSON files and ``scores.csv`` appear at :meth:`close`.

    A photo's mask and map files are written at once, its entries of ``predictions.json``, ``images.json``
    and ``scores.csv`` into hidden temporaries that :meth:`close` ends and renames into place: no photo's
    entries (their RLE masks) are held until the end. A writer left without :meth:`close` (an exception
    inside ``with``, :meth:`abort`) drops the temporaries; the photos' files stay (``anomaly.predict``
    writes into a hidden build of its folder, dropped whole then).
    """

    def __init__(self, out: str | Path, *, map_range: tuple[float, float] | None = None) -> None:
        self.out = Path(out)
        self.map_range = map_range
        self.predictions = JsonList(self.out / PREDICTIONS_FILE)
        self.images = JsonList(self.out / IMAGES_FILE, indent=1)
        self.scores = StreamedFile(self.out / "scores.csv")
        self.scores_rows = csv.writer(self.scores, lineterminator="\n")
        self.scores_rows.writerow(["file_name", "score", "verdict", "instances"])
        #: photos added, those with an instance, instances
        self.photos = self.flagged = self.instances = 0

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.abort()  # after close: nothing left to drop

    def add(
        self,
        file_name: str,
        image_shape: tuple[int, int],
        score: float,
        instances: Instances,
        anomaly_map: np.ndarray | None = None,
        *,
        path: str | Path,
    ) -> None:
        """One photo: its path relative to the source, ``(H, W)``, image score, instances, map; ``path``:
        its file (``images.json`` records its sha256, :func:`common.coco.predicted_image`)."""
        self.photos += 1
        image_id = self.photos
        name = output_name(file_name)
        count = len(instances.masks)
        verdict = CATEGORY if count else "good"
        image = predicted_image(
            image_id=image_id,
            file_name=file_name,
            path=path,
            size=image_shape,
            verdict=verdict,
            score=score,
            instances=count,
            name=name,
        )
        self.images.add(image)
        self.scores_rows.writerow([file_name, image["score"], verdict, count])
        for result in instance_results(instances, image_id, file_name):
            self.predictions.add(result)
        self.flagged += bool(count)
        self.instances += count
        if count:
            union = instances.masks.any(0).astype(np.uint8) * 255
            atomic_write(self.out / "masks" / CATEGORY / f"{name}_mask.png", encode_image(".png", union))
        if anomaly_map is not None and self.map_range is not None:
            atomic_write(self.out / "anomaly_maps" / f"{name}.png", map_png(anomaly_map, *self.map_range))

    def close(self, info: dict) -> None:
        """Writes ``predict.json`` and finishes ``predictions.json``, ``images.json`` and ``scores.csv``."""
        self.predictions.close()
        self.images.close()
        atomic_write(self.out / "predict.json", json_text(info, indent=1) + "\n")
        self.scores.close()

    def abort(self) -> None:
        """Drops the unfinished JSON files and ``scores.csv``; the files already written stay."""
        self.predictions.abort()
        self.images.abort()
        self.scores.abort()
