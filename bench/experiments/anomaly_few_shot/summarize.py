"""The table of run.sh's log: per fit count, mean ± std over seeds of each figure its lines give.

python bench/experiments/anomaly_few_shot/summarize.py LOG
"""

import re
import statistics
import sys
from collections import defaultdict

FIGURES = ("image AUROC", "F1-max", "pixel AUROC", "AUPRO")

rows: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
for line in open(sys.argv[1]):
    count = int(re.match(r"n=(\d+) ", line).group(1))
    for figure in FIGURES:
        rows[count][figure].append(float(re.search(rf"{figure} ([0-9.]+)", line).group(1)))
print("| good photos fit | seeds | " + " | ".join(FIGURES) + " |")
print("|---:|---:|" + "---:|" * len(FIGURES))
for count in sorted(rows):
    cells = []
    for figure in FIGURES:
        values = rows[count][figure]
        spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
        cells.append(f"{statistics.mean(values):.3f}{spread}")
    print(f"| {count} | {len(rows[count]['AUPRO'])} | " + " | ".join(cells) + " |")
