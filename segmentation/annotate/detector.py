"""The detector inside the app (``--detector best.pt``): boxes on each photo, SAM masks of them, proposals.

The inspection cascade, run where the user works: when a photo is opened (or
prefetched), the detector finds its boxes, the app's own SAM decoder turns
each box into one mask (box prompt, single-mask output), and the session keeps
them as proposals (:mod:`segmentation.annotate.proposals`) for the user to
accept, correct or delete (with ``--crop-fraction``, a small box is decoded on
its zoomed crop, as the cascade does: :mod:`segmentation.annotate.zoom`).
Detector and decoder run as one job per photo on the decoder thread
(:class:`~segmentation.annotate.worker.DecoderWorker`), queued like every
click: one thread keeps one set of torch and ultralytics buffers, and a click
waits at most for one photo's detection (and its crops' encoder runs).

A photo is proposed once per detector (its file name and sha256,
:attr:`BoxDetector.source`): a restart keeps the undecided proposals in the
state and does not run the detector on that photo again. A photo replaced on
disk while the page runs (same name, other bytes) is proposed anew: its
undecided proposals of the old photo are dropped when it is opened or asked
for again, with a notice (:meth:`DetectorProposals.refresh`; one of another
size has all its labels set aside first,
:meth:`~segmentation.annotate.session.AnnotationSession.refresh_size`), and a
photo replaced during the detector's run on it is run on again.

The page asks for the current photo's proposals once its embedding is ready
(``POST /api/proposals/detect``); a background thread does the same for the
photos after it, once their embedding is ready and only while the decoder
thread is idle, so prefetching never takes a click's place in the queue.
"""

from __future__ import annotations

import logging
import shlex
import threading
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from common.errors import UserError, one_line
from common.image_files import decode_image_file
from common.io import sha256_file
from segmentation.annotate.errors import AnnotationError, BusyError
from segmentation.annotate.predictor import InteractivePredictor
from segmentation.annotate.prefetch import FAILED, IDLE, READY, EmbeddingPrefetcher, FileKey, file_key
from segmentation.annotate.proposals import Proposal, dropped_text, make_proposal
from segmentation.annotate.records import check_classes
from segmentation.annotate.session import DONE, GOOD, AnnotationSession
from segmentation.duplicates import MASK_IOU, distinct
from segmentation.embeddings import ImageEmbedding

if TYPE_CHECKING:  # detection (ultralytics) is imported only when a detector is used
    from detection.detections import ImageDetections

logger = logging.getLogger(__name__)

#: Seconds between looks at a prefetched photo's embedding and the decoder thread.
_POLL_S = 0.1
#: Detector runs on one photo that keeps being rewritten during each run before it is given up.
_RUNS = 3


class _RewrittenError(AnnotationError):
    """The photo changed on disk during each of the detector's runs: a failure of no one file."""


class BoxDetector(Protocol):
    """What the app needs of a detector (a stub in tests, :class:`YoloDetector` otherwise).

    Attributes:
        names: class names by class id; each must be one of the session's classes.
        source: identifies the model (file name and hash): a photo gets its proposals once.
    """

    names: Sequence[str]
    source: str

    def __call__(self, image: np.ndarray) -> ImageDetections:
        """Boxes (xyxy pixels), scores and class ids on an ``(H, W, 3)`` uint8 BGR image."""
        ...


class YoloDetector:
    """An ultralytics detection model (a run's ``best.pt``) as a :class:`BoxDetector`, whole or tiled.

    Args:
        model: ``ultralytics.YOLO`` of a detection model.
        source: see :class:`BoxDetector`.
        conf: the lowest box score kept.
        imgsz: model input size (per window when tiled); default ``tile``, else the size the model
            was trained at (:func:`detection.weights.trained_imgsz`).
        tile, tile_overlap: tiled inference (:func:`detection.tiling.predict_tiled`), None: whole photos.
        device: ``cpu``, ``cuda``, ...; None: ultralytics' choice.
        max_det: boxes kept per photo.
    """

    def __init__(
        self,
        model,
        *,
        source: str,
        conf: float = 0.25,
        imgsz: int | None = None,
        tile: int | None = None,
        tile_overlap: float = 0.2,
        device: str | None = None,
        max_det: int = 100,
    ) -> None:
        from detection.weights import trained_imgsz

        self.model = model
        self.names = [str(model.names[i]) for i in sorted(model.names)]
        self.source = source
        self.conf, self.imgsz = conf, imgsz or tile or trained_imgsz(model)
        self.tile, self.tile_overlap = tile, tile_overlap
        self.device, self.max_det = device, max_det

    def __call__(self, image: np.ndarray) -> ImageDetections:
        from detection.predict import ultralytics_detections
        from detection.tiling import predict_tiled

        settings = {
            "imgsz": self.imgsz,
            "conf": self.conf,
            "device": self.device,
            "max_det": self.max_det,
            "verbose": False,
        }
        if self.tile is None:
            return ultralytics_detections(self.model.predict(image, **settings))[0]

        def predict_tiles(tiles: list[np.ndarray], windows: np.ndarray) -> list[ImageDetections]:
            return ultralytics_detections(self.model.predict(list(tiles), **settings))

        return predict_tiled(
            image, predict_tiles, tile=self.tile, overlap=self.tile_overlap, max_det=self.max_det
        )


