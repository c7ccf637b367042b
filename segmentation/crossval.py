"""Runs K-fold cross-validation (:mod:`segmentation.folds`): fine-tune per round, score both models.

Per round: the round's data folder is written, the decoder fine-tuned on its
train images (epoch kept on its val images) with :func:`segmentation.train.train`,
and the untuned and tuned models scored on its test images with
:func:`segmentation.evaluate.evaluate_model` (same boxes, same crop rule). The
summary gives each metric's mean +- std over the rounds, the per-image IoU
changes (every defect image is a test image once) and the per-instance IoU by
size bucket.

A round whose training finished leaves ``round.json`` in its run folder: the fingerprint of
what it trained on (the training settings, the fold's train/val/test keys, its train and val
annotations). With ``resume`` a round whose record matches is scored again from its ``decoder.pt``
instead of trained again, so a run stopped in round 3 of 5 goes on from there (scoring is cheap: the
embeddings are cached); one whose data changed since trains again, with a note saying what changed.
A run of another K, fold seed or training settings is not gone on from (``folds_plan.json`` records
them): none of its rounds would match, and its extra ``fold<i>`` folders would lie beside the new
run's summary.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from common.cli import signals_held
from common.io import atomic_write, embeddings_root, json_float, json_text, sha256_file
from common.metrics import mean_std
from common.tables import fmt
from segmentation.colour_head import ColourHead
from segmentation.colour_prompt import ColourPrompt
from segmentation.crops import CropRule
from segmentation.data import SegmentationSplit, load_split
from segmentation.evaluate import ModelEvaluation, crop_views, embed_for_models, evaluate_model, flip_views
from segmentation.finetuned import load_colour_head, load_colour_prompt, load_finetuned
from segmentation.folds import (
    Fold,
    PooledImage,
    check_no_live_folds_run,
    check_resumable,
    deal_folds,
    drop_earlier_folds_run,
    mark_folds_run,
    put_back_folds_run,
    read_plan,
    recorded_checkpoint,
    set_folds_run_aside,
    show_killed_asides,
    write_fold,
    write_plan,
)
from segmentation.models import load_sam
from segmentation.run_setup import augment_line, grey_data_warning
from segmentation.train import crop_rule, train

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from segment_anything.modeling import Sam

#: Summary fields scored per round, as (report name, ``Summary`` field).
METRICS: tuple[tuple[str, str], ...] = (
    ("IoU", "iou"),
    ("Dice", "dice"),
    ("boundary IoU", "boundary_iou"),
    ("instance IoU", "instance_iou"),
    ("mask AP", "mask_ap"),
)
#: COCO's area thresholds (32^2, 96^2 px) are for images of ~640 px long side; scaled to each image.
COCO_SIDE = 640.0
BUCKETS = ("small", "medium", "large")
#: A round's record of its finished training, in its run folder.
ROUND_FILE = "round.json"
#: The run's summary (:func:`write_folds`), in its work folder.
SUMMARY_FILES = ("folds.json", "folds.md", "folds.png")


def size_bucket(area: float, image_size: tuple[int, int]) -> str:
    """COCO's small / medium / large for an instance of ``area`` px on an ``(H, W)`` image.

    The thresholds 32^2 and 96^2 are scaled by ``(max(H, W) / 640)^2``.

    >>> size_bucket(500.0, (512, 512)), size_bucket(500.0, (1024, 1024))
    ('small', 'small')
    """
    scale = (max(image_size) / COCO_SIDE) ** 2
    if area < 32**2 * scale:
        return "small"
    return "medium" if area < 96**2 * scale else "large"


def bucket_ious(split: SegmentationSplit, evaluation: ModelEvaluation) -> dict[str, list[float]]:
    """Per-instance IoUs of ``evaluation`` on ``split``, grouped by :func:`size_bucket`.

    By the mask's pixel count, the mask each instance IoU is scored on: :func:`segmentation.data.load_split`
    makes every ``area`` that, whatever the COCO file says. COCOeval's own small / medium / large AP
    reads the file's ``area`` at fixed thresholds; the mask AP here is its range ``all`` alone, so the two
    never have to agree.
    """
    by_id = {image.image_id: image for image in split.images}
    buckets: dict[str, list[float]] = {name: [] for name in BUCKETS}
    for score in evaluation.scores:
        image = by_id[score.image_id]
        for annotation, iou in zip(image.annotations, score.instance_iou, strict=True):
            buckets[size_bucket(float(annotation["area"]), (image.height, image.width))].append(iou)
    return buckets


@dataclass
class RoundResult:
    """One round: the test split and both models' evaluations."""

    index: int
    test: SegmentationSplit
    zero_shot: ModelEvaluation
    tuned: ModelEvaluation
    run_dir: Path
    seconds: dict[str, float] = field(default_factory=dict)


