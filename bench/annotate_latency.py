"""Annotation page latency: prompt -> mask per click through the HTTP API, MobileSAM on the CPU.

Runs the real command, ``python -m segmentation.annotate`` (uvicorn on a free loopback port,
MobileSAM ``vit_t`` from the weights cache, a fresh embedding cache in a temporary folder), once
per ``--threads`` value, and drives it over HTTP with httpx as the page does. Photos: the real
512x512 hazelnut photos of ``../shared/data/hazelnut_toy/test/colour`` (``--n-images`` of them;
synthetic nuts from ``converters.synthetic`` where that folder is absent) plus one 4000x3000 photo
(a hazelnut photo resized up), each with its ground-truth mask to aim the clicks at.

Per server, two passes over the photos:

1. ``--prefetch 0`` (nothing computed behind the user's back):
   - ``embed``: opening a photo (``POST /api/current``) until ``/api/embedding`` says ready, cold
     cache: the encoder's time per image, as the first photo's progress bar shows it;
   - ``click``: ``POST /api/predict`` round trips, client-side, for a user's prompt sequence on the
     defect (a point; two points; plus a background point; the defect's box; box + point; three
     single points elsewhere), each preceded by ``--think-ms`` of idle time;
   - ``accept``: ``POST /api/accept`` (the full-resolution mask, the state file, the MVTec files).
2. ``--prefetch 1`` (the default use): every photo is opened right after the previous one's clicks,
   so the next photo's embedding runs in the background while the user clicks:
   - ``click_prefetching``: the same clicks while the next photo is being embedded (clicks are
     labelled by the next photo's state at send time);
   - ``switch_prefetched``: from opening the next photo (``POST /api/current`` + ``GET /api/image``)
     to its first mask preview, when it was prefetched;
   - ``switch_cold``: the same for a photo that was not prefetched (its encoder runs first).

Each click row also has the server's own times (decoder alone, and the whole ``/api/predict``
handler), so HTTP + JSON overhead is their difference to the client's.

Writes ``<out>/annotate_latency.csv`` and ``<out>/annotate_latency.md`` and prints the markdown.

Usage::

    python bench/annotate_latency.py --threads 1 2 --out bench/results
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from machine import load_average
from machine import machine_info as shared_machine_info

REPO = Path(__file__).resolve().parents[1]
HAZELNUT = REPO.parent / "shared" / "data" / "hazelnut_toy"
LARGE_SIZE = (3000, 4000)  # (H, W) of the large photo
CLASS = "colour"
#: Targets of the issue: a click under 100 ms on 2 CPU cores (p50), and the slow tail within 2x.
TARGET_P50_MS = 100.0
TARGET_P95_MS = 200.0


@dataclass
class Photo:
    """A photo to annotate and the ground truth its clicks aim at."""

    name: str
    truth: np.ndarray  # (H, W) bool

    @property
    def size_label(self) -> str:
        height, width = self.truth.shape
        return f"{width}x{height}"


@dataclass
class Samples:
    """Timings of one metric for one thread count and one photo size, in ms."""

    runtime: str
    threads: int
    metric: str
    size: str
    client_ms: list[float] = field(default_factory=list)
    decode_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    decode_cpu_ms: list[float] = field(default_factory=list)
    server_cpu_ms: list[float] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Photos and prompts


def prepare_photos(folder: Path, n_images: int, seed: int) -> list[Photo]:
    """Writes the photos into ``folder`` and returns them with their truths (large photo last)."""
    folder.mkdir(parents=True)
    photos: list[Photo] = []
    sources = sorted((HAZELNUT / "test" / "colour").glob("*.jpg"))[:n_images] if HAZELNUT.is_dir() else []
    for source in sources:
        mask = cv2.imread(str(HAZELNUT / "ground_truth" / "colour" / f"{source.stem}_mask.png"), 0) > 0
        (folder / source.name).write_bytes(source.read_bytes())
        photos.append(Photo(source.name, mask))
    if not photos:  # no real photos here: synthetic nuts with colour stains, 512 px
        from converters.synthetic import render_sample

        rng = np.random.default_rng(seed)
        for index in range(n_images):
            image, mask = render_sample("color", rng, 512)
            name = f"synthetic_{index:03d}.png"
            cv2.imwrite(str(folder / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            photos.append(Photo(name, mask > 0))
    first = photos[0]
    image = cv2.imread(str(folder / first.name))
    height, width = LARGE_SIZE
    large = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(folder / "zz_large_4000x3000.jpg"), large, [cv2.IMWRITE_JPEG_QUALITY, 90])
    truth = cv2.resize(first.truth.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
    photos.append(Photo("zz_large_4000x3000.jpg", truth))
    return photos


def prompts_for(truth: np.ndarray, rng: np.random.Generator) -> list[dict]:
    """The prompt sequence of one photo, in pixels: how a user refines one defect, then explores."""
    height, width = truth.shape
    distance = cv2.distanceTransform(truth.view(np.uint8), cv2.DIST_L2, 3)
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    inside = np.argwhere(truth)
    y2, x2 = inside[rng.integers(len(inside))]
    ys, xs = np.nonzero(truth)
    box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
    background = np.argwhere(~truth)
    yb, xb = background[rng.integers(len(background))]
    centre, second, away = [x + 0.5, y + 0.5], [x2 + 0.5, y2 + 0.5], [xb + 0.5, yb + 0.5]
    prompts = [
        {"points": [centre], "labels": [1]},
        {"points": [centre, second], "labels": [1, 1]},
        {"points": [centre, second, away], "labels": [1, 1, 0]},
        {"points": [], "labels": [], "box": box},
        {"points": [centre], "labels": [1], "box": box},
    ]
    for _ in range(3):
        prompts.append({"points": [[rng.uniform(0, width), rng.uniform(0, height)]], "labels": [1]})
    return [{"box": None, **p, "points": [[float(v) for v in xy] for xy in p["points"]]} for p in prompts]


# --------------------------------------------------------------------------------------------
# The server


class Server:
    """``python -m segmentation.annotate`` in a child process; its URL parsed from what it prints."""

    def __init__(
        self, photos: Path, out: Path, cache: Path, *, runtime: str, threads: int, prefetch: int
    ) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.command = [
            sys.executable, "-m", "segmentation.annotate",
            "--images", str(photos), "--out", str(out), "--classes", CLASS, "--model", "vit_t",
            "--cache-dir", str(cache), "--device", "cpu", "--threads", str(threads),
            "--prefetch", str(prefetch), "--runtime", runtime, "--port", "0",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            self.command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines: list[str] = []
        deadline = time.monotonic() + 300
        while True:
            line = self.process.stdout.readline()
            lines.append(line)
            if line.startswith("Open http"):
                self.url = re.search(r"http://\S+", line).group(0)
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the annotation server did not start:\n" + "".join(lines))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()


def wait_ready(client, name: str, timeout: float = 600.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get("/api/embedding", params={"image": name}).json()
        if status["state"] == "ready":
            return status
        if status["state"] == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"embedding of {name}: {status}")
        time.sleep(0.01)


def click(client, name: str, prompt: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    response = client.post("/api/predict", json={"image": name, **prompt})
    elapsed = (time.perf_counter() - started) * 1e3
    response.raise_for_status()
    return elapsed, response.json()


def add(samples: dict, setup: tuple, metric: str, size: str, client_ms: float, result: dict | None = None):
    row = samples.setdefault((*setup, metric, size), Samples(*setup, metric, size))
    row.client_ms.append(client_ms)
    if result is not None:
        row.decode_ms.append(result["ms"]["decode"])
        row.server_ms.append(result["ms"]["predict"])
        row.decode_cpu_ms.append(result["ms"]["decode_cpu"])
        row.server_cpu_ms.append(result["ms"]["predict_cpu"])


def pass_idle(client, photos: list[Photo], setup: tuple, samples: dict, args, rng) -> None:
    """Pass 1 (``--prefetch 0``): cold embedding, clicks on an idle server, accept."""
    for photo in photos:
        started = time.perf_counter()
        client.post("/api/current", json={"image": photo.name}).raise_for_status()
        status = wait_ready(client, photo.name)
        add(samples, setup, "embed", photo.size_label, (time.perf_counter() - started) * 1e3)
        samples[(*setup, "embed", photo.size_label)].server_ms.append(status["seconds"] * 1e3)
        result = None
        for prompt in prompts_for(photo.truth, rng):
            time.sleep(args.think_ms / 1e3)
            elapsed, result = click(client, photo.name, prompt)
            add(samples, setup, "click", photo.size_label, elapsed, result)
        _, result = click(client, photo.name, prompts_for(photo.truth, rng)[0])  # the one accepted
        body = {
            "image": photo.name,
            "prediction": result["prediction"],
            "candidate": result["best"],
            "class": CLASS,
        }
        started = time.perf_counter()
        client.post("/api/accept", json=body).raise_for_status()
        add(samples, setup, "accept", photo.size_label, (time.perf_counter() - started) * 1e3)


def pass_prefetch(client, photos: list[Photo], setup: tuple, samples: dict, args, rng) -> None:
    """Pass 2 (``--prefetch 1``): clicks while the next photo embeds, switching to it, one cold switch."""
    small = [p for p in photos if p.truth.shape != LARGE_SIZE]
    order = small[:-1]  # the last small photo is kept for the cold switch
    client.post("/api/current", json={"image": order[0].name}).raise_for_status()
    wait_ready(client, order[0].name)
    for index, photo in enumerate(order):
        following = order[index + 1] if index + 1 < len(order) else None
        for prompt in prompts_for(photo.truth, rng):
            time.sleep(args.think_ms / 1e3)
            # /api/image reports the state without asking for it (/api/embedding would make it urgent).
            state = (
                client.get("/api/image", params={"image": following.name}).json()["embedding"]["state"]
                if following is not None
                else "none"
            )
            elapsed, result = click(client, photo.name, prompt)
            metric = "click_prefetching" if state in ("running", "queued") else "click"
            add(samples, setup, metric, photo.size_label, elapsed, result)
        if following is None:
            break
        wait_ready(client, following.name)  # as a user reaches the next photo after a few seconds
        time.sleep(args.think_ms / 1e3)
        elapsed, result = open_and_click(client, following)
        add(samples, setup, "switch_prefetched", following.size_label, elapsed, result)
    for photo in (small[-1], photos[-1]):  # never opened in this pass: cold
        elapsed, result = open_and_click(client, photo)
        add(samples, setup, "switch_cold", photo.size_label, elapsed, result)


def open_and_click(client, photo: Photo) -> tuple[float, dict]:
    """Opening a photo until its first mask preview: what the user waits for after pressing the arrow key."""
    started = time.perf_counter()
    client.post("/api/current", json={"image": photo.name}).raise_for_status()
    client.get("/api/image", params={"image": photo.name}).raise_for_status()
    wait_ready(client, photo.name)
    _, result = click(client, photo.name, prompts_for(photo.truth, np.random.default_rng(0))[0])
    return (time.perf_counter() - started) * 1e3, result


def measure(
    runtime: str,
    threads: int,
    photos_dir: Path,
    photos: list[Photo],
    work: Path,
    args,
    samples: dict,
    info: dict,
):
    import httpx

    rng = np.random.default_rng(args.seed)
    setup = (runtime, threads)
    for name, prefetch, run in (("idle", 0, pass_idle), ("prefetch", 1, pass_prefetch)):
        print(f"{runtime}, threads {threads}: pass {name} ...", file=sys.stderr)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        label = f"{runtime}_{threads}_{name}"
        server = Server(
            photos_dir,
            work / f"out_{label}",
            work / f"emb_{label}",
            runtime=runtime,
            threads=threads,
            prefetch=prefetch,
        )
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                session = client.get("/api/session").json()
                assert session["decoder_runtime"] == runtime, session
                info[label] = f"torch threads {session['torch_threads']}, load_avg_1m {load:.2f} before"
                run(client, photos, setup, samples, args, rng)
        finally:
            server.stop()
        if hasattr(os, "getloadavg"):
            info[label] += f", {os.getloadavg()[0]:.2f} after"
    return server.command


# --------------------------------------------------------------------------------------------
# Report


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def machine_info() -> dict[str, str]:
    import torch

    return shared_machine_info(
        {
            "load_avg_1m": load_average(),
            "torch_default_threads": str(torch.get_num_threads()),
        },
        ["torch", "fastapi", "uvicorn", "httpx"],
    )


def write_csv(path: Path, rows: Sequence[Samples]) -> None:
    """One row per (threads, metric, photo size): n and min/p50/p95/mean/max of each timing, in ms."""
    kinds = ("client", "decode", "server", "decode_cpu", "server_cpu")
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        header = ["runtime", "threads", "metric", "size", "n"]
        for kind in kinds:
            header += [f"{kind}_{stat}_ms" for stat in ("min", "p50", "p95", "mean", "max")]
        writer.writerow(header)
        for row in rows:
            line = [row.runtime, row.threads, row.metric, row.size, len(row.client_ms)]
            for kind in kinds:
                values = getattr(row, f"{kind}_ms")
                if values:
                    line += [f"{np.min(values):.1f}", f"{percentile(values, 50):.1f}"]
                    line += [
                        f"{percentile(values, 95):.1f}",
                        f"{np.mean(values):.1f}",
                        f"{np.max(values):.1f}",
                    ]
                else:
                    line += [""] * 5
            writer.writerow(line)


METRIC_TEXT = {
    "embed": "open a photo until its embedding is ready (cold cache, encoder)",
    "click": "click -> mask preview, idle server",
    "click_prefetching": "click -> mask preview while the next photo embeds",
    "accept": "Enter -> full-resolution mask saved (state + MVTec files)",
    "switch_prefetched": "next photo (prefetched) -> first mask preview",
    "switch_cold": "photo not prefetched -> first mask preview (encoder first)",
}


def markdown(rows: Sequence[Samples], *, command: str, server_command: str, args, info: dict, n_photos: int):
    met = {True: "met", False: "not met"}
    lines = [
        "# Annotation page latency",
        "",
        f"MobileSAM (`vit_t`) on the CPU through the HTTP API of `python -m segmentation.annotate` (uvicorn, "
        f"loopback, httpx client); {n_photos} photos of 512x512 and one of 4000x3000; "
        f"{args.think_ms:.0f} ms think time before each click. Times in ms, client-side unless marked.",
        "",
        "| decoder | threads | metric | photo | n | min | p50 | p95 | max | decoder p50 | server p50 "
        "| decoder CPU p50 | server CPU p50 |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        extra = [
            f"{percentile(values, 50):.1f}" if values else ""
            for values in (row.decode_ms, row.server_ms, row.decode_cpu_ms, row.server_cpu_ms)
        ]
        lines.append(
            f"| {row.runtime} | {row.threads} | {row.metric} | {row.size} | {len(row.client_ms)} "
            f"| {np.min(row.client_ms):.1f} | {percentile(row.client_ms, 50):.1f} "
            f"| {percentile(row.client_ms, 95):.1f} | {np.max(row.client_ms):.1f} | "
            + " | ".join(extra)
            + " |"
        )
    lines += ["", "Metrics:", ""]
    lines += [f"- `{metric}`: {text}" for metric, text in METRIC_TEXT.items()]
    lines += [
        "- decoder: the server's wall time in SAM's prompt encoder + mask decoder; server: the whole "
        "`/api/predict` handler (decoder, preview masks, RLE); for `embed`, server is the encoder "
        "job's own time. CPU: the same spans as CPU time of the handler thread; with 1 torch thread "
        "all the work runs on that thread, so it approximates what the click costs with a core to "
        "itself, whatever else the machine runs (an upper bound: contention inflates CPU time too; "
        "with 2 threads OpenMP's second thread is not counted).",
        "",
        "## Targets",
        "",
    ]
    for row in rows:
        if row.metric == "click" and row.size == "512x512":
            p50, p95 = percentile(row.client_ms, 50), percentile(row.client_ms, 95)
            lines.append(
                f"- {row.runtime}, threads {row.threads}, as measured: click p50 under "
                f"{TARGET_P50_MS:.0f} ms on 512-px photos: **{met[p50 < TARGET_P50_MS]}** ({p50:.1f} ms); "
                f"p95 under {TARGET_P95_MS:.0f} ms: **{met[p95 < TARGET_P95_MS]}** ({p95:.1f} ms)"
            )
            if row.threads == 1:
                cpu, decoder = percentile(row.server_cpu_ms, 50), percentile(row.decode_cpu_ms, 50)
                overhead = min(row.client_ms) - min(row.server_ms)
                verdict = "met" if cpu + overhead < TARGET_P50_MS else "not shown"
                lines.append(
                    f"- {row.runtime}, threads 1, with a core to itself (the handler's CPU time p50 + "
                    f"the smallest HTTP overhead seen; an upper bound, as contention inflates CPU time "
                    f"too): under {TARGET_P50_MS:.0f} ms: **{verdict}** ({cpu:.1f} + {overhead:.1f} ms, "
                    f"of which the decoder {decoder:.1f} ms)"
                )
    lines += [
        "",
        "## Run",
        "",
        f"- command: `{command}`",
        f"- server: `{server_command}` (per pass: `--prefetch 0`, then `--prefetch 1`; "
        "`--runtime` and `--threads` per row)",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        "- machine: " + ", ".join(f"{key} {value}" for key, value in info.items()),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads per server run")
    parser.add_argument(
        "--runtime",
        nargs="+",
        choices=("onnx", "torch"),
        default=["onnx", "torch"],
        help="decoder runtimes to compare (default: onnx torch)",
    )
    parser.add_argument(
        "--n-images", type=int, default=6, help="512-px photos (default 6; plus the large one)"
    )
    parser.add_argument(
        "--think-ms", type=float, default=300.0, help="idle time before each click (default 300)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompts (default 0)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="results folder")
    args = parser.parse_args(argv)
    if args.n_images < 3 or min(args.threads) < 1 or args.think_ms < 0:
        parser.error("need --n-images >= 3, --threads >= 1, --think-ms >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else ["bench/annotate_latency.py", *argv])])
    from common.weights import weights_dir
    from segmentation.models import sam_model

    weights = weights_dir() / sam_model("vit_t").weights.filename
    if not weights.is_file():
        print(f"error: MobileSAM weights not cached at {weights}: run python -m segmentation.embed first")
        return 2
    info = machine_info()
    samples: dict[tuple[int, str, str], Samples] = {}
    with tempfile.TemporaryDirectory(prefix="annotate_latency_") as tmp:
        work = Path(tmp)
        photos = prepare_photos(work / "photos", args.n_images, args.seed)
        server_command = ""
        for runtime in args.runtime:
            for threads in args.threads:
                server_command = shlex.join(
                    measure(runtime, threads, work / "photos", photos, work, args, samples, info)
                )
    order = list(METRIC_TEXT)
    rows = sorted(
        samples.values(),
        key=lambda r: (args.runtime.index(r.runtime), r.threads, order.index(r.metric), r.size != "512x512"),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "annotate_latency.csv", rows)
    report = markdown(
        rows,
        command=command,
        server_command=server_command.replace(sys.executable, "python").replace(
            str(Path(tempfile.gettempdir())), "$TMP"
        ),
        args=args,
        info=info,
        n_photos=len(photos) - 1,
    )
    (args.out / "annotate_latency.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
