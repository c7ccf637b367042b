"""pycocotools' ``COCO`` of a COCO instances file, read once the project's way.

``COCO(path)`` opens the file itself with ``json.load``: a file saved by a Windows tool (a UTF-8
BOM first) stopped it with ``Unexpected UTF-8 BOM``, and a hand-edited one with a bare
``KeyError`` from its index. Every COCO file the project reads goes through
:func:`common.io.read_coco_instances` (BOM read, one-line errors naming the file), and every
``COCO`` it builds through :func:`coco_index`, so the packages accept and refuse the same files.

:func:`predicted_image` is a photo's entry of the ``images.json`` that ``inspection.predict`` and
``anomaly.predict`` write beside their ``predictions.json`` (COCO image info).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from common.errors import UserError, one_line
from common.io import read_coco_instances, sha256_file


def coco_index(dataset: dict, *, path: str | Path | None = None):
    """pycocotools' ``COCO`` of ``dataset`` (a COCO instances dict, used as it is, not copied), indexed.

    Args:
        dataset: ``images``, ``annotations``, ``categories``, as :func:`~common.io.read_coco_instances`
            reads them.
        path: the file ``dataset`` was read from, for the message; None for ground truth built in memory.

    Raises:
        UserError: pycocotools cannot index it (an annotation without an ``image_id`` or ``id``, ...),
            one line naming ``path``.
    """
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        try:
            coco.createIndex()
        except (ValueError, KeyError, TypeError) as error:
            where = f"COCO file {path}" if path is not None else "COCO ground truth"
            why = f"an entry lacks {error}" if isinstance(error, KeyError) else one_line(error)
            raise UserError(f"cannot load {where}: {why} (pycocotools)") from None
    return coco


def read_coco_index(path: str | Path):
    """pycocotools' ``COCO`` of the instances file ``path``: ``COCO(path)`` with the project's reading.

    >>> read_coco_index("data/annotations/instances_test.json").getImgIds()  # doctest: +SKIP

    Raises:
        UserError: unreadable, not a COCO instances file, or one pycocotools cannot index; one line.
    """
    return coco_index(read_coco_instances(path), path=path)


def predicted_image(
    *,
    image_id: int,
    file_name: str,
    path: str | Path,
    size: tuple[int, int],
    verdict: str,
    score: float,
    instances: int,
    name: str,
) -> dict:
    """A photo's entry of a predictions folder's ``images.json`` (``inspection.predict``,
    ``anomaly.predict``): COCO image info, and what the run made of it.

    Args:
        file_name: the photo's path as ``predictions.json`` names it.
        path: the photo's file: ``sha256`` is its bytes' digest, by which ``segmentation.annotate
            --proposals`` tells the photo from another of its name without reading every photo first.
        size: ``(H, W)``.
        name: its output name (its mask's and map's file stem).

    Raises:
        UserError: ``path`` cannot be read, one line naming it.
    """
    return {
        "id": int(image_id),
        "file_name": file_name,
        "width": int(size[1]),
        "height": int(size[0]),
        "verdict": verdict,
        "score": round(float(score), 6),
        "instances": int(instances),
        "name": name,
        "sha256": sha256_file(path, what="photo"),
    }