def score_round(
    base,
    tuned,
    test: SegmentationSplit,
    config: dict,
    crops: CropRule | None,
    *,
    tta: bool = False,
    colour_head: ColourHead | None = None,
    colour_prompt: ColourPrompt | None = None,
) -> tuple[ModelEvaluation, ModelEvaluation]:
    """Both models on ``test``, same crops (or test-time flips), each on its own encoder's embeddings.

    ``colour_head``, ``colour_prompt``: the tuned model's (:mod:`segmentation.colour_head`,
    :mod:`segmentation.colour_prompt`), applied to its box prompts; zero-shot SAM gets neither.
    """
    inputs = embed_for_models(
        [base, tuned],
        test,
        crop_views(test, crops) + flip_views(test, tta),
        model=config["model"],
        cache_dir=Path(config["cache_dir"] or embeddings_root()),
    )
    with torch.inference_mode():
        return tuple(
            evaluate_model(
                sam,
                test,
                embeddings,
                name=name,
                progress=False,
                crops=crops,
                view_embeddings=views,
                tta=tta,
                colour_head=head,
                colour_prompt=prompt,
            )
            for (name, sam, head, prompt), (embeddings, views) in zip(
                (("zero-shot", base, None, None), ("fine-tuned", tuned, colour_head, colour_prompt)),
                inputs,
                strict=True,
            )
        )


def load_round_model(run_dir: Path, config: dict) -> tuple[Sam, ColourHead | None]:
    """A round's tuned model and colour head, its ``decoder.pt`` put on the base weights it was tuned on.

    ``config["checkpoint"]`` names that base (None: the official file); without it a decoder tuned on
    the user's own base was refused after its round had trained.
    """
    decoder = run_dir / "decoder.pt"
    tuned, _ = load_finetuned(
        decoder, model=config["model"], device="cpu", base_checkpoint=config["checkpoint"]
    )
    return tuned, load_colour_head(decoder)


