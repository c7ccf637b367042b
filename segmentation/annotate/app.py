"""The annotation server: a FastAPI app over a session, an embedding prefetcher and SAM.

:func:`create_app` builds it from parts a test can make small (a tiny SAM, a
temporary cache); ``python -m segmentation.annotate`` builds it from the
command line. Routes (all JSON unless noted; images are named by their key,
the path relative to ``--images``):

============================  =====================================================================
``GET /``                     the page (``static/index.html``; ``/static/app.js``, ``/static/app.css``)
``GET /api/session``          classes, category, the image list with statuses, the current image
``GET /api/image``            ``?image=KEY``: size, preview size, status, instances (preview RLE)
``GET /api/embedding``        ``?image=KEY``: embedding state and progress (asks for it if need be)
``POST /api/current``         ``{image}``: the user opened it: embed it first, prefetch the next ones
``POST /api/predict``         ``{image, points, labels, box}``: three candidate masks (COCO RLE), the
                              zoomed crop they were decoded on (``crop``, with ``crops``) or null
``POST /api/accept``          ``{image, prediction, candidate, class, proposal?}``: saves the exact mask
``POST /api/delete``          ``{image, instance}``
``POST /api/status``          ``{image, status: done|good|open, version?}``: ``version`` as for undo (done
                              and good would discard proposals the page never showed)
``POST /api/undo|redo``       ``{image, version?}``: ``version`` the image detail's; refused (409) where
                              another tab changed the image since (undo would wipe that change), proposals
                              were added or dropped, the photo was replaced by one of another size, or the
                              server restarted since (the history is not kept); a malformed ``version``
                              (not ``<8 hex digits>-<count>``) is answered 422
``GET /api/proposals``        ``?image=KEY``: its undecided proposals (preview RLE), the detector's state
                              and the image's version (as the detail's: proposals added move it)
``POST /api/proposals/*``     ``detect {image}`` (runs ``--detector``), ``accept {image, proposal, class?}``,
                              ``accept-all {image}``, ``delete {image, proposal}``
``POST /api/export``          ``{task: detect|segment, id?}``: YOLO + COCO into ``<out>/export`` (409 with
                              ``cancelled: true``: cancelled); ``id``: the page's name for it
``GET /api/export/status``    the running export's id, stage, photos done of all and seconds run
                              (``{running: false}``: none)
``POST /api/export/cancel``   ``{id}``: stops the export of that id before its next photo, one not begun
                              yet before its first (``<out>/export`` kept as it was);
                              ``{cancelling: false}`` where that export is over (one of the
                              last 16 begun; an older id's cancel is kept, as one not begun yet)
``GET /files/images/...``     an image file from ``--images`` (TIFF sent as PNG)
``GET /files/out/...``        a file from ``--out`` (the written masks, the state)
============================  =====================================================================

Errors are JSON ``{"detail": "one line"}``: 400 bad values (a ``Host`` header refused included), 404
unknown image, instance, prediction or file, 409 a request that does not fit the state (e.g. an
accept whose photo changed on disk since the click, an undo or a status from a tab that did not show
the photo's last change), 507 a file that cannot be written (a full
disk, a read-only ``--out``: the message says whether the change was saved; saved, ``saved`` holds the
photo's detail with the version that change gave it, as its 200 would, or null where that detail could not be
read or, for another file error of a change, whether it was saved is not known), 422 malformed JSON or fields
(naming the field, long values cut short: :mod:`segmentation.annotate.bad_requests`; a ``version`` not of
the form an image detail gives included, not the 409 of another start's; a query parameter or JSON key given
twice), 413 a body over 1 MiB (:mod:`segmentation.annotate.guard`), 503 with
``Retry-After`` when the decoder's queue is full (predict, accept, detect; see
:mod:`segmentation.annotate.worker`), when an export is asked while another runs, or when the labels
of a photo replaced on disk would be set aside while an export reads the tree. Paths are checked by
:func:`segmentation.annotate.files.resolve_inside`.

The routes live in :mod:`segmentation.annotate.routes`, one router per resource;
they share one :class:`~segmentation.annotate.routes.shared.AppContext`, kept on
``app.state.context``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from common.errors import UserError, file_error
from common.io import embeddings_root
from segmentation.annotate.bad_requests import unparsable_body, validation_problem
from segmentation.annotate.detector import BoxDetector, DetectorProposals, check_detector_classes
from segmentation.annotate.errors import AnnotationError, ExportCancelledError, StorageError
from segmentation.annotate.file_proposals import FileProposals
from segmentation.annotate.guard import RequestGuard
from segmentation.annotate.predictor import InteractivePredictor
from segmentation.annotate.prefetch import EmbeddingPrefetcher
from segmentation.annotate.proposal_file import ProposalFile, recorded_digests, relative_to_images
from segmentation.annotate.routes import export, files, images, instances, proposals
from segmentation.annotate.routes.shared import AppContext
from segmentation.annotate.session import AnnotationSession
from segmentation.annotate.worker import DEFAULT_WAITING
from segmentation.colour_head import ColourHead
from segmentation.colour_prompt import ColourPrompt
from segmentation.crops import CropRule
from segmentation.duplicates import MASK_IOU
from segmentation.embeddings import EmbeddingCache
from segmentation.specks import DEFAULT_CELLS

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

logger = logging.getLogger(__name__)

# The changes a file error may leave saved, their detail not sent: their 507 has ``saved`` null (the page
# reads the photo again); that of another request (predict, export, current) has none. A detection is one
# once its proposals may be saved (they move the photo's version, as an accept does): its route sets
# ``request.state.may_be_saved`` then; a file error before the detector ran saved nothing.
CHANGE_PATHS = frozenset(
    ["/api/accept", "/api/delete", "/api/status", "/api/undo", "/api/redo"]
    + ["/api/proposals/accept", "/api/proposals/accept-all", "/api/proposals/delete"]
)
#: Every router of the app, in the order they are matched.
ROUTERS = (files.router, images.router, instances.router, proposals.router, export.router)


def create_app(
    session: AnnotationSession,
    sam: Sam,
    *,
    cache: EmbeddingCache | None = None,
    model_name: str = "vit_t",
    prefetch: int = 2,
    keep_embeddings: int = 8,
    device: str | None = None,
    allowed_hosts: list[str] | None = None,
    runtime: str = "torch",
    decoder_waiting: int = DEFAULT_WAITING,
    detector: BoxDetector | None = None,
    crops: CropRule | None = None,
    colour_head: ColourHead | None = None,
    colour_prompt: ColourPrompt | None = None,
    speck_cells: float = DEFAULT_CELLS,
    mask_iou: float = MASK_IOU,
    proposal_file: ProposalFile | None = None,
) -> FastAPI:
    """The annotation app for ``session``, with ``sam`` doing the masks.

    Args:
        session: the open annotation state (:meth:`AnnotationSession.open`).
        sam: any segment_anything SAM in eval mode (MobileSAM, a fine-tuned one, a tiny one in tests).
        cache: embedding cache; default the shared one, ``common.io.embeddings_root()``.
        model_name: folder prefix of the default cache (``vit_t``).
        prefetch: images after the current one whose embeddings are computed ahead.
        keep_embeddings: embeddings held in memory.
        device: where the encoder runs (None: where ``sam`` is).
        allowed_hosts: ``Host`` headers accepted (against DNS rebinding when bound to loopback); None: any.
        runtime, decoder_waiting, crops, colour_head, colour_prompt, speck_cells: how clicks and
            detector boxes are decoded, as :func:`decoding_predictor` says (``decoder_waiting``: ``waiting``).
        detector: proposes defects on each photo as it is opened or prefetched, masks by ``sam``
            (:mod:`segmentation.annotate.detector`); its classes must be the session's.
        mask_iou: ``detector``'s proposals: of two masks of one class overlapping by more than this
            IoU only the better-scored is proposed (:mod:`segmentation.duplicates`); 1: all.
        proposal_file: the ``--proposals`` file whose proposals ``session`` holds (added before
            this): a photo replaced on disk loses them when opened
            (:mod:`segmentation.annotate.file_proposals`); None: none.

    The decoder, prefetch and detector threads stop when the app shuts down (``with
    TestClient(app)``, or uvicorn's lifespan); ``app.state.context.close()`` stops
    them otherwise.
    """
    if cache is None:
        cache = EmbeddingCache(embeddings_root(), sam, model_name=model_name)
    prefetcher = EmbeddingPrefetcher(cache, keep=keep_embeddings, device=device, root=session.images_dir)
    predictor = decoding_predictor(
        sam, prefetcher, runtime=runtime, waiting=decoder_waiting, crops=crops, colour_head=colour_head,
        colour_prompt=colour_prompt, speck_cells=speck_cells,
    )  # fmt: skip
    context = AppContext(
        session, prefetcher, predictor, model_name=model_name, prefetch=prefetch,
        detector=detector_proposals(detector, session, prefetcher, predictor, mask_iou),
        file_proposals=None if proposal_file is None else file_proposals(session, proposal_file),
    )  # fmt: skip
    return _fastapi_app(context, allowed_hosts)


def decoding_predictor(
    sam: Sam,
    prefetcher: EmbeddingPrefetcher,
    *,
    runtime: str,
    waiting: int,
    crops: CropRule | None,
    colour_head: ColourHead | None,
    colour_prompt: ColourPrompt | None,
    speck_cells: float,
) -> InteractivePredictor:
    """:func:`create_app`'s decoder: clicks and a detector's boxes to masks by ``sam`` on the decoder thread.

    Args:
        runtime: where the decoder runs per click: ``"torch"`` or ``"onnx"`` (ONNX
            Runtime, CPU models; see :class:`InteractivePredictor`).
        waiting: clicks and accepts that may wait for the decoder thread
            while it works; more are answered 503 (:class:`~segmentation.annotate.worker.DecoderWorker`).
        crops: decode small boxes (drawn, or a detector's) on a zoomed crop around them
            (``--crop-fraction``, :mod:`segmentation.annotate.zoom`); None: never.
        colour_head: refines the detector's box masks (a ``decoder.pt``'s head,
            :mod:`segmentation.colour_head`; clicks stay SAM's); None: none.
        colour_prompt: each of those boxes' colour map as SAM's ``mask_input`` (a ``decoder.pt``'s,
            :mod:`segmentation.colour_prompt`; clicks stay SAM's); None: none.
        speck_cells: islands and holes under this many of SAM's low-resolution cells are removed
            from every mask (:mod:`segmentation.specks`); 0: SAM's masks exactly.
    """
    return InteractivePredictor(
        sam,
        prefetcher,
        runtime=runtime,
        waiting=waiting,
        crops=crops,
        colour_head=colour_head,
        colour_prompt=colour_prompt,
        speck_cells=speck_cells,
    )


def detector_proposals(
    detector: BoxDetector | None,
    session: AnnotationSession,
    prefetcher: EmbeddingPrefetcher,
    predictor: InteractivePredictor,
    mask_iou: float,
) -> DetectorProposals | None:
    """The proposer of ``detector`` (its classes checked against the session's), masks by ``predictor``;
    None without a detector.

    Raises:
        UserError: ``detector``'s classes are not the session's (:func:`check_detector_classes`).
    """
    if detector is None:
        return None
    check_detector_classes(detector, session.classes)
    return DetectorProposals(detector, session, prefetcher, predictor, mask_iou=mask_iou)


def _fastapi_app(context: AppContext, allowed_hosts: list[str] | None) -> FastAPI:
    """:func:`create_app`'s app on ``context``: the routes, every failure as one-line JSON
    (:func:`_add_error_handlers`) and, where ``allowed_hosts`` is given, only those ``Host`` headers
    (:class:`~segmentation.annotate.guard.RequestGuard`, which answers in that JSON too)."""
    app = FastAPI(title="mvtec-finetune annotation", lifespan=_lifespan, docs_url=None, redoc_url=None)
    app.state.context = context
    # The parts by name too, for scripts and tests that look at one of them.
    app.state.session, app.state.prefetcher, app.state.predictor = (
        context.session,
        context.prefetcher,
        context.predictor,
    )
    app.add_middleware(RequestGuard, allowed_hosts=allowed_hosts)
    _add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def file_proposals(session: AnnotationSession, proposal_file: ProposalFile) -> FileProposals:
    """The proposer of the ``--proposals`` file whose proposals ``session`` holds, with the sha256 the file
    records of each photo, by the file's names made relative to ``--images`` (:func:`recorded_digests`)."""
    relative, _ = relative_to_images(proposal_file, session.images_dir)
    return FileProposals(
        session,
        source=proposal_file.source,
        name=proposal_file.path.name,
        digests=recorded_digests(relative, session.keys),
    )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.context.close()


def saved_detail(context: AppContext, error: StorageError) -> dict | None:
    """The detail of the photo whose change was saved although its files could not be written (a 507), with
    the version that change gave it: the page keeps it as the change's answer (read again later, it may
    bring another tab's change, which an undo pressed meanwhile would then take back); None where the
    detail cannot be read."""
    try:
        return {**images.image_detail(context, error.image), "version": error.version}
    except (AnnotationError, OSError) as failure:
        logger.warning("%s: its detail not sent with the 507: %s", error.image, failure)
        return None


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure becomes a JSON ``{"detail": "..."}`` with a 4xx, 503, 507 (or, for bugs, 500) status."""

    @app.exception_handler(AnnotationError)
    async def annotation_error(request: Request, error: AnnotationError) -> JSONResponse:
        retry_after = getattr(error, "retry_after_s", None)  # BusyError: when to try again
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        content: dict[str, object] = {"detail": str(error)}
        if isinstance(error, ExportCancelledError):  # told apart from the other 409s by the page
            content["cancelled"] = True
        if isinstance(error, StorageError) and error.image is not None:
            # the detail encodes mask previews and may read the photo: off the event loop, as the routes run
            content["saved"] = await run_in_threadpool(saved_detail, request.app.state.context, error)
        return JSONResponse(content, status_code=error.status_code, headers=headers)

    @app.exception_handler(UserError)  # the converters' and the embedding cache's bad input
    async def conversion_error(request: Request, error: UserError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type")
        problems = [validation_problem(item, content_type) for item in error.errors()[:5]]
        return JSONResponse({"detail": "malformed request: " + "; ".join(problems)}, status_code=422)

    @app.exception_handler(HTTPException)  # FastAPI's "error parsing the body" says not what or where
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        cause = error.__cause__
        if error.status_code == 400 and isinstance(cause, ValueError | RecursionError):
            # The body was read (and kept) by this request before it failed to parse.
            problem = unparsable_body(cause, await request.body())
            return JSONResponse({"detail": f"malformed request: {problem}"}, status_code=422)
        return await http_exception_handler(request, error)

    @app.exception_handler(OSError)  # a full disk, a read-only folder: the user's to fix, not a bug
    async def file_system_error(request: Request, error: OSError) -> JSONResponse:
        logger.error("%s %s: %s", request.method, request.url.path, file_error(error))
        content: dict[str, object] = {"detail": f"cannot read or write a file: {file_error(error)}"}
        if request.url.path in CHANGE_PATHS or getattr(request.state, "may_be_saved", False):
            content["saved"] = None  # a change may be saved all the same: its detail is not sent
        return JSONResponse(content, status_code=507)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("error in %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(error).__name__}: {error}"}, status_code=500)
