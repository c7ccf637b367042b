"""Class-balanced repeat-factor sampling (LVIS, Gupta et al. 2019) for rare defect classes.

Each class ``c`` gets a repeat factor from the fraction ``f(c)`` of training
images that contain it, and each image the largest factor of its classes::

    r(c) = max(1, sqrt(t / f(c)))          r(image) = max(r(c) for c in image), 1 for a background

so classes in fewer than a fraction ``t`` of the images are oversampled, the
rarer the more (``t`` is the ``repeat_factor`` config key; 0 = off). A
fractional ``r`` becomes an integer number of copies by stochastic rounding,
``floor(r) + (u < r - floor(r))``, ``u`` uniform, seeded with the run's seed.

How it reaches ultralytics: a repeated train list. :func:`write_repeated_train_list`
writes ``train_repeat.txt`` (each image path on ``copies`` lines) and a
``data.yaml`` whose ``train:`` is that list (``val``/``test`` unchanged) into
the run folder, and the run trains on it. ultralytics reads a ``.txt`` split as
a list of images and keeps repeated lines (``BaseDataset.get_img_files`` sorts
without removing duplicates; ``YOLODataset`` labels are a list, one entry per
line), so a repeated image is simply seen ``copies`` times per epoch, and mosaic
draws its extra tiles from the repeated list too. Why this route rather than a
sampler or a dataset hook:

- ultralytics' epochs have a fixed number of batches (``len(train_loader)`` is
  read once; ``InfiniteDataLoader`` reuses its batch sampler), so detectron2's
  ``RepeatFactorTrainingSampler``, which re-rounds every epoch and so changes
  the epoch's length, cannot be dropped in without replacing the trainer's
  ``get_dataloader`` and its distributed-sampler logic;
- the list is plain ultralytics data: nothing is patched, and the same run
  repeats with stock ``yolo train data=<run>/data.yaml``.

The cost: the rounding is drawn once per run, not per epoch (an image with
``r = 1.4`` is seen once or twice every epoch, never alternating), and the
label cache ``labels/train.cache`` of the data set is rescanned (its hash
covers the file list) whenever a run switches between the plain and the
repeated list.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.config import yaml_text
from common.errors import UserError
from common.io import atomic_write
from detection.data import data_names, dataset_root, label_classes, read_data_yaml, split_images


def category_repeat_factors(image_classes: Sequence[Collection[int]], threshold: float) -> dict[int, float]:
    """``r(c) = max(1, sqrt(t / f(c)))`` for every class present in ``image_classes``.

    Args:
        image_classes: the class ids of each training image (repeats within an image count once;
            an empty collection is a background image, which counts in the denominator).
        threshold: ``t``; classes in a smaller fraction of the images than ``t`` are oversampled.

    Returns:
        class id -> repeat factor (>= 1).

    >>> category_repeat_factors([{0}, {0}, {0}, {1}], threshold=0.5)  # f(0) = 0.75, f(1) = 0.25
    {0: 1.0, 1: 1.4142135623730951}
    """
    if threshold < 0:
        raise ValueError(f"repeat-factor threshold must be >= 0, got {threshold}")
    n_images = len(image_classes)
    counts: dict[int, int] = {}
    for classes in image_classes:
        for c in set(classes):
            counts[c] = counts.get(c, 0) + 1
    return {c: max(1.0, math.sqrt(threshold / (n / n_images))) for c, n in sorted(counts.items())}


def image_repeat_factors(
    image_classes: Sequence[Collection[int]], class_factors: Mapping[int, float]
) -> np.ndarray:
    """``(N,)`` float: each image's largest class factor, 1.0 for a background image.

    >>> image_repeat_factors([{0, 1}, {0}, set()], {0: 1.0, 1: 2.0}).tolist()
    [2.0, 1.0, 1.0]
    """
    return np.array([max((class_factors[c] for c in classes), default=1.0) for classes in image_classes])


def repeat_counts(factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``(N,)`` int copies per image, stochastically rounded: ``floor(r)``, +1 with probability ``r % 1``.

    The expected number of copies of each image is exactly its factor.
    """
    factors = np.asarray(factors, dtype=float)
    whole = np.floor(factors)
    return (whole + (rng.random(len(factors)) < factors - whole)).astype(int)