def cross_validate(
    data: str | Path,
    k: int,
    config: dict,
    *,
    work: Path,
    seed: int = 0,
    tta: bool = False,
    resume: bool = False,
    finish: Callable[[list[RoundResult]], object] | None = None,
) -> list[RoundResult]:
    """K rounds on ``data`` with the training ``config`` (its ``data``, ``out``, ``name`` are set here).

    Args:
        data: a converted data set (``annotations/instances_*.json``).
        k: folds.
        config: a checked ``segmentation.train`` config.
        work: where the round folders and their runs go (``work/fold<i>``, ``work/runs/fold<i>``).
        seed: the fold seed (independent of the training seed).
        tta: score both models with test-time flips (:mod:`segmentation.tta`).
        resume: keep the rounds an earlier run in ``work`` trained on the same data
            (:func:`finished_round`); the others are trained, a round trained on other data with a note
            saying so (:func:`retrain_reason`). Without it, an earlier run there is set aside (dealt, base
            loaded) until a round's training is recorded (:func:`_folds_run_marked`), before it is scored.
        finish: called with the rounds' results while the run's marker is still in ``work``
            (``evaluate --folds`` writes its summary, :func:`write_folds`), so that the marker covers every
            file the run writes there: removed before, another ``--folds`` run could replace the rounds.

    Raises:
        UserError: bad data or ``k``; with ``resume``, a run in ``work`` of another ``k``, ``seed`` or
            training settings (:func:`segmentation.folds.check_resumable`); all before ``work`` is written.
    """
    show_killed_asides(work)  # a killed run's hidden earlier run, shown before any refusal (cheap)
    # the settings the earlier run's plan records, before write_plan replaces them (recorded_parts)
    recorded = read_plan(work).get("settings") if resume else None
    config = recorded_checkpoint(config, recorded)  # spelt otherwise (from another folder): as recorded
    settings = training_settings(config)
    # another seed or other settings are refused, as segmentation.train --resume refuses another model
    if resume:
        check_resumable(work, k, seed=seed, settings=settings, not_settings=NOT_TRAINING_KEYS)
    check_no_live_folds_run(work)  # another --folds run writing there now: neither removed nor resumed
    pool, categories, folds = deal_folds(data, k, seed=seed)
    announce_rounds(data, pool, config)
    base = load_sam(config["model"], config["checkpoint"], device="cpu", path_option="checkpoint=PATH")
    crops = crop_rule(config)
    with _folds_run_marked(work, resume=resume) as earlier:  # only now: bad data, K or base cost no run
        write_plan(work, k, seed, settings)  # before any round: a resume with another K... is refused
        results = []
        for fold in folds:
            folder = write_fold(data, pool, categories, fold, work / f"fold{fold.index}")
            run_config = round_run_config(config, folder, work=work, index=fold.index)
            run_dir, seconds = _train_round(run_config, fold, k, resume=resume, recorded=recorded)
            drop_earlier_folds_run(earlier)  # round.json recorded: a stop while scoring keeps it (first save)
            results.append(
                evaluate_round(fold, folder, run_dir, seconds, base=base, config=config, crops=crops, tta=tta)
            )
        if finish is not None:
            finish(results)
    return results


@contextlib.contextmanager
def _folds_run_marked(work: Path, *, resume: bool) -> Iterator[list[Path]]:
    """Holds ``work`` for this ``--folds`` run while the block writes there.

    Puts this run's marker there first (:func:`~segmentation.folds.mark_folds_run`), then refuses another
    run writing there now (:func:`~segmentation.folds.check_no_live_folds_run`: one started while the
    base model loaded) and sets an earlier run aside unless ``resume``
    (:func:`~segmentation.folds.set_folds_run_aside`, which leaves the markers); the marker goes however
    the block ends. Yields a list holding the folder the earlier run waits in (empty: none); the block
    empties it before it deletes that run (:func:`~segmentation.folds.drop_earlier_folds_run`: a stop amid
    the deletion puts nothing back). Still there when the block stops, the earlier run is put back
    (:func:`_put_back_on_stop`) and the exception marked (:func:`earlier_run_back`).
    Marked before the check: of two runs started at one instant, each saw no marker when it
    checked and then marked, and both went on; now the later of the two marks sees the other's, so one or
    both are refused (both where each marked before the other checked), and are run again once the other
    has ended.
    """
    marker = mark_folds_run(work)
    earlier: list[Path] = []
    try:
        check_no_live_folds_run(work, own=marker)
        if not resume:
            set_folds_run_aside(work, earlier)  # recorded in earlier before its first move
        yield earlier
    except BaseException as error:
        raise _put_back_on_stop(work, earlier, error)  # noqa: B904  # error itself, as a rule
    finally:
        marker.unlink(missing_ok=True)


