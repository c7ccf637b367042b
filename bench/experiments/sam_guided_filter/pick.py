"""Throw-away (issue 12): settings picked on each round's val split, scored on its test split.

    python3 bench/experiments/sam_guided_filter/pick.py bench/experiments/sam_guided_filter/grid.json

Per data set, model (zs = zero-shot, ft = fine-tuned) and read-out (plain, tta): the
refinement setting with the best mean val IoU of the round ("off" included and preferred on
ties) is scored on the round's test images; mean +- std (ddof 1) over rounds of the test
fold's mean image IoU, as segmentation.crossval reports. Restricted grids (grey / colour
guide, band or not) are picked the same way. The "oracle" row (best single setting on the
pooled test images) is a diagnostic only: it looks at the test folds.
"""

from __future__ import annotations

import json
import statistics
import sys


def mean(values):
    return sum(values) / len(values)


def pick(val: dict, allowed) -> str:
    names = ["off"] + [k for k in next(iter(val.values())) if k != "off" and allowed(k)]
    best = max(names, key=lambda k: (round(mean([s[k] for s in val.values()]), 10), k == "off"))
    return best


def run(grid: dict, data: str, rounds: int, allowed, label: str, out: list[str]) -> None:
    for model in ("zs", "ft"):
        for readout in ("plain", "tta"):
            ro = f"{model}/{readout}"
            per_round, base, picks = [], [], []
            for r in range(rounds):
                val = grid[f"{data}_r{r}_val"][ro]
                test = grid[f"{data}_r{r}_test"][ro]
                k = pick(val, allowed)
                picks.append(k)
                per_round.append(mean([s[k] for s in test.values()]))
                base.append(mean([s["off"] for s in test.values()]))
            sd = statistics.stdev(per_round) if rounds > 1 else 0.0
            sdb = statistics.stdev(base) if rounds > 1 else 0.0
            out.append(
                f"| {data} | {label} | {ro} | {mean(base):.4f} +- {sdb:.4f} | "
                f"{mean(per_round):.4f} +- {sd:.4f} | "
                f"{mean(per_round) - mean(base):+.4f} | {', '.join(picks)} |"
            )


def oracle(grid: dict, data: str, rounds: int, out: list[str]) -> None:
    for ro in ("zs/plain", "ft/plain", "zs/tta", "ft/tta"):
        pooled: dict[str, list[float]] = {}
        per_round_tables = [grid[f"{data}_r{r}_test"][ro] for r in range(rounds)]
        for table in per_round_tables:
            for scores in table.values():
                for k, v in scores.items():
                    pooled.setdefault(k, []).append(v)
        ranked = sorted(pooled, key=lambda k: -mean(pooled[k]))
        top = ", ".join(f"{k} {mean(pooled[k]):.4f}" for k in ranked[:3])
        out.append(
            f"- {data} {ro}: off {mean(pooled['off']):.4f}; "
            f"best fixed settings on the pooled test images: {top}"
        )


def main() -> int:
    grid: dict = {}
    for path in sys.argv[1:]:  # several grids over the same dumps: settings merged per image
        for stem, by_ro in json.load(open(path)).items():
            for ro, by_image in by_ro.items():
                for image, scores in by_image.items():
                    grid.setdefault(stem, {}).setdefault(ro, {}).setdefault(image, {}).update(scores)
    restrictions = {
        "full grid": lambda k: True,
        "grey guide": lambda k: "_gray_" in k,
        "colour guide": lambda k: "_rgb_" in k,
        "no band": lambda k: k.endswith("_b0"),
        "band only": lambda k: not k.endswith("_b0"),
        "T=1": lambda k: k.startswith("T1_"),
    }
    out = [
        "| data | grid | model/read-out | off (test) | refined, picked on val (test) | gain "
        "| picks per round |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for data, rounds in (("hazelnut_toy", 5), ("synthetic_nut", 1)):
        if f"{data}_r{rounds - 1}_test" not in grid:
            continue
        for label, allowed in restrictions.items():
            run(grid, data, rounds, allowed, label, out)
    out.append("")
    out.append("Oracle (diagnostic only, picked on the test images themselves):")
    for data, rounds in (("hazelnut_toy", 5), ("synthetic_nut", 1)):
        if f"{data}_r{rounds - 1}_test" in grid:
            oracle(grid, data, rounds, out)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
