"""Wall and CPU time of a full default SAM decoder fine-tune on ~100 instances of 1024-px photos.

    PYTHONPATH=. python bench/sam_finetune_time.py --out bench/results

Issue 12's target: a default fine-tune (``configs/segmentation/sam_decoder.yaml``, nothing
overridden but the data and the cache) on about 100 training instances of 1024-px photos
finishes in under 5 minutes on 2 CPU cores once the images are embedded. The data is the
synthetic generator at 1024 px (35 images per defect type), converted with the converter's
defaults; the embeddings are made first (``python -m segmentation.embed``, not timed), then
``python -m segmentation.train`` runs alone in a subprocess with the machine's default torch
threads, timed from the outside (wall clock, and the child's user + system CPU time).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from report import bench_parser, command_line, load_average, machine_info, run_section, write_report
from sam_quality import convert_category

from converters.synthetic import SyntheticConfig, generate
from segmentation.data import load_split


def run(argv: list[str], log: Path) -> float:
    """Runs ``python -m ...argv`` with its output in ``log``; returns its wall seconds."""
    start = time.perf_counter()
    with log.open("w") as out:
        subprocess.run([sys.executable, "-m", *argv], stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--work", type=Path, default=Path("/tmp/mvtec-finetune-bench/sam_finetune_time"))
    parser.add_argument(
        "--per-defect", type=int, default=35, help="images per defect type (35: ~120 instances)"
    )
    args = parser.parse_args(argv)
    config = SyntheticConfig(size=1024, n_train_good=2, n_test_good=2, n_per_defect=args.per_defect)
    root = generate(args.work / "mvtec", config, overwrite=True, progress=False)
    data = convert_category(root.parent, args.work / "data" / "synthetic_nut_1024")
    counts = {
        name: (len(s.images), s.n_instances) for name in ("train", "val") for s in [load_split(data, name)]
    }
    cache = args.work / "cache"
    embed_s = run(["segmentation.embed", "--data", str(data), "--splits", "train", "val",
                   "--cache-dir", str(cache)], args.work / "embed.log")  # fmt: skip
    threads = {
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "load_avg_1m_before": load_average(),
    }
    machine = machine_info(threads, packages=("torch",))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    train_s = run(["segmentation.train", "--config", "configs/segmentation/sam_decoder.yaml", f"data={data}",
                   f"cache_dir={cache}", "device=cpu", "progress=false", f"out={args.work / 'runs'}",
                   "name=default", "exist_ok=true"], args.work / "train.log")  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    machine["load_avg_1m_after"] = f"{os.getloadavg()[0]:.2f}"
    best = [line for line in (args.work / "train.log").read_text().splitlines() if "best val IoU" in line]
    verdict = "met" if train_s < 300 else "not met"
    text = "\n".join(
        [
            "# Full default SAM decoder fine-tune on 1024-px photos",
            "",
            __doc__.split("\n\n", 2)[2].strip(),
            "",
            f"- data: train {counts['train'][0]} images / {counts['train'][1]} instances, "
            f"val {counts['val'][0]} images / {counts['val'][1]} instances (1024 x 1024 px)",
            f"- embedding (not timed in the target): {embed_s:.0f} s",
            f"- fine-tune wall time: **{train_s:.0f} s ({train_s / 60:.1f} min)**; CPU time {cpu_s:.0f} s "
            f"(user + system of the child)",
            f"- {best[-1].strip() if best else 'no best val IoU line in the log'}",
            f"- target (< 5 minutes after embedding): **{verdict}**",
            "",
            *run_section(command_line(__file__, argv), machine),
        ]
    )
    write_report(args.out / "sam_finetune_time.md", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