def _put_back_on_stop(work: Path, earlier: list[Path], error: BaseException) -> BaseException:
    """Puts the earlier run in ``earlier`` back into ``work`` (:func:`~segmentation.folds.put_back_folds_run`)
    once ``error`` stopped the run before its first round's training was recorded; returns what to raise,
    marked for :func:`earlier_run_back` where there was one: ``error``, or a Ctrl-C or ``kill`` held while
    the earlier run was moved back (:func:`common.cli.signals_held`) where ``error`` was no stop itself.

    A second Ctrl-C amid the moves left part of the earlier run in ``work`` and the rest hidden beside it,
    with no note of where, and the Ctrl-C line told to ``--resume`` a run that had trained nothing.
    """
    stop, back = error, False
    try:
        with signals_held():
            back = bool(earlier) and put_back_folds_run(work, earlier.pop())
    except KeyboardInterrupt as again:
        if not isinstance(error, KeyboardInterrupt):
            stop = again
    if back:
        stop.earlier_run_back = True  # type: ignore[attr-defined]  # read by earlier_run_back
    return stop


def earlier_run_back(error: BaseException) -> bool:
    """Whether ``error`` stopped a :func:`cross_validate` before its first round's training was recorded,
    and the earlier run in its work folder, set aside, was put back, or a note said where its parts are
    where that failed, or, where it could not be set aside, stopped its delete
    (:func:`~segmentation.folds.set_folds_run_aside`): nothing of this run is left to ``--resume``."""
    return getattr(error, "earlier_run_back", False)


def announce_rounds(data: str | Path, pool: list[PooledImage], config: dict) -> None:
    """Prints, once for the run, what each round's training said alike (its rounds are told not to,
    :func:`segmentation.train.train`'s ``announce``): the warning on grey photos
    (:func:`~segmentation.run_setup.grey_data_warning`), over the ``pool`` (each of its photos is a train
    photo of some round; a round's share differs only by chance), and the augmentation line
    (:func:`~segmentation.run_setup.augment_line`: the config and the categories are every round's).
    """
    photos = [Path(data) / "images" / image.image["file_name"] for image in pool]
    where = f"the defect photos of {data}, which the rounds train on"
    if warning := grey_data_warning(config, photos, where=where, flag="--set"):  # evaluate --folds' overrides
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    if line := augment_line({**config, "data": str(data)}):
        print(line, file=sys.stderr, flush=True)


def round_run_config(config: dict, folder: Path, *, work: Path, index: int) -> dict:
    """The ``segmentation.train`` config of round ``index``: ``config`` on the round's data set ``folder``,
    its run in ``work/runs/fold<index>`` (``exist_ok``: that folder, whether an earlier run made it or not).
    """
    return {
        **config,
        "data": str(folder),
        "out": str(work / "runs"),
        "name": f"fold{index}",
        "exist_ok": True,
    }


def evaluate_round(
    fold: Fold,
    folder: Path,
    run_dir: Path,
    seconds: dict[str, float],
    *,
    base: Sam,
    config: dict,
    crops: CropRule | None,
    tta: bool,
) -> RoundResult:
    """The round's result: the ``base`` model and the one trained in ``run_dir`` scored on the test split
    of the round's data set ``folder`` (:func:`score_round`); ``seconds`` (the round's timings) gains
    ``evaluate``."""
    start = time.perf_counter()
    tuned, head = load_round_model(run_dir, config)
    test = load_split(folder, "test")
    prompt = load_colour_prompt(run_dir / "decoder.pt")
    zero_shot, finetuned = score_round(
        base, tuned, test, config, crops, tta=tta, colour_head=head, colour_prompt=prompt
    )
    seconds["evaluate"] = time.perf_counter() - start
    return RoundResult(fold.index, test, zero_shot, finetuned, run_dir, seconds)


