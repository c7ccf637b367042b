"""Inspection cascade speed and memory: what it adds on top of the two networks it must run.

For each photo the cascade (``inspection.inspector.Inspector``) decodes it, runs the detector,
computes SAM's image embedding when there is a box, decodes every box's mask in one decoder call,
upscales the masks and makes the verdict. The two networks alone are the floor: this script
times, photo by photo and taking turns (so the machine's load hits all three alike):

- ``detector``: the detector's inference on the decoded photo (``Inspector.detect``);
- ``encoder``: SAM's image encoder on the same photo (``segmentation.embeddings.embed_images``);
- ``cascade``: the whole ``Inspector.__call__`` (no embedding cache: new photos).

and reports photos/s and ``cascade / (detector + encoder)`` over the photos with at least one
box (those must run both networks; a photo without boxes skips SAM entirely, so over all photos
the cascade is cheaper still). Target: ratio <= 1.15.

Then ``--rss-photos`` photos (the photos repeated) go through ``inspect_many`` into a
``PredictionWriter`` (predictions, masks tree, no overlays) while the process's RSS is sampled:
memory must stay flat, i.e. the growth over the second half of the run is ~0.

Photos: ``--n-photos`` images of a converted data set (``--data``, default ``runs/demo/synthetic_nut``
from ``make demo``), spread over its splits, resized to ``--size`` px squares in a temporary folder.

Usage::

    PYTHONPATH=. python bench/inspect_speed.py --detector runs/demo/detect/yolo11n_world/weights/best.pt \\
        --sam runs/demo/sam/vit_t/decoder.pt --size 1024 --threads 2 --rss-photos 500 --out bench/results
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch
from report import (
    bench_parser,
    command_line,
    csv_file,
    load_average,
    machine_line,
    note_load_after,
    write_report,
)
from report import (
    machine_info as shared_machine_info,
)

from common.image_files import decode_image_file
from inspection.inspector import Inspector
from inspection.outputs import PredictionWriter
from segmentation.embeddings import embed_images

TARGET_RATIO = 1.15
WAYS = ("detector", "encoder", "cascade")


@dataclass
class PhotoTimes:
    """Seconds per way for one photo, and how many boxes the cascade found."""

    name: str
    seconds: dict[str, float] = field(default_factory=dict)
    boxes: int = 0


def rss_mb() -> float:
    """The process's resident memory in MB (``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def prepare_photos(data: Path, size: int, folder: Path, limit: int) -> list[Path]:
    """``limit`` of the data set's images, spread over its splits, resized to ``size`` px squares (PNG)."""
    every = sorted((data / "images").glob("*/*"))  # all splits: speed, not accuracy, is measured
    if not every:
        raise SystemExit(f"no images under {data / 'images'}: run `make demo` or pass --data")
    sources = [every[i] for i in np.linspace(0, len(every) - 1, min(limit, len(every))).round().astype(int)]
    photos = []
    for source in sources:
        image = decode_image_file(source, cv2.IMREAD_COLOR)
        target = folder / f"{source.stem}.png"
        cv2.imwrite(str(target), cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC))
        photos.append(target)
    return photos


