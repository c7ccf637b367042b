"""Peak memory of ``inspection.predict`` on large photos with many boxes, after each photo and at the end.

Paints ``--boxes`` solid squares (white and red, alternately) on ``--photos`` copies of a photo resized to
``--size`` (default 4000 x 3000: a 12 MP camera photo) and runs ``inspection.predict`` on them in this
process, with the test suite's stub detector (one box per painted square) and zero-shot MobileSAM from the
weights cache, so the boxes are known and no detector needs training. Prints the peak resident memory
(``ru_maxrss``) after each photo's inspection and at the end; one run per process, nothing else running.
Options after ``--`` go to ``inspection.predict`` (``--anomaly-maps``, ``--overlays -1``, ...). The
package is imported from ``PYTHONPATH``: an older tree there (``git archive REV | tar -x -C /tmp/old``)
measures that one.

    PYTHONPATH=. python bench/large_photo_memory.py --photo ../shared/data/hazelnut_toy/test/good/04.jpg \\
        --work /tmp/large --photos 2 --boxes 40 -- --overlays 0 --anomaly-maps

Results: ``bench/results/large_photo_memory.md``.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import cv2
import numpy as np


def peak_mb() -> int:
    """This process's peak resident memory so far, in MB (Linux: ``ru_maxrss`` is in KB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def paint_photos(photo: Path, folder: Path, *, photos: int, boxes: int, size: tuple[int, int]) -> Path:
    """``photos`` PNGs (lossless: the stub detector finds exact colours) of ``photo`` resized to ``size``
    ``(W, H)`` with ``boxes`` squares of 60-300 px on a grid of 380 px; made once per folder."""
    if folder.is_dir() and len(list(folder.glob("*.png"))) == photos:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    base = np.clip(cv2.resize(cv2.imread(str(photo)), size), 0, 200).astype(np.uint8)  # no pure white
    rng = np.random.default_rng(0)
    per_row = max(1, (size[0] - 100) // 380)
    for index in range(photos):
        image = base.copy()
        for box in range(boxes):
            x, y, side = 100 + (box % per_row) * 380, 100 + (box // per_row) * 380, int(rng.integers(60, 300))
            image[y : y + side, x : x + side] = (255, 255, 255) if box % 2 == 0 else (0, 0, 255)
        cv2.imwrite(str(folder / f"p{index:02d}.png"), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, required=True, help="the photo to resize and paint")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder: photos, outputs, cache")
    parser.add_argument("--photos", type=int, default=2)
    parser.add_argument("--boxes", type=int, default=40)
    parser.add_argument("--size", type=int, nargs=2, default=(4000, 3000), metavar=("W", "H"))
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]

    import inspection.inspector
    import inspection.predict
    from tests.inspection.conftest import StubDetector

    folder = paint_photos(
        args.photo, args.work / f"photos_{args.photos}x{args.boxes}", photos=args.photos, boxes=args.boxes,
        size=tuple(args.size),
    )  # fmt: skip
    inspection.predict.load_detector = lambda weights: StubDetector()
    detector = args.work / "best.pt"
    detector.write_bytes(b"stub")
    after_photo: list[int] = []
    inspect = inspection.inspector.Inspector.__call__

    def measured(self, path):  # noqa: ANN001, ANN202
        result = inspect(self, path)
        after_photo.append(peak_mb())
        return result

    inspection.inspector.Inspector.__call__ = measured
    start = time.perf_counter()
    code = inspection.predict.main(
        ["--detector", str(detector), "--source", str(folder), "--out", str(args.work / "out"), "--overwrite",
         "--no-progress", "--cache-dir", str(args.work / "cache"), *extra]
    )  # fmt: skip
    print(f"exit {code} in {time.perf_counter() - start:.0f} s; peak RSS after each photo, MB: {after_photo}")
    print(f"peak RSS: {peak_mb()} MB")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