def _train_round(
    run_config: dict, fold: Fold, k: int, *, resume: bool, recorded: dict | None = None
) -> tuple[Path, dict[str, float]]:
    """Fine-tunes one round (or, with ``resume``, keeps its finished training); ``(run folder, seconds)``.

    ``recorded``: the training settings the earlier run's plan records (:func:`recorded_parts`).
    """
    run_dir = Path(run_config["out"]) / run_config["name"]
    inputs = round_inputs(run_config, fold)
    parts = round_parts(inputs)
    accepted = recorded_parts(parts, recorded)
    fingerprints = {*map(round_fingerprint, accepted), *earlier_fingerprints(run_config, inputs)}
    name = f"fold{fold.index} ({fold.index + 1} of {k})"  # named as its folders are (fold0, runs/fold0)
    if resume and (kept := finished_round(run_dir, fingerprints)) is not None:
        print(f"{name}: trained by the earlier run, kept", file=sys.stderr)
        return run_dir, {"train": kept}
    if resume and (why := retrain_reason(run_dir, accepted, fingerprints)):  # it trained again without a word
        print(f"note: {name}: {why}: training it again", file=sys.stderr)
    elif resume and (run_dir / "last.pt").is_file():  # a round goes on whole: its last.pt is not resumed
        print(f"note: {name}: {STOPPED_ROUND}", file=sys.stderr)
    (run_dir / ROUND_FILE).unlink(missing_ok=True)  # another settings' record: never kept half-trained
    for summary_file in SUMMARY_FILES:  # an earlier run's summary no longer describes the rounds
        (Path(run_config["out"]).parent / summary_file).unlink(missing_ok=True)
    start = time.perf_counter()
    print(f"{name}: fine-tuning on {len(fold.train)} images ...", file=sys.stderr)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            # the round is resumed whole, by --folds --resume; what its set-up says of the data, said once
            run_dir = train(run_config, resume_hint=False, announce=False)
        seconds = {"train": time.perf_counter() - start}
        record = {"fingerprint": round_fingerprint(parts), "parts": parts, "train_seconds": seconds["train"]}
        atomic_write(run_dir / ROUND_FILE, json.dumps(record, indent=1) + "\n")
    except KeyboardInterrupt as stopped:  # unrecorded: --resume trains this round again whole
        stopped.in_round_training = True  # type: ignore[attr-defined]  # read by stopped_in_round
        raise
    return run_dir, seconds


def stopped_in_round(stopped: KeyboardInterrupt) -> bool:
    """Whether the Ctrl-C ``stopped`` a :func:`cross_validate` inside a round's training, before the round
    was recorded: ``--resume`` trains that round again from epoch 0 (:data:`STOPPED_ROUND`)."""
    return getattr(stopped, "in_round_training", False)


#: The note of a round the earlier run stopped in: ``--resume`` keeps finished rounds, and trains that one
#: again whole (its ``last.pt`` is not gone on from: it need not be of this run's settings or data).
STOPPED_ROUND = (
    "the earlier run stopped in its training, which --resume does not go on from: "
    "training it again from epoch 0"
)

#: Config keys a round's training does not depend on: its data and folders (the round's own),
#: ``progress`` (``--no-progress``), whose change trained every round again, and ``device``: a run
#: stopped on the CPU goes on on a GPU (or ``auto``), as ``segmentation.train --resume device=cuda`` and
#: ultralytics' resume do; it was refused until 2026-12-07.
NOT_TRAINING_KEYS = frozenset({"data", "out", "name", "exist_ok", "cache_dir", "progress", "device"})


def training_settings(config: dict) -> dict:
    """The settings a round's training depends on: ``config`` less :data:`NOT_TRAINING_KEYS`."""
    return {key: value for key, value in config.items() if key not in NOT_TRAINING_KEYS}


#: What each of :func:`round_inputs` is called in the note of a round trained again.
ROUND_INPUT_WORDS = {
    "settings": "training settings",
    "splits": "train/val/test images",
    "annotations": "train or val annotations",
}