def time_photo(inspector: Inspector, path: Path) -> PhotoTimes:
    """The three ways on one photo, in turn."""
    image = decode_image_file(path, cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    times = PhotoTimes(path.name)
    start = time.perf_counter()
    inspector.detect(image)
    times.seconds["detector"] = time.perf_counter() - start
    start = time.perf_counter()
    with torch.inference_mode():
        embed_images(inspector.sam, [rgb], inspector.device)
    times.seconds["encoder"] = time.perf_counter() - start
    start = time.perf_counter()
    result = inspector(path)
    times.seconds["cascade"] = time.perf_counter() - start
    times.boxes = len(result)
    return times


def rss_run(inspector: Inspector, photos: Sequence[Path], n: int, out: Path) -> list[tuple[int, float]]:
    """``n`` photos (``photos`` repeated) through ``inspect_many`` into a writer; RSS every tenth."""
    from inspection.photos import Photo

    sequence = [photos[i % len(photos)] for i in range(n)]
    samples = [(0, rss_mb())]
    every = max(1, n // 10)
    writer = PredictionWriter(out, class_names=inspector.class_names, overlays=0)
    with writer:
        for index, inspection in enumerate(inspector.inspect_many(sequence, progress=False), start=1):
            name = f"{index:05d}_{sequence[index - 1].stem}"
            writer.add(inspection, Photo(sequence[index - 1], f"{name}.png", name, index))
            if index % every == 0 or index == n:
                samples.append((index, rss_mb()))
                print(f"  {index}/{n} photos, RSS {samples[-1][1]:.0f} MB", file=sys.stderr, flush=True)
    return samples


def summarise(rows: Sequence[PhotoTimes]) -> dict[str, float]:
    boxed = [r for r in rows if r.boxes]
    total = {way: sum(r.seconds[way] for r in rows) for way in WAYS}
    boxed_total = {way: sum(r.seconds[way] for r in boxed) for way in WAYS}
    floor = boxed_total["detector"] + boxed_total["encoder"]
    return {
        "photos": len(rows),
        "photos_with_boxes": len(boxed),
        **{f"{way}_ms": 1000 * total[way] / len(rows) for way in WAYS},
        "cascade_photos_per_s": len(rows) / total["cascade"],
        "ratio_boxed": boxed_total["cascade"] / floor if boxed else float("nan"),
        "ratio_all": total["cascade"] / (total["detector"] + total["encoder"]),
    }


def rss_figures(samples: Sequence[tuple[int, float]]) -> dict[str, float]:
    """Start, peak, end, and growth over the second half in MB per 100 photos."""
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    slope = (half[-1][1] - half[0][1]) / max(1, half[-1][0] - half[0][0]) * 100 if len(half) > 1 else 0.0
    return {
        "rss_start_mb": samples[0][1],
        "rss_peak_mb": max(s[1] for s in samples),
        "rss_end_mb": samples[-1][1],
        "rss_growth_second_half_mb_per_100": slope,
    }


def markdown(summary: dict, rss: dict, samples, *, command: str, info: dict, args, inspector) -> str:
    met = "met" if summary["ratio_boxed"] <= TARGET_RATIO else "NOT met"
    lines = [
        "# Inspection cascade: speed and memory",
        "",
        f"{summary['photos']} photos of {args.size}x{args.size} px "
        f"({summary['photos_with_boxes']} with boxes), detector at imgsz {args.imgsz}, "
        f"SAM `{args.model or 'from decoder.pt'}` (decoder on {inspector.runtime}), {args.threads} torch "
        "threads, no embedding cache.",
        "",
        "| way | ms / photo |",
        "|---|---|",
        *(f"| {way} | {summary[f'{way}_ms']:.1f} |" for way in WAYS),
        "",
        f"- cascade: {summary['cascade_photos_per_s']:.2f} photos/s",
        f"- cascade / (detector + encoder), photos with boxes: **{summary['ratio_boxed']:.3f}** "
        f"(target <= {TARGET_RATIO}: {met})",
        f"- the same over all photos (good photos skip SAM): {summary['ratio_all']:.3f}",
        "",
        f"Memory over {samples[-1][0]} photos through `inspect_many` + `PredictionWriter`: "
        f"RSS {rss['rss_start_mb']:.0f} MB at start, peak {rss['rss_peak_mb']:.0f} MB, "
        f"{rss['rss_end_mb']:.0f} MB at the end; growth over the second half "
        f"{rss['rss_growth_second_half_mb_per_100']:+.1f} MB per 100 photos.",
        "",
        "| photos | RSS MB |",
        "|---|---|",
        *(f"| {n} | {mb:.0f} |" for n, mb in samples),
        "",
        f"- command: `{command}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        machine_line(info),
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None):
    parser = bench_parser(__doc__)
    demo_detector = Path("runs/demo/detect/yolo11n_world/weights/best.pt")
    parser.add_argument("--detector", type=Path, default=demo_detector)
    parser.add_argument("--sam", type=Path, default=Path("runs/demo/sam/vit_t/decoder.pt"))
    parser.add_argument("--model", default=None, help="SAM model for a full state dict")
    parser.add_argument("--data", type=Path, default=Path("runs/demo/synthetic_nut"))
    parser.add_argument("--size", type=int, default=1024, help="photo side in px")
    parser.add_argument("--imgsz", type=int, default=640, help="detector input size")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--n-photos", type=int, default=24, help="photos timed")
    parser.add_argument("--rss-photos", type=int, default=500, help="photos in the memory run (0: none)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runtime", default="auto", help="SAM's decoder: auto, onnx, torch")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = command_line(__file__, argv)
    torch.set_num_threads(args.threads)
    if not args.detector.is_file():  # today's make demo trains the YOLO-World-v2 head, not this YOLO11n
        raise SystemExit(
            f"no detector at {args.detector}: train one as bench/README.md's inspect_speed section says, "
            "or pass --detector"
        )
    info = shared_machine_info(
        {"torch_threads": str(args.threads), "load_avg_1m_before": load_average()},
        ["torch", "ultralytics", "segment-anything", "numpy", "opencv-python-headless"],
    )
    inspector = Inspector.from_checkpoints(
        args.detector,
        args.sam,
        model=args.model,
        use_cache=False,
        device="cpu",
        imgsz=args.imgsz,
        conf=args.conf,
        runtime=args.runtime,
    )
    with tempfile.TemporaryDirectory(prefix="inspect_speed_") as tmp:
        photos = prepare_photos(args.data, args.size, Path(tmp), args.n_photos)
        # Warm-up (first calls allocate and pick kernels) on copies under other names: the
        # inspector keeps the last photo's embedding, which must not serve a timed photo.
        for index, path in enumerate(photos[:3]):
            time_photo(inspector, Path(shutil.copy(path, Path(tmp) / f"warmup_{index}.png")))
        rows = [time_photo(inspector, path) for path in photos]
        summary = summarise(rows)
        print(f"timed {len(rows)} photos: ratio {summary['ratio_boxed']:.3f}", file=sys.stderr)
        samples = (
            rss_run(inspector, photos, args.rss_photos, Path(tmp) / "run")
            if args.rss_photos
            else [(0, rss_mb())]
        )
    note_load_after(info)
    rss = rss_figures(samples)
    args.out.mkdir(parents=True, exist_ok=True)
    with csv_file(args.out / "inspect_speed.csv") as writer:
        writer.writerow(["photo", "boxes", *(f"{way}_ms" for way in WAYS)])
        for row in rows:
            writer.writerow([row.name, row.boxes, *(f"{1000 * row.seconds[way]:.1f}" for way in WAYS)])
    write_report(
        args.out / "inspect_speed.md",
        markdown(summary, rss, samples, command=command, info=info, args=args, inspector=inspector),
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("YOLO_OFFLINE", "1")
    sys.exit(main())
