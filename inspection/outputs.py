"""What an inspection writes, one photo at a time, in formats other tools read.

Under the output folder::

    predictions.json        COCO results: one entry per instance (loads with COCO.loadRes)
    images.json             COCO image info (images + categories) with each photo's verdict
    masks/<category>/...    MVTec AD layout, value-coded masks (see inspection.mask_tree)
    anomaly_maps/<name>.png 16-bit map in [0, 1] (with anomaly_maps=True)
    overlays/<name>.jpg     boxes, masks and the verdict drawn on the photo (the first N photos)

``predictions.json`` entries::

    {"image_id": 3, "category_id": 2, "bbox": [x, y, w, h], "score": 0.91,
     "segmentation": {"size": [H, W], "counts": "..."}, "box_score": 0.91, "mask_score": 0.87,
     "file_name": "lot_2/a.png"}

``category_id`` is the detector's class id + 1, as the converters number COCO
categories; ``bbox`` is the detector's box in pixel edges; ``score`` ranks the
instance (``rank_by``: the box score, SAM's predicted IoU, or their product).
``images.json`` is ``{"info", "categories", "images"}`` with, per photo,
``{"id", "file_name", "width", "height", "verdict", "score", "instances", "name", "sha256"}`` (the
photo file's bytes, by which ``segmentation.annotate --proposals`` tells the photo from another of its
name; files written before it was recorded have none); a category
whose defect folder in ``masks/`` is not its name (:func:`inspection.mask_tree.class_folders`:
``con`` -> ``con_``) says so in ``"folder"``:
``COCO("images.json").loadRes("predictions.json")`` works as it is.

Both JSON files are written entry by entry into hidden temporaries and renamed
into place by :meth:`PredictionWriter.close`, every other file with
:func:`common.io.atomic_write`: memory stays flat over any number of photos, and
a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from common.coco import predicted_image
from common.errors import UserError
from common.folders import UniqueNames, output_name
from common.image_files import decode_image_file, encode_image
from common.io import StreamedFile, atomic_write, json_text
from converters.coco import xyxy_to_xywh
from converters.masks import mask_to_rle
from inspection.mask_tree import MASK_FILES as TREE_MASK_FILES
from inspection.mask_tree import PHOTO_FILES as TREE_PHOTO_FILES
from inspection.mask_tree import MaskTree
from inspection.overlays import draw_overlay
from inspection.photos import Photo
from inspection.result import Inspection
from segmentation.specks import DEFAULT_CELLS

#: How an instance's ``score`` in ``predictions.json`` is made.
RANK_BY = ("box", "mask", "product")
PREDICTIONS_FILE = "predictions.json"
IMAGES_FILE = "images.json"
MASKS_DIR = "masks"
ANOMALY_MAPS_DIR = "anomaly_maps"
OVERLAYS_DIR = "overlays"
#: What a :class:`PredictionWriter` writes: a folder holding any of them is refused.
WRITTEN_NAMES = (PREDICTIONS_FILE, IMAGES_FILE, MASKS_DIR, ANOMALY_MAPS_DIR, OVERLAYS_DIR)
#: JPEG quality of the overlays.
OVERLAY_QUALITY = 90
_DECIMALS = 6


def written_images(*, overlays: int, anomaly_maps: bool) -> dict[str, str]:
    """The images a :class:`PredictionWriter` writes with these options, ``*`` for a name that varies
    (a later ``--source`` pattern must not match them), each with what it is: the masks tree's (the
    photos placed in it, the masks), ``overlays/*.jpg`` unless ``overlays`` is 0 and
    ``anomaly_maps/*.png`` with ``anomaly_maps``.

    Those of the options alone: no earlier run's stays, as ``--out`` is replaced whole, and one that a
    pattern matches now is among the photos, refused as such
    (:func:`common.out_folders.check_holds_no_photos`).
    """
    tree = {f"{MASKS_DIR}/{path}": "masks tree's photos" for path in TREE_PHOTO_FILES}
    return {
        **({f"{OVERLAYS_DIR}/*.jpg": "overlays"} if overlays else {}),
        **({f"{ANOMALY_MAPS_DIR}/*.png": "anomaly maps"} if anomaly_maps else {}),
        **tree,
        f"{MASKS_DIR}/{TREE_MASK_FILES}": "masks",
    }


def earlier_outputs_message(out: Path, found: Sequence[str]) -> str:
    """The refusal of an ``out`` holding ``found`` of :data:`WRITTEN_NAMES`.

    Per-photo outputs without ``predictions.json`` and ``images.json`` are a run that stopped part-way
    (a :class:`PredictionWriter` left by an exception keeps them): said so, as 'an earlier run' alone
    read as a finished one.
    """
    held = f"{out} already holds {', '.join(found)} of an earlier run"
    if not {PREDICTIONS_FILE, IMAGES_FILE} & set(found):
        held += (
            f" that stopped part-way (no {PREDICTIONS_FILE} or {IMAGES_FILE}: a PredictionWriter left by an "
            "exception keeps the files of the photos it wrote)"
        )
    return f"{held}: give a new folder, or remove them first (outputs of two runs would mix)"


def ranking_scores(inspection: Inspection, rank_by: str = "box") -> np.ndarray:
    """``(N,)`` the score each instance is ranked by: box score, SAM's predicted IoU, or their product."""
    box = np.asarray(inspection.scores, dtype=float)
    mask = np.asarray(inspection.mask_scores, dtype=float)
    if rank_by == "box":
        return box
    if rank_by == "mask":
        return mask
    if rank_by == "product":
        return box * mask
    raise ValueError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")


def instance_results(inspection: Inspection, photo: Photo, *, rank_by: str = "box") -> list[dict]:
    """The photo's entries of ``predictions.json`` (COCO results format), best box first."""
    scores = ranking_scores(inspection, rank_by)
    return [
        {
            "image_id": photo.image_id,
            "category_id": int(inspection.classes[i]) + 1,
            "bbox": [round(v, 2) for v in xyxy_to_xywh(inspection.boxes[i])],
            "score": round(float(scores[i]), _DECIMALS),
            "segmentation": mask_to_rle(inspection.masks[i]),
            "box_score": round(float(inspection.scores[i]), _DECIMALS),
            "mask_score": round(float(inspection.mask_scores[i]), _DECIMALS),
            "file_name": photo.file_name,
        }
        for i in range(len(inspection))
    ]


def image_record(inspection: Inspection, photo: Photo) -> dict:
    """The photo's entry in ``images.json`` (:func:`common.coco.predicted_image`, its file's sha256 too)."""
    return predicted_image(
        image_id=photo.image_id,
        file_name=photo.file_name,
        path=inspection.path,
        size=(inspection.height, inspection.width),
        verdict=inspection.verdict,
        score=inspection.score,
        instances=len(inspection),
        name=photo.name,
    )


def anomaly_map_png(anomaly_map: np.ndarray) -> bytes:
    """A ``(H, W)`` map in [0, 1] as 16-bit grey PNG bytes (``value / 65535`` reads it back)."""
    pixels = np.round(np.clip(anomaly_map, 0.0, 1.0) * 65535).astype(np.uint16)
    return encode_image(".png", pixels)


class JsonListFile:
    """A JSON document around one list, written an entry at a time into a temporary, renamed by :meth:`close`
    (:class:`common.io.StreamedFile`).

    Args:
        path: the final file.
        head, tail: the text before and after the list's entries (``[`` and ``]`` for a bare list).
    """

    def __init__(self, path: str | Path, *, head: str = "[", tail: str = "]") -> None:
        self.file = StreamedFile(path)
        self.path = self.file.path
        self.tail = tail
        self.count = 0
        self.file.write(head)

    def add(self, entry: object) -> None:
        self.file.write(("," if self.count else "") + "\n" + json_text(entry))
        self.count += 1

    def close(self) -> Path:
        """Finishes the document and renames it into place (once)."""
        if not self.file.closed:
            self.file.write("\n" + self.tail + "\n")
        return self.file.close()

    def abort(self) -> None:
        """Drops what was written; the file at ``path`` (if any) stays as it was."""
        self.file.abort()


class PredictionWriter:
    """Writes every output of an inspection into ``out``, fed one :class:`Inspection` at a time.

    >>> writer = PredictionWriter("runs/inspect/lot_7", class_names=inspector.class_names)  # doctest: +SKIP
    >>> with writer:                                                                      # doctest: +SKIP
    ...     for inspection in inspector.inspect_many(paths):
    ...         writer.add(inspection)

    Args:
        out: the output folder (created); one that holds an earlier run's outputs is refused, as the
            masks tree and the overlays of both would mix (``inspection.predict --overwrite`` builds a
            new folder and replaces the old one whole). A writer left by an exception (``with``, or
            :meth:`abort`) drops its unfinished JSON files but keeps the photos' files it wrote, to be
            looked at: a rerun into ``out`` is refused until they are removed, and the refusal says so.
        class_names: the detector's classes in id order (categories, mask values).
        rank_by: ``box``, ``mask`` or ``product``: what ``score`` in ``predictions.json`` is.
        anomaly_maps: write ``anomaly_maps/<name>.png`` (needs inspections made with ``keep_probs``).
        overlays: draw the first ``overlays`` photos; 0 none, -1 all.
        link: how photos go into the masks tree: ``symlink``, ``hardlink`` or ``copy``.
        speck_cells: the masks tree leaves out pieces of an instance under this many of SAM's cells
            that a better instance's mask leaves of it (:class:`~inspection.mask_tree.MaskTree`).
        category: the masks tree's category name; default the name of ``out``.
        info: extra ``info`` fields of ``images.json`` (the run's settings).
    """

    def __init__(
        self,
        out: str | Path,
        *,
        class_names: Sequence[str],
        rank_by: str = "box",
        anomaly_maps: bool = False,
        overlays: int = 50,
        link: str = "symlink",
        category: str | None = None,
        info: dict | None = None,
        speck_cells: float = DEFAULT_CELLS,
    ) -> None:
        if rank_by not in RANK_BY:
            raise ValueError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")
        self.out = Path(out)
        if found := [name for name in WRITTEN_NAMES if os.path.lexists(self.out / name)]:
            raise UserError(earlier_outputs_message(self.out, found))
        self.class_names = list(class_names)
        self.rank_by, self.anomaly_maps, self.overlays = rank_by, anomaly_maps, overlays
        self.tree = MaskTree(
            self.out / MASKS_DIR, category=category or self.out.name, class_names=class_names, link=link,
            speck_cells=speck_cells,
        )  # fmt: skip
        categories = [{"id": i + 1, "name": n, "supercategory": "defect"} for i, n in enumerate(class_names)]
        for category in categories:  # a class no OS takes as a folder as it is (con, crack/scratch)
            if (folder := self.tree.folders[category["name"]]) != category["name"]:
                category["folder"] = folder
        document = {
            "info": {"description": "inspection.predict", "rank_by": rank_by, **(info or {})},
            "categories": categories,
        }
        self.predictions = JsonListFile(self.out / PREDICTIONS_FILE)
        # {"info": ..., "categories": ..., "images": [<one entry per photo>]}
        head = json_text(document).removesuffix("}") + ', "images": ['
        self.images = JsonListFile(self.out / IMAGES_FILE, head=head, tail="]}")
        self.verdicts: Counter[str] = Counter()
        self.instances = 0
        self.per_class: Counter[str] = Counter()  # instances per class name (``anomaly``: PatchCore's)
        self.names = UniqueNames()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    @property
    def photos(self) -> int:
        return self.images.count

    def add(self, inspection: Inspection, photo: Photo | None = None) -> None:
        """Writes one photo's outputs.

        Args:
            inspection: the photo's result.
            photo: its id and names; None: the next id (1, 2, ...) and the file's own name.

        Raises:
            UserError: a photo of this writer already has the output name (``lot_1/a.png`` and
                ``lot_2/a.png`` without ``photo``; pass :class:`Photo` names that differ).
        """
        if photo is None:
            name = inspection.path.name
            photo = Photo(inspection.path, name, output_name(name), self.photos + 1)
        self.names.add(photo.name, inspection.path)  # a second a.png would replace the first's files
        for entry in instance_results(inspection, photo, rank_by=self.rank_by):
            self.predictions.add(entry)
        if self.overlays < 0 or self.photos < self.overlays:
            image = decode_image_file(inspection.path, cv2.IMREAD_COLOR)
            overlay = encode_image(
                ".jpg", draw_overlay(image, inspection), [cv2.IMWRITE_JPEG_QUALITY, OVERLAY_QUALITY]
            )
            atomic_write(self.out / OVERLAYS_DIR / f"{photo.name}.jpg", overlay)
        if self.anomaly_maps:
            atomic_write(
                self.out / ANOMALY_MAPS_DIR / f"{photo.name}.png", anomaly_map_png(inspection.anomaly_map())
            )
        # the record (its sha256) before the tree: a hard link to the photo (--link hardlink) changes its
        # ctime, so sha256_file would read the whole photo again
        record = image_record(inspection, photo)
        self.tree.add(inspection, photo)
        self.images.add(record)
        self.verdicts[inspection.verdict] += 1
        self.instances += len(inspection)
        self.per_class.update(inspection.names)

    def close(self) -> None:
        """Finishes ``predictions.json``, ``images.json`` and the masks tree's ``mask_values.json``."""
        self.tree.close()
        self.predictions.close()
        self.images.close()

    def abort(self) -> None:
        """Drops the unfinished JSON files; the files already written per photo (masks tree, overlays,
        anomaly maps) stay, and a new writer into ``out`` is refused until they are removed."""
        self.predictions.abort()
        self.images.abort()
