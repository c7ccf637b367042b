"""Peak memory of ``inspection.predict`` or ``anomaly.predict`` on large photos: after each photo, at the end.

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

``--anomaly CATEGORY`` measures ``anomaly.predict`` instead: a PatchCore run (``anomaly.train``, defaults, in
a child process, once per ``--work``) fit on the category's first 10 ``train/good`` photos resized to
``--size``, then ``anomaly.predict`` in this process on ``--photos`` of its ``test/good`` photos (taken in
turn) resized to ``--size`` with ``--discs`` orange discs painted on each (radius 40-150 px, seeded by
photo), anomaly maps written; peak RSS after each photo's outputs are written. Options after ``--`` go to
``anomaly.predict``:

    PYTHONPATH=. python bench/large_photo_memory.py --anomaly ../shared/data/hazelnut_toy \\
        --work /tmp/large_anomaly --photos 12 -- --sam-zero-shot --threshold 4.0

Results: ``bench/results/large_photo_memory.md``.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
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


def paint_discs(category: Path, folder: Path, *, photos: int, discs: int, size: tuple[int, int]) -> Path:
    """``photos`` PNGs of ``category``'s ``test/good`` photos (in turn) resized to ``size`` ``(W, H)``, each
    with ``discs`` orange discs of radius 40-150 px (seeded by the photo's index); made once per folder."""
    if folder.is_dir() and len(list(folder.glob("*.png"))) == photos:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    goods = sorted((category / "test" / "good").iterdir())
    for index in range(photos):
        rng = np.random.default_rng(index)
        image = cv2.resize(cv2.imread(str(goods[index % len(goods)])), size)
        for _ in range(discs):
            centre = (int(rng.integers(200, size[0] - 200)), int(rng.integers(200, size[1] - 200)))
            cv2.circle(image, centre, int(rng.integers(40, 150)), (0, 140, 255), -1)
        cv2.imwrite(str(folder / f"s{index:02d}.png"), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return folder


def fit_large_run(category: Path, work: Path, size: tuple[int, int]) -> Path:
    """A PatchCore run fit (in a child process: its memory is not this one's) on ``category``'s first 10
    ``train/good`` photos resized to ``size``; made once per ``work``."""
    run = work / "run"
    if run.is_dir():
        return run
    train = work / "fit" / "large" / "train" / "good"
    train.mkdir(parents=True, exist_ok=True)
    for path in sorted((category / "train" / "good").iterdir())[:10]:
        cv2.imwrite(str(train / f"{path.stem}.png"), cv2.resize(cv2.imread(str(path)), size))
    command = [sys.executable, "-m", "anomaly.train", "--root", str(work / "fit"), "--category", "large"]
    subprocess.run([*command, "--out", str(run), "--no-progress"], check=True)
    return run


def measure_anomaly(args: argparse.Namespace, extra: list[str]) -> int:
    """``anomaly.predict`` on painted large photos, peak RSS after each photo (see the module docstring)."""
    import anomaly.outputs
    import anomaly.predict

    size = tuple(args.size)
    run = fit_large_run(args.anomaly, args.work, size)
    folder = paint_discs(
        args.anomaly, args.work / f"spots_{args.photos}x{args.discs}", photos=args.photos, discs=args.discs,
        size=size,
    )  # fmt: skip
    return measured_run(
        anomaly.outputs.PredictionWriter, "add", anomaly.predict.main,
        ["--run", str(run), "--source", str(folder), "--out", str(args.work / "out"), "--overwrite",
         "--no-progress", "--cache-dir", str(args.work / "cache"), *extra],
    )  # fmt: skip


def measured_run(owner: type, method: str, command, argv: list[str]) -> int:  # noqa: ANN001
    """``command(argv)`` with the peak RSS noted after each call of ``owner.method`` (once per photo)."""
    after_photo: list[int] = []
    original = getattr(owner, method)

    def measured(self, *given, **options):  # noqa: ANN001, ANN002, ANN003, ANN202
        result = original(self, *given, **options)
        after_photo.append(peak_mb())
        return result

    setattr(owner, method, measured)
    start = time.perf_counter()
    code = command(argv)
    print(f"exit {code} in {time.perf_counter() - start:.0f} s; peak RSS after each photo, MB: {after_photo}")
    print(f"peak RSS: {peak_mb()} MB")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, help="the photo to resize and paint (inspection.predict)")
    parser.add_argument(
        "--anomaly", type=Path, help="an MVTec category folder: measure anomaly.predict instead (see above)"
    )
    parser.add_argument("--discs", type=int, default=30, help="discs painted on each photo (--anomaly)")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder: photos, outputs, cache")
    parser.add_argument("--photos", type=int, default=2)
    parser.add_argument("--boxes", type=int, default=40)
    parser.add_argument("--size", type=int, nargs=2, default=(4000, 3000), metavar=("W", "H"))
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    if args.anomaly is not None:
        return measure_anomaly(args, extra)
    if args.photo is None:
        parser.error("--photo or --anomaly is required")

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
    return measured_run(
        inspection.inspector.Inspector, "__call__", inspection.predict.main,
        ["--detector", str(detector), "--source", str(folder), "--out", str(args.work / "out"), "--overwrite",
         "--no-progress", "--cache-dir", str(args.work / "cache"), *extra],
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
