"""Markdown table of one or more ``probe.py`` outputs: per round and mean ± std, paired differences.

cd bench/experiments/sam_colour_prompt
python3 table.py hazelnut.json [hazelnut_gate_lr0.1.json] > hazelnut.md
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

REFERENCE = ("zero-shot", "zero-shot, colour prompt at gate 1", "heads")


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def paired(values: list[float], reference: list[float]) -> str:
    diffs = [v - r for v, r in zip(values, reference, strict=True)]
    better = sum(d > 1e-9 for d in diffs)
    std = statistics.stdev(diffs) if len(diffs) > 1 else float("nan")
    return f"{statistics.mean(diffs):+.4f} ± {std:.4f} ({better} of {len(diffs)} better)"


def untrained_table(path: Path) -> None:
    """``stack.py --untrained``: MobileSAM as it is, the map at gate 1 and the colour head on each."""
    pick = json.loads(path.read_text())["per round"]
    reference = pick["zero-shot + colour head"]
    folds = " | ".join(f"fold{i}" for i in range(len(reference)))
    print(f"\n| untrained, test IoU | {folds} | mean ± std | paired vs zero-shot + colour head |")
    print(f"|---|{'---:|' * (len(reference) + 2)}")
    for name, values in pick.items():
        pair = "" if values is reference else paired(values, reference)
        print(f"| {name} | {' | '.join(f'{v:.4f}' for v in values)} | {mean_std(values)} | {pair} |")


def stack_table(gate0: Path, gate1: Path, untrained: Path | None = None) -> None:
    """``stack.py``'s outputs for the two gate starts, paired against heads-only + colour head."""
    a, b = (json.loads(path.read_text())["per round"] for path in (gate0, gate1))
    rows = [
        ("heads-only", a["heads"]),
        ("heads-only + colour head", a["heads + colour head"]),
        ("colour prompt, gate from 0", a["colour prompt"]),
        ("colour prompt, gate from 0, + colour head", a["colour prompt + colour head"]),
        ("colour prompt, gate from 1", b["colour prompt"]),
        ("colour prompt, gate from 1, + colour head", b["colour prompt + colour head"]),
    ]
    reference = rows[1][1]
    folds = " | ".join(f"fold{i}" for i in range(len(reference)))
    print(f"\n| test IoU | {folds} | mean ± std | paired vs heads-only + colour head |")
    print(f"|---|{'---:|' * (len(reference) + 2)}")
    for name, values in rows:
        pair = "" if values is reference else paired(values, reference)
        print(f"| {name} | {' | '.join(f'{v:.4f}' for v in values)} | {mean_std(values)} | {pair} |")
    if untrained is not None:
        untrained_table(untrained)


def main(argv: list[str]) -> int:
    paths, stack = (
        (argv[: argv.index("--stack")], argv[argv.index("--stack") + 1 :])
        if "--stack" in argv
        else (argv, [])
    )
    reports = [(Path(p).stem, json.loads(Path(p).read_text())) for p in paths]
    rounds = sorted(reports[0][1]["rounds"])
    rows = [(name, [reports[0][1]["rounds"][r][name] for r in rounds]) for name in REFERENCE]
    gates = []
    for stem, report in reports:
        label = f"colour prompt (`{stem}`: gate lr {report['settings']['gate_lr']:g})"
        rows.append((label, [report["rounds"][r]["colour prompt"] for r in rounds]))
        gates.append((label, [report["rounds"][r]["gate"] for r in rounds]))
    print(f"| `hazelnut_toy` test IoU | {' | '.join(rounds)} | mean ± std |")
    print(f"|---|{'---:|' * (len(rounds) + 1)}")
    for name, values in rows:
        print(f"| {name} | {' | '.join(f'{v:.4f}' for v in values)} | {mean_std(values)} |")
    zero, heads = rows[0][1], rows[2][1]
    print("\n| paired difference (mean ± std over rounds) | against zero-shot | against heads-only |")
    print("|---|---:|---:|")
    for name, values in rows[1:]:
        print(f"| {name} | {paired(values, zero)} | {paired(values, heads)} |")
    print("\n| gate kept (the epoch kept on val) | " + " | ".join(rounds) + " |")
    print(f"|---|{'---:|' * len(rounds)}")
    for name, values in gates:
        print(f"| {name} | {' | '.join(f'{v:.3f}' for v in values)} |")
    if stack:
        stack_table(*map(Path, stack))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
