"""What removing specks costs per mask: the page's remove_specks and segment-anything's on the whole photo.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/experiments/annotate_specks/timing.py \
        > bench/experiments/annotate_specks/timing.md

Square photos of 1024, 2448 and 4000 px; a defect mask of 1/12 of the side squared with six
two-pixel specks beside it and six one-pixel pinholes (the probe's kind of speck), and a mask
covering the middle half of the photo; the page's default area (16 cells). Median of 5 runs each
(one process, one after the other, so only the ratios count on this noisy machine).
"""

from __future__ import annotations

import time

import numpy as np
from segment_anything.utils.amg import remove_small_regions

from segmentation.specks import DEFAULT_CELLS, min_region_area, remove_specks


def whole_photo(mask: np.ndarray, area: float) -> np.ndarray:
    mask, _ = remove_small_regions(mask, area, mode="holes")
    return remove_small_regions(mask, area, mode="islands")[0]


def speckled(side: int, extent: int) -> np.ndarray:
    mask = np.zeros((side, side), bool)
    y0 = side // 4
    mask[y0 : y0 + extent, y0 : y0 + extent] = True
    for k in range(6):
        mask[y0 - 10 - 20 * k : y0 - 8 - 20 * k, y0 : y0 + 2] = True
        mask[y0 + 3 + k * (extent // 8), y0 + 3] = False
    return mask


def median_ms(function, mask: np.ndarray, area: float) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        function(mask, area)
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main() -> None:
    print("| photo | mask | remove_specks | segment-anything, whole photo | ratio |")
    print("|---|---|---:|---:|---:|")
    for side in (1024, 2448, 4000):
        area = min_region_area(DEFAULT_CELLS, side, 256)
        for name, extent in (("defect (1/12 of the side)", side // 12), ("half the photo", side // 2)):
            mask = speckled(side, extent)
            assert np.array_equal(remove_specks(mask, area), whole_photo(mask, area))
            ours, theirs = median_ms(remove_specks, mask, area), median_ms(whole_photo, mask, area)
            print(f"| {side} px | {name} | {ours:.1f} ms | {theirs:.1f} ms | {theirs / ours:.0f}x |")


if __name__ == "__main__":
    main()