def round_inputs(run_config: dict, fold: Fold) -> dict:
    """What a round's training depends on: its :func:`training_settings`, the keys of its three splits and
    the sha256 of the round folder's train and val COCO files (``run_config["data"]``,
    :func:`~segmentation.folds.write_fold`).

    With the keys alone, a data set converted again with other masks under the same file names (a
    defect outlined again) kept the rounds trained on the old masks under ``--resume``, and scored them
    against the new ones without a word.
    """
    return {
        "settings": training_settings(run_config),
        "splits": {split: list(fold[split]) for split in ("train", "val", "test")},
        "annotations": {
            split: sha256_file(Path(run_config["data"]) / "annotations" / f"instances_{split}.json")
            for split in ("train", "val")
        },
    }


def round_parts(inputs: dict) -> dict[str, str]:
    """sha256 of each of :func:`round_inputs`, recorded in ``round.json`` to say which changed."""
    return {name: _digest(value) for name, value in inputs.items()}


def round_fingerprint(parts: dict[str, str]) -> str:
    """sha256 of a round's :func:`round_parts`: what its ``round.json`` must match to be kept."""
    return _digest(parts)


def recorded_parts(parts: dict[str, str], recorded: dict | None) -> list[dict[str, str]]:
    """``parts``, and where the earlier run's plan records its ``recorded`` training settings, the same
    with those: the parts a round of that run may hold in its ``round.json`` and be kept.

    :func:`~segmentation.folds.check_resumable` has refused a plan of other settings, but one recorded
    while a key now in :data:`NOT_TRAINING_KEYS` counted (``device`` until 2026-12-07) holds it: its
    rounds' settings part is of those, the device they trained on.
    """
    if not isinstance(recorded, dict):
        return [parts]
    return [parts, {**parts, "settings": _digest(recorded)}]


def earlier_fingerprint(run_config: dict, inputs: dict) -> str:
    """The fingerprint a round recorded until 2026-12-07, trained with ``run_config`` (``progress`` too)."""
    settings = {k: v for k, v in run_config.items() if k not in {"data", "out", "name", "cache_dir"}}
    return _digest({"config": settings, "splits": inputs["splits"], "annotations": inputs["annotations"]})


