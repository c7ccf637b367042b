"""The colour head with PatchCore's anomaly map as a further per-pixel feature (an experiment).

    OMP_NUM_THREADS=1 PYTHONPATH=.:bench .venv/bin/python bench/experiments/sam_anomaly_feature/probe.py \
        --runs W/runs/VARIANT/hazelnut_toy --good ../shared/data/hazelnut_toy/train/good \
        [--anomaly-size 256] --out bench/experiments/sam_anomaly_feature/NAME.json

The shipped colour head (``segmentation.colour_head``; ``sam_colour_head/probe.py``'s ``linear``)
decides each in-box pixel from SAM's logit and the pixel's colour distance to the box's border.
PatchCore (``anomaly``), fit on the category's good photos only, scores every pixel by how unlike
good skin its neighbourhood looks, which neither feature says. Here its map (``anomaly.PatchCore``
at the photo's size, divided by the largest value over the good photos' own maps) joins the
features: ``[z, d, 1]`` (the shipped head, the reference), ``[z, d, a, 1]``, ``[z, d, a - a_b, 1]``
(``a_b``: the map's median on the box's border, as ``d`` is taken against the border colour) and
``[z, a, 1]`` (no colour). Fit on each round's train photos, kept only where it raises the round's
val IoU, scored on its test photos (union IoU, mean over images), for the untrained and the round's
fine-tuned decoder, as ``sam_colour_head/probe.py`` does. The good photos never include a defect
photo, so no test photo is seen by PatchCore.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import yaml
from experiments.probe_rounds import paired, probe_parser, score_rounds
from experiments.sam_colour_head.probe import box_colour_difference, fit_rows
from sam_headroom import union_iou

from anomaly.backbones import load_backbone
from anomaly.patchcore import PatchCore
from segmentation.data import SegmentationImage, load_split
from segmentation.embeddings import EmbeddingCache, load_rgb
from segmentation.tta import view_logits
from segmentation.views import View

FEATURES = ("colour (shipped head)", "colour + anomaly", "colour + anomaly over border", "anomaly, no colour")


class AnomalyMaps:
    """PatchCore fit on good photos; maps of other photos at their own size, cached by content."""

    def __init__(self, good: Path, size: int):
        config = yaml.safe_load(Path("configs/anomaly/patchcore.yaml").read_text())
        extractor = load_backbone(config["backbone"], pretrained=True, download=False)
        self.model = PatchCore(extractor, image_size=size, seed=config["seed"])
        photos = [load_rgb(p) for p in sorted(good.glob("*.*"))]
        self.model.fit(photos, count=len(photos), progress=False)
        self.scale = max(float(p.anomaly_map.max()) for p in self.model.predict(photos))
        self.maps: dict[str, np.ndarray] = {}

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        key = hashlib.sha256(rgb.tobytes()).hexdigest()
        if key not in self.maps:
            self.maps[key] = self.model.predict([rgb])[0].anomaly_map / self.scale
        return self.maps[key]


def features(logit: np.ndarray, distance: np.ndarray, anomaly: np.ndarray, kind: str) -> np.ndarray:
    z, d, one = np.clip(logit, -20, 20) / 10, np.linalg.norm(distance, axis=-1) / 20, np.ones_like(logit)
    border = np.median(np.concatenate([anomaly[0], anomaly[-1], anomaly[:, 0], anomaly[:, -1]]))
    cols = {
        "colour (shipped head)": [z, d, one],
        "colour + anomaly": [z, d, anomaly, one],
        "colour + anomaly over border": [z, d, anomaly - border, one],
        "anomaly, no colour": [z, anomaly, one],
    }[kind]
    return np.stack(cols, -1).astype(np.float32)


class Sample:
    """One photo: its ground-truth union, SAM's mask, and per box the in-box logit, colour and anomaly."""

    def __init__(self, image: SegmentationImage, logits: np.ndarray, boxes: np.ndarray, maps: AnomalyMaps):
        rgb = load_rgb(image.path)
        anomaly = maps(rgb)
        self.gt = image.union_mask()
        self.sam = (logits > 0).any(0)
        self.boxes = []
        for box, logit in zip(boxes, logits, strict=True):
            distance, window = box_colour_difference(rgb, box)
            self.boxes.append((window, logit[window], distance, anomaly[window]))

    def rows(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        x = [features(z, d, a, kind) for _, z, d, a in self.boxes]
        y = [self.gt[w].reshape(-1) for w, *_ in self.boxes]
        return np.concatenate([f.reshape(-1, f.shape[-1]) for f in x]), np.concatenate(y)

    def iou(self, weights: np.ndarray | None, kind: str) -> float:
        if weights is None:
            return union_iou(self.sam, self.gt)
        out, inside = np.zeros_like(self.gt), np.zeros_like(self.gt)
        for window, z, d, a in self.boxes:
            out[window] |= features(z, d, a, kind) @ weights > 0
            inside[window] = True
        return union_iou(out | (self.sam & ~inside), self.gt)


def split_samples(sam, cache: EmbeddingCache, data: Path, split: str, maps: AnomalyMaps) -> list[Sample]:
    images = [im for im in load_split(data, split).images if not im.is_background]
    embeddings = cache.embed([im.path for im in images], views=[View()] * len(images), progress=False)
    samples = []
    for image, embedding in zip(images, embeddings, strict=True):
        boxes = image.boxes().astype(float)
        logits = view_logits(sam, embedding, boxes, "identity", (image.height, image.width))[0]
        samples.append(Sample(image, logits, boxes, maps))
    return samples


def round_scores(sam, cache: EmbeddingCache, fold: Path, maps: AnomalyMaps) -> dict:
    train, val, test = (split_samples(sam, cache, fold, s, maps) for s in ("train", "val", "test"))
    scores: dict = {"plain": float(np.mean([s.iou(None, "") for s in test]))}
    val_plain = np.mean([s.iou(None, "") for s in val])
    for kind in FEATURES:
        x, y = zip(*(s.rows(kind) for s in train), strict=True)
        weights = fit_rows(np.concatenate(x), np.concatenate(y).astype(np.float32))
        head = float(np.mean([s.iou(weights, kind) for s in test]))
        kept = bool(np.mean([s.iou(weights, kind) for s in val]) > val_plain)
        scores[f"{kind}, gated on val"] = head if kept else scores["plain"]
        scores[f"{kind}, ungated"] = head
        scores[f"{kind} weights"] = [round(float(w), 4) for w in weights]
    return scores


def main() -> None:
    parser = probe_parser()
    parser.add_argument("--good", type=Path, required=True, help="good photos (PatchCore fit)")
    parser.add_argument("--anomaly-size", type=int, default=256, help="PatchCore's input side (default 256)")
    args = parser.parse_args()
    maps = AnomalyMaps(args.good, args.anomaly_size)
    rounds = score_rounds(
        args,
        lambda sam, cache, fold: round_scores(sam, cache, fold, maps),
        lambda scores: {k: round(v, 4) for k, v in scores.items() if "gated on val" in k or k == "plain"},
    )
    summary = {}
    for model in next(iter(rounds.values())):
        plain = [r[model]["plain"] for r in rounds.values()]
        for key in next(iter(rounds.values()))[model]:
            if "weights" not in key:
                summary[f"{model}: {key}"] = paired([r[model][key] for r in rounds.values()], plain)
    for key, value in summary.items():
        print(key, value)
    args.out.write_text(
        json.dumps({"summary": summary, "rounds": rounds, "anomaly_size": args.anomaly_size}, indent=1)
    )


if __name__ == "__main__":
    main()
