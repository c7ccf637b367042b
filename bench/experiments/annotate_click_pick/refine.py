"""A click's mask refined by a second pass: its own box (and logits) as the prompt (a diagnostic; no gain).

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/experiments/annotate_click_pick/refine.py \
        --out bench/experiments/annotate_click_pick/refine.json

One click per true instance (``probe.py``'s), the page's pick (``predictor.preselect``); then SAM
again with the click and the box around that mask (grown by 0, 10 or 25 % of its sides), three
candidates and SAM's pick, one mask, or one mask with the first pass's logits as the mask prompt.
Mean IoU with the true instance per data set.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from segmentation.annotate.predictor import preselect
from segmentation.predict import decode, upscale_logits

_spec = importlib.util.spec_from_file_location(
    "annotate_click_pick_probe", Path(__file__).with_name("probe.py")
)
_probe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_probe)
instances, iou, prompts = _probe.instances, _probe.iou, _probe.prompts


def grown_box(mask: np.ndarray, grow: float) -> np.ndarray:
    """``(1, 4)`` xyxy around ``mask``, each side moved out by ``grow`` of the box's size, in the photo."""
    ys, xs = np.nonzero(mask)
    width, height = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    x0, y0 = max(xs.min() - grow * width, 0), max(ys.min() - grow * height, 0)
    x1, y1 = min(xs.max() + 1 + grow * width, mask.shape[1]), min(ys.max() + 1 + grow * height, mask.shape[0])
    return np.array([[x0, y0, x1, y1]], dtype=float)


def refinements(sam, emb, click: dict, low: torch.Tensor, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Each second pass's mask."""
    found = {}
    for grow in (0.0, 0.1, 0.25):
        box = grown_box(mask, grow)
        three, scores = decode(sam, emb, boxes=box, multimask_output=True, **click)
        one, _ = decode(sam, emb, boxes=box, multimask_output=False, **click)
        fed, _ = decode(sam, emb, boxes=box, mask_input=low, multimask_output=False, **click)
        pick = int(torch.argmax(scores[0]))
        for name, logits in (
            ("three, SAM's pick", three[:, pick : pick + 1]),
            ("one", one),
            ("one, logits fed", fed),
        ):
            found[f"box grown {grow:g}, {name}"] = (upscale_logits(sam, logits, emb)[0, 0] > 0).numpy()
    return found


def main() -> None:
    args, sam, cache, roots = _probe.setup()
    table = {}
    for data, root in roots.items():
        found: dict[str, list[float]] = {}
        with torch.inference_mode():
            for photo, truth in instances(root):
                (emb,) = cache.embed([photo], progress=False)
                click = prompts(truth)["click"]
                low, scores, masks = _probe.candidates(sam, emb, click)
                index = preselect(scores[0].numpy(), masks, box=False)
                found.setdefault("one pass (the page)", []).append(iou(masks[index], truth))
                for name, mask in refinements(
                    sam, emb, click, low[:, index : index + 1], masks[index]
                ).items():
                    found.setdefault(name, []).append(iou(mask, truth))
        table[data] = {name: round(float(np.mean(values)), 4) for name, values in found.items()}
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