def earlier_fingerprints(run_config: dict, inputs: dict) -> set[str]:
    """The :func:`earlier_fingerprint` of ``run_config`` with ``progress`` on and off: a round recorded until
    2026-12-07 whose training is the same is kept, not trained again, whatever its ``--no-progress``
    (which trains no other decoder, and which that fingerprint hashed)."""
    return {earlier_fingerprint({**run_config, "progress": progress}, inputs) for progress in (True, False)}


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def read_round_record(run_dir: Path) -> dict | None:
    """``run_dir``'s ``round.json``; None when missing or unreadable (a round stopped while training)."""
    try:
        record = json.loads((run_dir / ROUND_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def finished_round(run_dir: Path, fingerprints: set[str]) -> float | None:
    """The training seconds ``run_dir``'s ``round.json`` records, if it has one of ``fingerprints`` and a
    ``decoder.pt``; None otherwise (a round stopped while training, or trained on other data)."""
    record = read_round_record(run_dir)
    if record is None or record.get("fingerprint") not in fingerprints:
        return None
    if not (run_dir / "decoder.pt").is_file():
        return None
    return float(record.get("train_seconds") or 0.0)


def retrain_reason(run_dir: Path, accepted: list[dict[str, str]], fingerprints: set[str]) -> str | None:
    """Why a round an earlier run recorded in ``run_dir`` trains again (not :func:`finished_round`); None
    without a record (stopped while training: the round's line says it trains). ``accepted``: the
    :func:`recorded_parts` a kept round may hold.

    Other settings are refused before any round (:func:`~segmentation.folds.check_resumable`), so it
    is the data, converted again since; an earlier version's record does not say what changed.
    """
    record = read_round_record(run_dir)
    if record is None:
        return None
    if record.get("fingerprint") in fingerprints:
        return f"its {run_dir / 'decoder.pt'} is gone"
    recorded = record.get("parts")
    if not isinstance(recorded, dict):
        return "its round.json, of an earlier version, is of other settings or data and does not say which"
    changed = [
        words
        for key, words in ROUND_INPUT_WORDS.items()
        if recorded.get(key) not in {parts[key] for parts in accepted}
    ]
    return f"its {' and '.join(changed)} changed since the earlier run trained it"


def single_split(data: str | Path, config: dict, *, work: Path, tta: bool = False) -> list[RoundResult]:
    """One round on the converter's own train/val/test split (what a plain run does), as K-fold's result."""
    base = load_sam(config["model"], config["checkpoint"], device="cpu", path_option="checkpoint=PATH")
    run_config = {**config, "data": str(data), "out": str(work / "runs"), "name": "split", "exist_ok": True}
    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        run_dir = train(run_config, resume_hint=False)  # scored here: no single run's closing hints
    seconds = {"train": time.perf_counter() - start}
    start = time.perf_counter()
    tuned, head = load_round_model(run_dir, config)
    test = load_split(data, "test")
    prompt = load_colour_prompt(run_dir / "decoder.pt")
    zero_shot, finetuned = score_round(
        base, tuned, test, config, crop_rule(config), tta=tta, colour_head=head, colour_prompt=prompt
    )
    seconds["evaluate"] = time.perf_counter() - start
    return [RoundResult(0, test, zero_shot, finetuned, run_dir, seconds)]


def summary(results: list[RoundResult]) -> dict:
    """Mean +- std over rounds per metric and model, per-image IoU changes, bucket IoUs."""
    out: dict = {"folds": len(results), "metrics": {}, "images": {}, "buckets": {}}
    for name, field_name in METRICS:
        for model in ("zero-shot", "fine-tuned"):
            values = [getattr(_pick(r, model).summary, field_name).get("all", float("nan")) for r in results]
            mean, std = mean_std(values)
            out["metrics"].setdefault(name, {})[model] = {"mean": mean, "std": std, "per_fold": values}
    out["per_image"] = per_image_ious(results)
    deltas = [row["fine-tuned"] - row["zero-shot"] for row in out["per_image"]]
    out["images"] = {
        "better": int(sum(d > 1e-4 for d in deltas)),
        "worse": int(sum(d < -1e-4 for d in deltas)),
        "same": int(sum(abs(d) <= 1e-4 for d in deltas)),
    }
    for model in ("zero-shot", "fine-tuned"):
        merged: dict[str, list[float]] = {name: [] for name in BUCKETS}
        for r in results:
            for bucket, values in bucket_ious(r.test, _pick(r, model)).items():
                merged[bucket] += values
        out["buckets"][model] = {
            b: {"n": len(v), "instance_iou": float(np.mean(v)) if v else float("nan")}
            for b, v in merged.items()
        }
    return out


def per_image_ious(results: list[RoundResult]) -> list[dict]:
    """Each round's test images: ``{"round", "image" (file name), "zero-shot", "fine-tuned"}`` IoUs."""
    rows = []
    for r in results:
        names = {image.image_id: image.path.name for image in r.test.images}
        before = {score.image_id: score.iou for score in r.zero_shot.scores}
        rows += [
            {"round": r.index, "image": names[score.image_id], "zero-shot": before[score.image_id],
             "fine-tuned": score.iou}
            for score in r.tuned.scores
        ]  # fmt: skip
    return rows


def _pick(result: RoundResult, model: str) -> ModelEvaluation:
    return result.zero_shot if model == "zero-shot" else result.tuned


def format_summary(summary_: dict) -> str:
    """Markdown: mean +- std per metric for both models, the gain, and image/bucket counts."""
    lines = [
        f"| metric ({summary_['folds']} folds) | zero-shot | fine-tuned | gain |",
        "|---|---:|---:|---:|",
    ]
    for name, models in summary_["metrics"].items():
        z, t = models["zero-shot"], models["fine-tuned"]
        gain = json_float(t["mean"]) - json_float(z["mean"])
        lines.append(
            f"| {name} | {_figure(z['mean'])} +- {_figure(z['std'])} | {_figure(t['mean'])} +- "
            f"{_figure(t['std'])} | {'-' if np.isnan(gain) else f'{gain:+.4f}'} |"
        )
    images = summary_["images"]
    lines += [
        "",
        f"Test images (each once): IoU better {images['better']}, worse {images['worse']}, "
        f"same {images['same']}.",
        "",
        "| size bucket | instances | zero-shot instance IoU | fine-tuned instance IoU |",
        "|---|---:|---:|---:|",
    ]
    for bucket in BUCKETS:
        z, t = summary_["buckets"]["zero-shot"][bucket], summary_["buckets"]["fine-tuned"][bucket]
        lines.append(f"| {bucket} | {z['n']} | {_figure(z['instance_iou'])} | {_figure(t['instance_iou'])} |")
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    # an undefined figure (folds.json's null, NaN in memory) is '-', as in table.md (common.tables.fmt)
    return fmt(value, 4)


def write_folds(out: Path, summary_: dict) -> str:
    """Writes ``folds.json`` (strict JSON: an undefined figure is ``null``), ``folds.md`` and ``folds.png``
    into ``out``; returns the table of ``folds.md``."""
    json_file, table_file, plot_file = (out / name for name in SUMMARY_FILES)
    atomic_write(json_file, json_text(summary_, indent=1, default=str))
    table = format_summary(summary_)
    atomic_write(table_file, table + "\n")
    plot_folds(summary_, plot_file)
    return table


def plot_folds(summary_: dict, path: Path) -> None:
    """``folds.png``: the figure of :func:`folds_figure`, written atomically."""
    fig = folds_figure(summary_)  # picks the Agg backend before pyplot is imported here
    import matplotlib.pyplot as plt

    atomic_write(path, lambda file: fig.savefig(file, format="png", dpi=100))
    plt.close(fig)


def folds_figure(summary_: dict):
    """Every test image's IoU, zero-shot against fine-tuned, and each round's mean IoU.

    Left, one dot per image coloured by round, each round named as its folders are (``fold0``...):
    above the diagonal fine-tuning helped it. Right, each round's two means joined by a line in the
    round's colour and name, with the mean +- std over the rounds beside them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, iou, images = summary_["per_image"], summary_["metrics"]["IoU"], summary_["images"]
    colours = plt.get_cmap("tab10")
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    lowest = min((min(r["zero-shot"], r["fine-tuned"]) for r in rows), default=0.0)
    low = max(0.0, np.floor((lowest - 0.02) * 20) / 20)  # zoomed to the data, on a 0.05 step
    left.plot([low, 1], [low, 1], color="grey", linewidth=1, linestyle="--")
    for index in sorted({r["round"] for r in rows}):
        mine = [r for r in rows if r["round"] == index]
        left.scatter([r["zero-shot"] for r in mine], [r["fine-tuned"] for r in mine], s=18,
                     color=colours(index % 10), label=f"fold{index}")  # fmt: skip
    left.set(xlim=(low, 1), ylim=(low, 1), xlabel="zero-shot IoU", ylabel="fine-tuned IoU", aspect="equal",
             title=f"per test image: better {images['better']}, worse {images['worse']}, "
             f"same {images['same']}")  # fmt: skip
    left.legend(loc="lower right", fontsize="small")
    models = ("zero-shot", "fine-tuned")
    for index, pair in enumerate(zip(*(iou[m]["per_fold"] for m in models), strict=True)):
        right.plot([0, 1], pair, marker="o", color=colours(index % 10), label=f"fold{index}")
    for x, model in enumerate(models):
        right.errorbar(x + (0.12 if x else -0.12), iou[model]["mean"], yerr=iou[model]["std"], fmt="s",
                       color="black", capsize=4, label=None if x else "mean ± std")  # fmt: skip
    right.set(xticks=[0, 1], xticklabels=list(models), xlim=(-0.4, 1.4), ylabel="mean IoU",
              title=f"per round ({summary_['folds']} folds)")  # fmt: skip
    right.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig
