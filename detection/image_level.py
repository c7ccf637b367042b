"""Image-level figures from box detections: each image's call, defect-type accuracy, anomaly AUROC.

What classification and anomaly-detection baselines report, derived from a
detector's boxes:

- an image's **call** is the class of its top box with score >= ``conf``, ``good``
  if there is none (:func:`image_prediction`); its **anomaly score** is the top
  box score whatever ``conf`` (0 without boxes), so AUROC does not depend on the
  threshold;
- its **ground truth** is the class of its largest instance by box area (MVTec images hold
  one defect type), ``good`` without instances (:func:`image_labels` from COCO,
  :func:`yolo_image_labels` from YOLO labels). The box, not the mask: YOLO box labels carry
  nothing else, and the converters' boxes are the same in both formats (a polygon label's box is
  the mask's), so the same data set gets the same labels whichever file they are read from;
- :func:`image_level_report`: defect-type accuracy over good + each defect type,
  its confusion matrix, and anomaly AUROC;
- :func:`tuned_conf`: the ``conf`` that maximises that accuracy on a split the
  test never sees (the val split), instead of a fixed 0.25; :func:`conf_flags_all` and
  :func:`conf_ties_warning`: when that pick is no threshold to use.

Pure functions: numpy and mappings in, numbers out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.metrics import auroc
from detection.detections import ImageDetections

#: The label of an image without a defect.
GOOD = "good"

#: What a ``--conf-from`` pick warned of by :func:`conf_flags_all` asks of the user: the pick is used
#: in place of ``--conf`` whenever ``--conf-from`` is given, so ``--conf`` alone would change nothing.
PICK_WARNING_ADVICE = (
    "the pick is no threshold to use: leave out --conf-from (its pick replaces --conf) and give --conf "
    "yourself, or pick it on another split with both good and defective images"
)


def check_class_names(
    names: Sequence[str], source: str, *, rename_with: str | None = "the converters' --names-template"
) -> None:
    """Refuses a class named ``good``: the label of an image without a defect box.

    A data set converted with ``--names-template good`` trained a detector whose every defect box
    called its image ``good``: defect-type accuracy 1.000 and AUROC nan whatever the model did.

    Args:
        names: class names in id order.
        source: what holds them, as the message names it (``data file x/data.yaml``).
        rename_with: where the message sends the user to rename it; None when ``source`` is that place
            (``--names``).

    Raises:
        UserError: one line naming ``source``.
    """
    if GOOD in names:
        raise UserError(
            f"{source} has a class named '{GOOD}', the call of an image without defects, so no image could "
            "be told defective: name the class otherwise" + (f" ({rename_with})" if rename_with else "")
        )


def confusion_matrix(
    true: Sequence[str],
    predicted: Sequence[str],
    labels: Sequence[str],
    predicted_labels: Sequence[str] | None = None,
) -> np.ndarray:
    """``(L, P)`` int counts, rows = true label in ``labels`` order, columns = predicted label in
    ``predicted_labels`` order (None: ``labels``; more where a label can be predicted but is never a
    truth, as the inspection cascade's ``anomaly``).

    >>> confusion_matrix(["good", "cut", "cut"], ["good", "good", "cut"], ["good", "cut"]).tolist()
    [[1, 0], [1, 1]]
    """
    columns = labels if predicted_labels is None else predicted_labels
    rows, index = {label: i for i, label in enumerate(labels)}, {label: i for i, label in enumerate(columns)}
    matrix = np.zeros((len(labels), len(columns)), dtype=int)
    for t, p in zip(true, predicted, strict=True):
        matrix[rows[t], index[p]] += 1
    return matrix


def image_prediction(
    detections: ImageDetections | None, names: Sequence[str], conf: float
) -> tuple[str, float]:
    """``(predicted label, anomaly score)`` of one image: the top box's class if its score >= ``conf``.

    The anomaly score is the top box score whatever ``conf`` (0 without boxes),
    so AUROC does not depend on the threshold.
    """
    if detections is None or len(detections.scores) == 0:
        return GOOD, 0.0
    top = int(np.argmax(detections.scores))
    score = float(detections.scores[top])
    return (names[int(detections.classes[top])] if score >= conf else GOOD), score


def image_labels(coco: Mapping) -> dict[str, str]:
    """Ground-truth label per image file name (basename): the class of its instance of largest box
    (``bbox`` width x height, not ``area``: as :func:`yolo_image_labels`), ``good`` if none; equal
    boxes, the first listed."""
    categories = {c["id"]: c["name"] for c in coco["categories"]}
    largest: dict[int, tuple[float, str]] = {}
    for ann in coco["annotations"]:
        area = float(ann["bbox"][2] * ann["bbox"][3])
        if ann["image_id"] not in largest or area > largest[ann["image_id"]][0]:
            largest[ann["image_id"]] = (area, categories[ann["category_id"]])
    return {
        Path(image["file_name"]).name: largest.get(image["id"], (0.0, GOOD))[1] for image in coco["images"]
    }


def yolo_image_labels(labels: Sequence[Mapping], names: Sequence[str]) -> dict[str, str]:
    """Ground-truth label per image file name from ultralytics' label records, as :func:`image_labels`:
    the class of the largest box (a polygon label's box is its polygon's extent, the mask's box).

    Args:
        labels: ``dataset.labels`` of an ultralytics ``YOLODataset``: per image ``im_file``,
            ``cls`` ``(N, 1)`` and ``bboxes`` ``(N, 4)`` normalised xywh.
        names: class names in id order.
    """
    found = {}
    for label in labels:
        classes = np.asarray(label["cls"]).reshape(-1).astype(int)
        boxes = np.asarray(label["bboxes"]).reshape(-1, 4)
        largest = names[classes[int(np.argmax(boxes[:, 2] * boxes[:, 3]))]] if len(classes) else GOOD
        found[Path(label["im_file"]).name] = largest
    return found


@dataclass
class ImageLevelReport:
    """Image-level figures. ``matrix`` rows are true labels, columns predicted, both in ``labels`` order."""

    labels: list[str]
    matrix: list[list[int]]
    accuracy: float
    balanced_accuracy: float
    per_label_accuracy: dict[str, float]
    auroc: float
    conf: float
    n_images: int


def image_level_report(
    true: Mapping[str, str], detections: Mapping[str, ImageDetections], names: Sequence[str], conf: float
) -> ImageLevelReport:
    """Defect-type accuracy, confusion matrix and anomaly AUROC over the images in ``true``.

    Args:
        true: image file name -> ground-truth label (``good`` or a class name).
        detections: image file name -> its boxes; an image missing here has none.
        names: class names in id order.
        conf: box score from which an image is called defective.
    """
    files = sorted(true)
    calls = [image_prediction(detections.get(f), names, conf) for f in files]
    predicted, scores = [call for call, _ in calls], [score for _, score in calls]
    truth = [true[f] for f in files]
    labels = [GOOD, *names]
    matrix = confusion_matrix(truth, predicted, labels)
    rows = matrix.sum(axis=1)
    per_label = {label: float(matrix[i, i] / rows[i]) for i, label in enumerate(labels) if rows[i]}
    return ImageLevelReport(
        labels=labels,
        matrix=matrix.tolist(),
        accuracy=float(np.trace(matrix) / max(len(files), 1)),
        balanced_accuracy=float(np.mean(list(per_label.values()))) if per_label else float("nan"),
        per_label_accuracy=per_label,
        auroc=auroc(scores, [t != GOOD for t in truth]),
        conf=conf,
        n_images=len(files),
    )


def conf_flags_all(
    true: Mapping[str, str], detections: Mapping[str, ImageDetections], names: Sequence[str], conf: float
) -> str | None:
    """A one-line warning when ``conf`` calls every image defective though some are good, or was
    picked on images none of which is good, or none of which is defective; else None.

    :func:`tuned_conf` may pick such a threshold when the detector's top scores on the good images lie
    above the defect images' (its accuracy is then the share of defect images): the figures at it
    say little, and the inspection cascade would run SAM on every box down to it. Without a good
    image nothing penalises a low threshold, so the pick tends to the lowest candidate: every image called
    defective. Without a defect image nothing penalises a high one: the pick lies above every box the
    detector gives the good images, and says nothing of the defects it then misses.

    >>> one = lambda s: ImageDetections(np.zeros((1, 4)), np.array([s]), np.array([0]))
    >>> conf_flags_all({"a": "good", "b": "cut"}, {"a": one(0.6), "b": one(0.8)}, ["cut"], 0.5)
    'conf 0.5 calls all 2 images defective, the 1 good one too: the scores do not tell them apart there'
    >>> conf_flags_all({"a": "good", "b": "cut"}, {"a": one(0.6), "b": one(0.8)}, ["cut"], 0.7) is None
    True
    >>> conf_flags_all({"b": "cut"}, {"b": one(0.8)}, ["cut"], 0.0)[:48]
    'conf 0 was picked on 1 image, none of them good:'
    >>> conf_flags_all({"a": "good"}, {"a": one(0.6)}, ["cut"], 0.8)[:54]
    'conf 0.8 was picked on 1 image, none of them defective'
    """
    goods = sum(label == "good" for label in true.values())
    images = "1 image" if len(true) == 1 else f"{len(true)} images"
    if true and not goods:
        return (
            f"conf {conf:.6g} was picked on {images}, none of them good: nothing there tells it how many "
            "good images it calls defective"
        )
    if true and goods == len(true):
        return (
            f"conf {conf:.6g} was picked on {images}, none of them defective: nothing there tells it how "
            "many defects it misses"
        )
    calls = [image_prediction(detections.get(f), names, conf)[0] for f in true]
    if not goods or any(call == "good" for call in calls):
        return None
    ones = "one" if goods == 1 else "ones"
    return (
        f"conf {conf:.6g} calls all {len(calls)} images defective, the {goods} good {ones} too: "
        "the scores do not tell them apart there"
    )


def predict_hint(conf: float, command: str, flags: str = "") -> str:
    """What a threshold picked by an evaluation asks of the command that applies it to new photos:
    ``--conf`` and ``flags`` (those away from its defaults that find the same boxes, ``" --tile 640"``).
    Callers give it for no pick warned of, nor one on train (:func:`picked_on_train_warning`): neither is
    advice for new photos.

    >>> predict_hint(0.04861, "detection.predict", " --imgsz 320")
    'pass --conf 0.04861 --imgsz 320 to detection.predict'
    """
    return f"pass --conf {conf:.6g}{flags} to {command}"


def picked_on_train_warning(conf_from: str | None) -> str | None:
    """The ``warning:`` line for ``--conf-from train``, else None.

    The detector was fit to its train photos: its scores there are not those of photos it has not seen,
    so a threshold picked there need not suit them (the converters' val split is for this).

    >>> picked_on_train_warning("val") is None
    True
    """
    if conf_from != "train":
        return None
    return (
        "warning: --conf-from train picks the threshold on the photos the detector was trained on, whose "
        "scores are not those of photos it has not seen: pick it on val"
    )


def tuned_conf(
    true: Mapping[str, str],
    detections: Mapping[str, ImageDetections],
    names: Sequence[str],
    default: float = 0.25,
) -> tuple[float, float]:
    """The box score threshold that maximises defect-type accuracy on these images (pick it on val).

    An image's call changes only where ``conf`` crosses its top box score, so the
    candidates are the midpoints between neighbouring distinct top scores, with 0
    below the lowest and 1 above the highest (just above it when it is 1): each as
    far as it can be from the scores it separates, for images not yet seen
    (:func:`threshold_accuracies`). Ties go to the candidate nearest ``default``: where
    all of them tie that is no pick (:func:`conf_ties_warning` says so); without a box on
    any image every threshold ties, and ``default`` is kept.

    Args:
        true: image file name -> ground-truth label, of the split the threshold is picked on.
        detections: image file name -> its boxes; an image missing here has none.
        names: class names in id order.
        default: the threshold preferred among equally accurate ones.

    Returns:
        ``(conf, accuracy at conf on these images)``.

    >>> names = ["cut"]
    >>> one = lambda s: ImageDetections(np.zeros((1, 4)), np.array([s]), np.array([0]))
    >>> conf, accuracy = tuned_conf({"a": "good", "b": "cut"}, {"a": one(0.6), "b": one(0.8)}, names)
    >>> round(conf, 6), accuracy
    (0.7, 1.0)
    """
    accuracies = threshold_accuracies(true, detections, names)
    if not accuracies:
        return float(default), _accuracy(true, detections, names, default)
    best = max(accuracies, key=lambda c: (accuracies[c], -abs(c - default)))
    return float(best), accuracies[best]


def threshold_accuracies(
    true: Mapping[str, str], detections: Mapping[str, ImageDetections], names: Sequence[str]
) -> dict[float, float]:
    """Each threshold :func:`tuned_conf` picks among -> its defect-type accuracy on these images; empty
    without a box on any of them (no threshold changes a call).

    >>> one = lambda s: ImageDetections(np.zeros((1, 4)), np.array([s]), np.array([0]))
    >>> accuracies = threshold_accuracies({"a": "good", "b": "cut"}, {"b": one(0.8)}, ["cut"])
    >>> {round(conf, 6): accuracy for conf, accuracy in accuracies.items()}
    {0.4: 1.0, 0.9: 0.5}
    """
    tops = sorted({image_prediction(detections.get(f), names, 0.0)[1] for f in true} - {0.0})
    if not tops:
        return {}
    bounds = [0.0, *tops]  # the first candidate, half the lowest top score, lets every top box count
    candidates = [(a + b) / 2 for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    candidates.append(max((tops[-1] + 1) / 2, float(np.nextafter(tops[-1], np.inf))))  # no top box counts
    return {float(c): _accuracy(true, detections, names, c) for c in candidates}


def _accuracy(
    true: Mapping[str, str], detections: Mapping[str, ImageDetections], names: Sequence[str], conf: float
) -> float:
    """The share of ``true``'s images called right at ``conf``; 0 without images."""
    files = sorted(true)
    calls = [image_prediction(detections.get(f), names, conf)[0] for f in files]
    return float(np.mean([c == true[f] for c, f in zip(calls, files, strict=True)])) if files else 0.0


#: How :func:`conf_ties_warning` begins: a recorded pick warning with these words is no pick.
TIES_WORDS = "every threshold gives the same defect-type accuracy"


def conf_ties_warning(
    true: Mapping[str, str],
    detections: Mapping[str, ImageDetections],
    names: Sequence[str],
    conf: float,
    default: float,
) -> str | None:
    """A one-line warning when every threshold :func:`tuned_conf` picks among gives these images the same
    defect-type accuracy, though some image has a box: ``conf`` is then no choice, only the candidate
    nearest ``default`` (``--conf``); else None.

    Good images without a box and defect images boxed with another defect type, say: a threshold below
    the boxes calls the defects the wrong type, one above them calls them good, and both are as wrong.

    >>> one = lambda s, c: ImageDetections(np.zeros((1, 4)), np.array([s]), np.array([c]))
    >>> conf_ties_warning({"a": "good", "b": "cut"}, {"b": one(0.8, 1)}, ["cut", "hole"], 0.4, 0.25)[:60]
    'every threshold gives the same defect-type accuracy (0.500):'
    >>> conf_ties_warning({"a": "good", "b": "cut"}, {"b": one(0.8, 0)}, ["cut", "hole"], 0.4, 0.25) is None
    True
    """
    accuracies = set(threshold_accuracies(true, detections, names).values())
    if len(accuracies) != 1:  # none: no box at all, which callers warn of as nothing picked
        return None
    return (
        f"{TIES_WORDS} ({accuracies.pop():.3f}): conf {conf:.6g} is "
        f"no pick, only the one nearest --conf {default:g}"
    )
