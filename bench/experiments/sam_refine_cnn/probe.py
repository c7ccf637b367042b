"""A small convolutional refiner on SAM's box logits and the photo's colours (an experiment, issue #12).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_refine_cnn/probe.py \
        --runs W/runs/VARIANT/hazelnut_toy --out bench/experiments/sam_refine_cnn/NAME.json

The shipped colour head (``segmentation/colour_head.py``) decides each in-box pixel from two numbers
of that pixel alone: SAM's logit and its colour distance to the box's border. It gains +0.016 IoU on
``hazelnut_toy``. Most of what is left lies 2-8 px from the annotator's outline
(``bench/results/sam_headroom.md``), where a pixel's neighbours (is there a colour edge nearby, on
which side) should say more than the pixel. This probe asks whether a few convolutions can use them:
per box, the window's channels (SAM's logit clipped /10, the Lab difference to the border median /20,
the colour distance /20) go through ``conv3x3(5->C) - ReLU - conv3x3 dilated 2 (C->C) - ReLU -
conv3x3 dilated 4 (C->C) - ReLU - conv1x1 (C->1)``, added to the linear colour head's logit (fit first,
as in the package); the convolutions start at zero output, so training starts from the colour head.
Trained with Adam on the round's train photos' boxes (BCE against the ground-truth union), the number
of steps picked on the round's val photos (scored every ``--every`` steps; none if nothing beats the
colour head on val), scored on the test photos: IoU of the union, mean over images, as
``segmentation.evaluate``. ``--runs``: a k-fold folder of ``bench/sam_quality.py``'s ``--work``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from experiments.probe_rounds import probe_parser, score_rounds
from sam_headroom import union_iou

from common.metrics import mean_std
from segmentation.colour_head import box_window, fit_colour_head, training_pixels
from segmentation.data import load_split
from segmentation.embeddings import EmbeddingCache, load_rgb
from segmentation.predict import box_logits


class Box:
    """One prompt box: its window, SAM's in-window logits, the window's input channels and its truth."""

    def __init__(self, logit: np.ndarray, rgb: np.ndarray, window: tuple[slice, slice], truth: np.ndarray):
        self.window = window
        lab = cv2.cvtColor(rgb[window].astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
        border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
        difference = (lab - np.median(border, axis=0)) / 20
        distance = np.linalg.norm(difference, axis=-1, keepdims=True)
        z = np.clip(logit[window], -20, 20)[..., None] / 10
        self.raw_logit = logit[window]
        self.channels = torch.from_numpy(np.concatenate([z, difference, distance], -1)).permute(2, 0, 1)[None]
        self.truth = torch.from_numpy(truth[window].astype(np.float32))[None, None]


class Photo:
    """A photo's boxes, SAM's whole mask and the ground-truth union."""

    def __init__(self, sam, image, embedding):
        boxes = image.boxes()
        logits, _ = box_logits(sam, embedding, boxes)
        rgb = load_rgb(image.path)
        self.truth = image.union_mask()
        self.sam = (logits > 0).any(0)
        self.logits, self.rgb, self.box_array = logits, rgb, boxes
        size = self.truth.shape
        self.boxes = []
        for logit, box in zip(logits, boxes, strict=True):
            window = box_window(box, size)
            if window[0].stop > window[0].start and window[1].stop > window[1].start:
                self.boxes.append(Box(logit, rgb, window, self.truth))

    def iou(self, decide) -> float:
        """IoU of the union when ``decide(box) -> (h, w) bool`` replaces SAM inside each box (SAM outside)."""
        pred = np.zeros_like(self.truth)
        inside = np.zeros_like(self.truth)
        for box in self.boxes:
            pred[box.window] |= decide(box)
            inside[box.window] = True
        return union_iou(pred | (self.sam & ~inside), self.truth)


class Refiner(torch.nn.Module):
    def __init__(self, width: int, linear: np.ndarray):
        super().__init__()
        self.linear = torch.tensor(linear, dtype=torch.float32)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(5, width, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(width, width, 3, padding=2, dilation=2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(width, width, 3, padding=4, dilation=4),
            torch.nn.ReLU(),
            torch.nn.Conv2d(width, 1, 1),
        )
        torch.nn.init.zeros_(self.body[-1].weight)
        torch.nn.init.zeros_(self.body[-1].bias)

    def forward(self, channels: torch.Tensor) -> torch.Tensor:
        z, distance = channels[:, 0:1], channels[:, 4:5]
        head = self.linear[0] * z + self.linear[1] * distance + self.linear[2]
        return head + self.body(channels)


def photos_of(sam, cache: EmbeddingCache, data: Path, split: str) -> list[Photo]:
    images = [im for im in load_split(data, split).images if not im.is_background]
    embeddings = cache.embed([im.path for im in images], progress=False)
    with torch.no_grad():  # not inference mode: the channels feed a trained network
        return [Photo(sam, im, emb) for im, emb in zip(images, embeddings, strict=True)]


def mean_iou(photos: list[Photo], model: Refiner | None) -> float:
    if model is None:
        return float(np.mean([p.iou(lambda b: b.raw_logit > 0) for p in photos]))
    with torch.no_grad():
        return float(np.mean([p.iou(lambda b: (model(b.channels)[0, 0] > 0).numpy()) for p in photos]))


def round_scores(sam, cache, fold: Path, args) -> dict:
    train, val, test = (photos_of(sam, cache, fold, s) for s in ("train", "val", "test"))
    # Every box, small ones too: the colour head as first shipped (its min_box_fraction 0).
    pixels = [training_pixels(p.logits, p.rgb, p.box_array, p.truth, min_box_fraction=0.0) for p in train]
    x, y = np.concatenate([x for x, _ in pixels]), np.concatenate([y for _, y in pixels])
    head = fit_colour_head(x, y, min_box_fraction=0.0)
    torch.manual_seed(0)
    model = Refiner(args.width, np.array(head.weights))
    scores = {"plain": mean_iou(test, None), "colour head": mean_iou(test, model)}
    best_val, best_step, best_test = mean_iou(val, model), 0, scores["colour head"]
    optimiser = torch.optim.Adam(model.body.parameters(), lr=args.lr, weight_decay=1e-4)
    boxes = [b for p in train for b in p.boxes]
    curve = []
    for step in range(1, args.steps + 1):
        optimiser.zero_grad()
        loss = sum(
            torch.nn.functional.binary_cross_entropy_with_logits(model(b.channels), b.truth, reduction="sum")
            for b in boxes
        ) / sum(b.truth.numel() for b in boxes)
        loss.backward()
        optimiser.step()
        if step % args.every == 0:
            val_iou, test_iou = mean_iou(val, model), mean_iou(test, model)
            curve.append([step, round(float(loss), 5), round(val_iou, 4), round(test_iou, 4)])
            if val_iou > best_val:
                best_val, best_step, best_test = val_iou, step, test_iou
    scores["refiner, steps picked on val"] = best_test
    scores["picked step"] = best_step
    scores["curve (step, loss, val, test)"] = curve
    return scores


def main() -> None:
    parser = probe_parser()
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--every", type=int, default=20)
    args = parser.parse_args()
    rounds = score_rounds(
        args,
        lambda sam, cache, fold: round_scores(sam, cache, fold, args),
        shown=lambda scores: {k: v for k, v in scores.items() if "curve" not in k},
    )
    summary = {}
    for model in next(iter(rounds.values())):
        for key in ("plain", "colour head", "refiner, steps picked on val"):
            values = np.array([r[model][key] for r in rounds.values()])
            head = np.array([r[model]["colour head"] for r in rounds.values()])
            mean, std = mean_std(values)
            gain, gain_std = mean_std(values - head)
            summary[f"{model}: {key}"] = {
                "mean": round(mean, 4),
                "std": round(std, 4),
                "gain_over_colour_head": round(gain, 4),
                "gain_std": round(gain_std, 4),
                "rounds_better_than_colour_head": int((values > head + 1e-9).sum()),
            }
    for key, value in summary.items():
        print(key, value)
    settings = {k: getattr(args, k) for k in ("width", "lr", "steps", "every")}
    args.out.write_text(json.dumps({"summary": summary, "settings": settings, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