def load_yolo_detector(
    weights: str | Path,
    *,
    conf: float = 0.25,
    imgsz: int | None = None,
    tile: int | None = None,
    saved: Sequence[str] = (),
) -> YoloDetector:
    """:class:`YoloDetector` of a weights file, every setting checked.

    Args:
        saved: the classes of the session resumed (:func:`check_detector_names`).

    Raises:
        UserError: missing weights, a file that is not an ultralytics detection checkpoint,
            ``conf`` outside (0, 1], ``imgsz`` outside [32, 8192], bad tiling, class names the
            page cannot take (:func:`check_detector_names`).
    """
    from detection.tiling import check_tiling
    from detection.train_config import MAX_IMGSZ, MIN_IMGSZ
    from detection.weights import check_trained_on_defects, load_detector, weights_file

    if not 0 < conf <= 1:
        raise UserError(f"--conf must be in (0, 1], got {conf}")
    if imgsz is not None and not MIN_IMGSZ <= imgsz <= MAX_IMGSZ:
        raise UserError(f"--imgsz must be in [{MIN_IMGSZ}, {MAX_IMGSZ}], got {imgsz}")
    if tile is not None:
        check_tiling(tile, 0.2)
    path = weights_file(weights)
    model = load_detector(path)
    check_trained_on_defects(model, path)  # a first run would take COCO's 80 objects as its classes
    source = f"{path.name} sha256:{sha256_file(path, what='detector weights')[:16]}"
    detector = YoloDetector(model, source=source, conf=conf, imgsz=imgsz, tile=tile)
    check_detector_names(detector.names, path, saved=saved)
    return detector


def check_detector_names(names: Sequence[str], weights: Path, *, saved: Sequence[str] = ()) -> None:
    """The detector's class names must be classes of the page (:func:`records.check_classes`).

    They become folders of the tree, so the rules of ``--classes`` hold; but they are the weights',
    from the data set the detector was trained on, which no option of the page renames: the error
    says so, naming the weights file and the class ("bad class name" alone read as a typo in
    ``--classes``). A name among ``saved``, the classes of the session resumed, is taken as the
    session takes it: one only Windows cannot hold (saved before that rule) resumes with a warning.

    Raises:
        UserError: naming ``weights``, the class, and where to rename it.
    """
    kept = [name for name in names if name in saved]
    try:
        check_classes([*kept, *(name for name in names if name not in saved)], stored=len(kept))
    except AnnotationError as error:
        raise UserError(
            f"detector weights {weights}: {error}; the class names are the weights' own, from the data set "
            "it was trained on: rename that class there (converters' --names-template, or the names in "
            "--mask-values) and train again, or annotate without --detector"
        ) from None


def check_detector_classes(detector: BoxDetector, classes: Sequence[str]) -> None:
    """Every class the detector predicts must be a session class; a UserError suggesting ``--classes``."""
    missing = [name for name in detector.names if name not in classes]
    if not missing:
        return
    shown = ", ".join(missing[:8]) + (f", ... ({len(missing)} in all)" if len(missing) > 8 else "")
    hint = (
        f"--classes {shlex.join([*classes, *missing])}" if len(missing) <= 8 else "--classes with all of them"
    )
    raise UserError(
        f"detector {detector.source.split()[0]} predicts classes {shown} that are not among the "
        f"classes ({shlex.join(classes)}): add them, {hint}"
    )