@dataclass(frozen=True)
class RepeatedTrainList:
    """What :func:`write_repeated_train_list` wrote and why.

    Attributes:
        data: the run's ``data.yaml`` (``train:`` = :attr:`list_file`; other splits as in the source).
        list_file: ``train_repeat.txt``, one image path per line, repeated.
        threshold: ``t``.
        class_frequency: class name -> fraction of training images containing it.
        class_factor: class name -> ``r(c)``.
        images: training images in the source split.
        lines: lines in the list (images seen per epoch).
    """

    data: Path
    list_file: Path
    threshold: float
    class_frequency: dict[str, float]
    class_factor: dict[str, float]
    images: int
    lines: int

    def describe(self) -> str:
        """One line for the run log."""
        factors = ", ".join(
            f"{name} {self.class_factor[name]:.2f} (in {100 * self.class_frequency[name]:.0f}%)"
            for name in self.class_factor
        )
        return (
            f"repeat-factor sampling t={self.threshold:g}: {self.images} train images -> "
            f"{self.lines} per epoch; class factors {factors or 'none (no labelled images)'}"
        )


def write_repeated_train_list(
    data_yaml: str | Path, out_dir: str | Path, threshold: float, *, seed: int = 0
) -> RepeatedTrainList:
    """Writes ``train_repeat.txt``, ``repeat_factors.json`` and a ``data.yaml`` that trains on the list.

    Args:
        data_yaml: the source data set (``train:`` a folder, ``.txt`` list or a list of them).
        out_dir: the run folder (created).
        threshold: ``t`` > 0.
        seed: seeds the stochastic rounding.

    Raises:
        UserError: ``threshold`` <= 0, or a split or label file that cannot be read.
    """
    if not threshold > 0:
        raise UserError(f"repeat_factor must be > 0 to oversample (0 = off), got {threshold}")
    data_yaml, out_dir = Path(data_yaml), Path(out_dir)
    names = data_names(data_yaml)
    images = split_images(data_yaml, "train")
    image_classes = [set(label_classes(image)) for image in images]
    unknown = sorted({c for classes in image_classes for c in classes} - set(range(len(names))))
    if unknown:
        raise UserError(f"train labels of {data_yaml} use class ids {unknown} beyond its {len(names)} names")
    class_factors = category_repeat_factors(image_classes, threshold)
    counts = repeat_counts(image_repeat_factors(image_classes, class_factors), np.random.default_rng(seed))

    out_dir.mkdir(parents=True, exist_ok=True)
    list_file = out_dir / "train_repeat.txt"
    atomic_write(list_file, "".join(f"{image}\n" * int(n) for image, n in zip(images, counts, strict=True)))
    data = dict(read_data_yaml(data_yaml))
    data.update(path=str(dataset_root(data_yaml)), train=str(list_file.absolute()))
    run_data = out_dir / "data.yaml"
    header = f"# {data_yaml}, train split oversampled by class (detection.sampling, t={threshold:g})\n"
    atomic_write(run_data, header + yaml_text(data))

    n = len(images)
    frequency = {names[c]: sum(c in classes for classes in image_classes) / n for c in sorted(class_factors)}
    result = RepeatedTrainList(
        data=run_data,
        list_file=list_file,
        threshold=float(threshold),
        class_frequency=frequency,
        class_factor={names[c]: r for c, r in class_factors.items()},
        images=n,
        lines=int(counts.sum()),
    )
    record = {
        "source": str(data_yaml),
        "threshold": result.threshold,
        "seed": seed,
        "class_frequency": result.class_frequency,
        "class_factor": result.class_factor,
        "copies": {str(image): int(k) for image, k in zip(images, counts, strict=True)},
    }
    atomic_write(out_dir / "repeat_factors.json", json.dumps(record, indent=1) + "\n")
    return result