class DetectorProposals:
    """Runs a detector and SAM on photos, once each, and hands the masks to the session as proposals.

    Args:
        detector: boxes on a photo.
        session: where the proposals go.
        prefetcher: the photos' embeddings (SAM's decoder needs them).
        predictor: its decoder thread and :meth:`~InteractivePredictor.box_masks`.
        mask_iou: of two masks of one class overlapping by more than this IoU, only the better-scored
            box's is proposed (:mod:`segmentation.duplicates`, as the inspection cascade); 1: all.

    Thread-safe. Call :meth:`close` to stop the background thread.
    """

    def __init__(
        self,
        detector: BoxDetector,
        session: AnnotationSession,
        prefetcher: EmbeddingPrefetcher,
        predictor: InteractivePredictor,
        *,
        mask_iou: float = MASK_IOU,
    ) -> None:
        self.detector = detector
        self.mask_iou = mask_iou
        self.session = session
        self.prefetcher = prefetcher
        self.predictor = predictor
        self.name = detector.source.split()[0]
        self._cv = threading.Condition()
        self._running: dict[str, threading.Event] = {}
        #: Why the detector failed on a photo, and its file then (a change to the file forgets it; None,
        #: a photo rewritten during every run, is forgotten when next asked).
        self._failed: dict[str, tuple[str, FileKey | None]] = {}
        #: The file and sha256 of the photo each proposed photo's proposals were made on.
        self._photos: dict[str, tuple[FileKey, str]] = {}
        self._queue: list[str] = []
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="detector-prefetch", daemon=True)
        self._thread.start()

    def status(self, key: str) -> dict:
        """``{"state", "error"}``; states ``pending``, ``running``, ``done``, ``failed``, ``skipped``.

        ``skipped``: the photo is marked done or good, so it takes no proposals.
        """
        entry = self.session.entry(key)
        with self._cv:
            if self.session.has_proposed(key, self.detector.source):
                state = "done"
            elif key in self._failed:
                state = "failed"
            elif key in self._running:
                state = "running"
            else:
                state = "skipped" if entry.status in (DONE, GOOD) else "pending"
            return {"state": state, "error": self._failed[key][0] if key in self._failed else None}

    def refresh(self, key: str) -> str | None:
        """Forgets what the detector made of ``key``'s photo if the file is another photo now.

        The photo was replaced on disk (same name, other bytes; a file merely touched is the same
        photo): its undecided proposals from this detector are dropped, undo included
        (:meth:`~segmentation.annotate.session.AnnotationSession.drop_proposals`), and a failure on
        the old file is forgotten, so the detector runs on the new photo when asked. A photo proposed
        before this start is taken as the one on disk now.

        Returns:
            A one-line notice when the detector is to run on the new photo (none on one marked done
            or good, which takes no proposals), else None.
        """
        with self._cv:
            if key in self._running:  # that run looks at the file itself (:meth:`_run`)
                return None
            path = self.session.image_path(key)
            now = file_key(path)
            if key in self._failed and self._failed[key][1] != now:
                del self._failed[key]
            if not self.session.has_proposed(key, self.detector.source):
                self._photos.pop(key, None)
                return None
            known = self._photos.get(key)
            if known is not None and known[0] == now:
                return None
            try:
                digest = sha256_file(path, what="photo")
            except UserError:  # unreadable now: opening it names the file
                return None
            if known is None or known[1] == digest:
                self._photos[key] = (now, digest)
                return None
            dropped = self.session.drop_proposals(key, source=self.detector.source, name=self.name)
            del self._photos[key]  # once dropped: a drop the disk refused is tried again at the next opening
        if self.session.entry(key).status in (DONE, GOOD):
            return None  # decided: reopened, it gets the new photo's proposals
        gone = f"{dropped_text(dropped)}; " if dropped else ""
        return f"{key} changed on disk since the detector ran on it: {gone}the detector runs on the new one"

    def propose(self, key: str) -> str | None:
        """Runs the detector on ``key`` and adds its proposals, unless done; waits for a run under way.

        Waits for the photo's embedding first (outside the decoder queue). A photo replaced on disk
        since it was last seen has its old labels set aside (another size) or its old proposals
        dropped (:meth:`refresh`) first; the answer to a request asked again after a busy one,
        without the photo opened again.

        Returns:
            The notice of what was set aside or dropped, None when nothing was.

        Raises:
            BusyError: the decoder's queue is full (nothing recorded: ask again).
            AnnotationError: the photo cannot be read or embedded (recorded: not tried again until
                its file changes).
        """
        path = self.session.image_path(key)  # before a run is registered: the finally below ends it
        set_aside = self.session.refresh_size(key)
        notice = self.refresh(key) or set_aside
        while True:
            with self._cv:
                if self.status(key)["state"] not in ("pending", "running"):
                    return notice
                running = self._running.get(key)
                if running is None:
                    self._running[key] = threading.Event()
                    break
            running.wait()  # another request's run; then it is done, failed, or (busy) still pending
            notice = notice or self.refresh(key)
        try:
            proposals, photo = self._run(key, path)
            self.session.add_proposals({key: proposals}, source=self.detector.source)
            with self._cv:
                self._photos[key] = photo
        except BusyError:
            raise
        except Exception as error:  # this photo's failure, shown on the page; the others go on
            with self._cv:
                self._failed[key] = (
                    one_line(error),
                    None if isinstance(error, _RewrittenError) else file_key(path),
                )
            if not isinstance(error, UserError):
                logger.exception("detector failed on %s", key)
            raise AnnotationError(f"the detector failed on {key}: {one_line(error)}") from None
        finally:
            with self._cv:
                self._running.pop(key).set()
                self._cv.notify_all()
        return notice

    def prefetch(self, keys: Iterable[str]) -> None:
        """Proposes ``keys`` in the background once their embeddings are ready (replaces earlier ones)."""
        with self._cv:
            self._queue = list(keys)
            self._cv.notify_all()

    def close(self) -> None:
        """Stops the background thread (after the photo it is on)."""
        with self._cv:
            self._closed = True
            self._queue.clear()
            self._cv.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=60)

    def _run(self, key: str, path: Path) -> tuple[list[Proposal], tuple[FileKey, str]]:
        """The proposals of the photo at ``path`` with its file and sha256, the file unchanged throughout.

        A photo rewritten during a run (its embedding, its pixels and the crops' could each be of
        another photo) is run on again, up to :data:`_RUNS` times.

        Raises:
            AnnotationError: the file changed during every run; or the run's own error.
        """
        for _ in range(_RUNS):
            seen = file_key(path)
            try:
                digest = sha256_file(path, what="photo")
                emb = self.prefetcher.get(path)
                proposals = self.predictor.worker.run(partial(self._detect, path, emb))
            except BusyError:
                raise
            except Exception:
                if file_key(path) == seen:
                    raise
                continue  # an error of a photo replaced meanwhile: run on the new one
            if file_key(path) == seen:
                return proposals, (seen, digest)
        raise _RewrittenError(
            f"{key} changed on disk during each of {_RUNS} detector runs: open it again once it is written"
        )

    def _detect(self, path: Path, emb: ImageEmbedding) -> list[Proposal]:
        """The photo's proposals, best first; runs on the decoder thread."""
        image = decode_image_file(path, cv2.IMREAD_COLOR)
        if image.shape[:2] != tuple(emb.original_size):
            name = self.prefetcher.name(path)
            raise AnnotationError(f"{name} changed size since its embedding; open it again")
        with self.prefetcher.decoding():
            found = self.detector(image)
        boxes = np.asarray(found.boxes, dtype=float).reshape(-1, 4)
        classes = np.asarray(found.classes, dtype=int).reshape(-1)
        wrong = classes[(classes < 0) | (classes >= len(self.detector.names))]
        if len(wrong):
            raise AnnotationError(
                f"class id {wrong[0]} outside the detector's {len(self.detector.names)} classes"
            )
        proposals = []
        masks = self.predictor.box_masks(emb, boxes, path=path)
        for box, score, class_id, (mask, iou) in zip(boxes, found.scores, classes, masks, strict=True):
            proposal = make_proposal(
                mask,
                class_name=self.detector.names[class_id],
                box=box.tolist(),
                score=float(score),
                mask_score=iou,
                source=self.name,
            )
            if proposal is not None:
                proposals.append(proposal)
        proposals.sort(key=lambda p: -(p.score or 0.0))
        # a stain boxed twice by the detector would be proposed twice: keep the better-scored mask
        keep = distinct([p.rle for p in proposals], [p.class_name for p in proposals], self.mask_iou)
        return [proposals[i] for i in keep]

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                key = self._queue[0]
            step = self._next_step(key)
            if step == "wait":
                with self._cv:
                    self._cv.wait(_POLL_S)
                continue
            with self._cv:
                if self._queue[:1] == [key]:
                    self._queue.pop(0)
            if step == "run":
                self._propose_quietly(key)

    def _next_step(self, key: str) -> str:
        """``run`` (its embedding is ready, the decoder idle), ``wait``, or ``drop`` (nothing to do)."""
        try:
            if self.status(key)["state"] != "pending":
                return "drop"
            embedding = self.prefetcher.status(self.session.image_path(key)).state
        except AnnotationError:
            return "drop"
        if embedding in (IDLE, FAILED):  # not on its way: the page asks when it is opened
            return "drop"
        return "run" if embedding == READY and self.predictor.worker.admitted == 0 else "wait"

    def _propose_quietly(self, key: str) -> None:
        try:
            self.propose(key)
        except BusyError:  # a click came first: try again shortly
            with self._cv:
                if not self._closed:
                    self._queue.insert(0, key)
                self._cv.wait(_POLL_S)
        except AnnotationError:
            pass  # recorded in status(); the page shows it when the photo is opened
