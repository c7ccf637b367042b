"""The annotation server: a FastAPI app over a session, an embedding prefetcher and SAM.

:func:`create_app` builds it from parts a test can make small (a tiny SAM, a
temporary cache); ``python -m segmentation.annotate`` builds it from the
command line. Routes (all JSON unless noted; images are named by their key,
the path relative to ``--images``):

=========================  =====================================================================
``GET /``                  the page (``static/index.html``; ``/static/app.js``, ``/static/app.css``)
``GET /api/session``       classes, category, the image list with statuses, the current image
``GET /api/image``         ``?image=KEY``: size, preview size, status, instances (preview RLE)
``GET /api/embedding``     ``?image=KEY``: embedding state and progress (asks for it if need be)
``POST /api/current``      ``{image}``: the user opened it: embed it first, prefetch the next ones
``POST /api/predict``      ``{image, points, labels, box}``: three candidate masks (COCO RLE)
``POST /api/accept``       ``{image, prediction, candidate, class}``: saves the exact mask
``POST /api/delete``       ``{image, instance}``
``POST /api/status``       ``{image, status: done|good|open}``
``POST /api/undo|redo``    ``{image}``
``POST /api/export``       ``{task: detect|segment}``: YOLO + COCO into ``<out>/export``
``GET /files/images/...``  an image file from ``--images`` (TIFF sent as PNG)
``GET /files/out/...``     a file from ``--out`` (the written masks, the state)
=========================  =====================================================================

Errors are JSON ``{"detail": "one line"}``: 400 bad values, 404 unknown image,
instance, prediction or file, 409 a request that does not fit the state, 422
malformed JSON or fields. Paths are checked by
:func:`segmentation.annotate.files.resolve_inside`.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

import cv2
import numpy as np
import torch
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from segment_anything.modeling import Sam
from starlette.middleware.trustedhost import TrustedHostMiddleware

from common.errors import UserError
from common.io import cache_root
from converters.convert import format_report
from converters.masks import mask_to_rle
from segmentation.annotate import export
from segmentation.annotate.errors import AnnotationError
from segmentation.annotate.files import resolve_inside
from segmentation.annotate.predictor import MAX_POINTS, InteractivePredictor
from segmentation.annotate.prefetch import EmbeddingPrefetcher
from segmentation.annotate.session import AnnotationSession, ImageEntry
from segmentation.embeddings import EmbeddingCache, load_rgb

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Suffixes browsers display themselves; other image files are sent as PNG.
BROWSER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
_NO_STORE = {"Cache-Control": "no-store"}

Coordinate = Annotated[float, Field(allow_inf_nan=False)]
ImageKey = Annotated[str, Field(min_length=1, max_length=1024)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ImageRequest(_Body):
    image: ImageKey


class PredictRequest(ImageRequest):
    points: list[tuple[Coordinate, Coordinate]] = Field(default_factory=list, max_length=MAX_POINTS)
    labels: list[Literal[0, 1]] = Field(default_factory=list, max_length=MAX_POINTS)
    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate] | None = None


class AcceptRequest(ImageRequest):
    prediction: Annotated[str, Field(min_length=1, max_length=64)]
    candidate: Annotated[int, Field(ge=0, le=15)]
    class_name: Annotated[str, Field(alias="class", min_length=1, max_length=100)]


class DeleteRequest(ImageRequest):
    instance: Annotated[int, Field(ge=1)]


class StatusRequest(ImageRequest):
    status: Literal["done", "good", "open"]


class ExportRequest(_Body):
    task: Literal["detect", "segment"] = "detect"


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
) -> FastAPI:
    """The annotation app for ``session``, with ``sam`` doing the masks.

    Args:
        session: the open annotation state (:meth:`AnnotationSession.open`).
        sam: any segment_anything SAM in eval mode (MobileSAM, a fine-tuned one,
            a tiny one in tests).
        cache: embedding cache; default the shared one,
            ``common.io.cache_root() / "embeddings"``.
        model_name: folder prefix of the default cache (``vit_t``).
        prefetch: images after the current one whose embeddings are computed ahead.
        keep_embeddings: embeddings held in memory.
        device: where the encoder runs (None: where ``sam`` is).
        allowed_hosts: ``Host`` headers accepted (against DNS rebinding when bound
            to loopback); None accepts any.
        runtime: where the decoder runs per click: ``"torch"`` or ``"onnx"`` (ONNX
            Runtime, CPU models; see :class:`InteractivePredictor`).

    The prefetch worker stops when the app shuts down (``with TestClient(app)``,
    or uvicorn's lifespan); ``app.state.prefetcher.close()`` stops it otherwise.
    """
    if cache is None:
        cache = EmbeddingCache(cache_root() / "embeddings", sam, model_name=model_name)
    prefetcher = EmbeddingPrefetcher(cache, keep=keep_embeddings, device=device)
    predictor = InteractivePredictor(sam, prefetcher, runtime=runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        prefetcher.close()

    app = FastAPI(title="mvtec-finetune annotation", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.session = session
    app.state.prefetcher = prefetcher
    app.state.predictor = predictor
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    _add_error_handlers(app)
    previews: dict[tuple[str, int, str], dict] = {}  # (image, instance id, size) -> preview RLE

    def image_size(entry: ImageEntry) -> tuple[int, int]:
        return entry.size or export.upright_size(session.image_path(entry.key))

    def instance_preview(entry: ImageEntry, instance, size: tuple[int, int]) -> dict:
        key = (entry.key, instance.id, f"{size[0]}x{size[1]}")
        if key not in previews:
            mask = instance.mask()
            if mask.shape != size:  # area: any pixel covered shows, so one-pixel scratches stay visible
                pixels = mask.view(np.uint8) * np.uint8(255)
                mask = cv2.resize(pixels, (size[1], size[0]), interpolation=cv2.INTER_AREA) > 0
            previews[key] = mask_to_rle(mask)
        return previews[key]

    def image_detail(key: str) -> dict:
        entry = session.entry(key)
        height, width = image_size(entry)
        size = predictor.preview_size((height, width))
        return {
            "image": key,
            "index": session.keys.index(key),
            "url": "/files/images/" + urllib.parse.quote(key),
            "width": width,
            "height": height,
            "preview": list(size),
            "status": entry.status,
            "instances": [
                {
                    "id": instance.id,
                    "class": instance.class_name,
                    "area": instance.area,
                    "box": list(instance.box),
                    "score": instance.score,
                    "rle": instance_preview(entry, instance, size),
                }
                for instance in entry.instances
            ],
            "can_undo": bool(entry.undo_stack),
            "can_redo": bool(entry.redo_stack),
            "counts": session.counts(),
            "embedding": prefetcher.status(session.image_path(key)).to_json(),
        }

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=_NO_STORE)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        return FileResponse(resolve_inside(STATIC_DIR, name), headers=_NO_STORE)

    @app.get("/api/session")
    def get_session() -> JSONResponse:
        images = []
        for key in session.keys:
            entry = session.entry(key)
            images.append({"image": key, "status": entry.status, "instances": len(entry.instances)})
        return _json(
            {
                "category": session.category,
                "classes": session.classes,
                "images": images,
                "current": session.current,
                "counts": session.counts(),
                "out": str(session.out),
                "images_dir": str(session.images_dir),
                "model": model_name,
                "img_size": predictor.img_size,
                "torch_threads": torch.get_num_threads(),
                "decoder_runtime": predictor.runtime,
            }
        )

    @app.get("/api/image")
    def get_image(image: Annotated[str, Query(min_length=1, max_length=1024)]) -> JSONResponse:
        return _json(image_detail(image))

    @app.get("/api/embedding")
    def get_embedding(image: Annotated[str, Query(min_length=1, max_length=1024)]) -> JSONResponse:
        return _json(prefetcher.request(session.image_path(image)).to_json())

    @app.post("/api/current")
    def set_current(body: ImageRequest) -> JSONResponse:
        path = session.image_path(body.image)
        session.set_current(body.image)
        status = prefetcher.request(path)
        prefetcher.prefetch(session.image_path(k) for k in session.neighbours(body.image, prefetch))
        return _json(status.to_json())

    @app.post("/api/predict")
    def predict(body: PredictRequest) -> JSONResponse:
        started = time.perf_counter()
        path = session.image_path(body.image)
        prediction = predictor.predict(body.image, path, points=body.points, labels=body.labels, box=body.box)
        candidates = [
            {"rle": mask_to_rle(mask), "score": round(float(score), 4)}
            for mask, score in zip(prediction.masks, prediction.scores, strict=True)
        ]
        return _json(
            {
                "prediction": prediction.id,
                "size": list(prediction.masks.shape[1:]),
                "candidates": candidates,
                "best": prediction.best,
                "ms": {
                    "decode": round(prediction.decode_s * 1e3, 1),
                    "predict": round(prediction.total_s * 1e3, 1),
                    "decode_cpu": round(prediction.decode_cpu_s * 1e3, 1),
                    "predict_cpu": round(prediction.total_cpu_s * 1e3, 1),
                    "server": round((time.perf_counter() - started) * 1e3, 1),
                },
            }
        )

    @app.post("/api/accept")
    def accept(body: AcceptRequest) -> JSONResponse:
        session.entry(body.image)
        if body.class_name not in session.classes:
            raise AnnotationError(
                f"unknown class '{body.class_name}' (classes: {', '.join(session.classes)})"
            )
        prediction = predictor.prediction(body.prediction, body.image)
        mask = predictor.full_mask(prediction, body.candidate)
        session.add_instance(
            body.image,
            class_name=body.class_name,
            mask=mask,
            score=float(prediction.scores[body.candidate]),
            prompt=prediction.prompt,
        )
        return _json(image_detail(body.image))

    @app.post("/api/delete")
    def delete(body: DeleteRequest) -> JSONResponse:
        session.delete_instance(body.image, body.instance)
        return _json(image_detail(body.image))

    @app.post("/api/status")
    def set_status(body: StatusRequest) -> JSONResponse:
        session.set_status(body.image, body.status)
        return _json(image_detail(body.image))

    @app.post("/api/undo")
    def undo(body: ImageRequest) -> JSONResponse:
        session.undo(body.image)
        return _json(image_detail(body.image))

    @app.post("/api/redo")
    def redo(body: ImageRequest) -> JSONResponse:
        session.redo(body.image)
        return _json(image_detail(body.image))

    @app.post("/api/export")
    def export_dataset(body: ExportRequest | None = None) -> JSONResponse:
        report = session.export(task=(body or ExportRequest()).task)
        return _json({"out": str(report.out), "report": format_report(report)})

    @app.get("/files/images/{path:path}")
    def image_file(path: str) -> Response:
        target = resolve_inside(session.images_dir, path)
        if target.suffix.lower() in BROWSER_SUFFIXES:
            return FileResponse(target)
        return Response(export.encode_png(load_rgb(target)), media_type="image/png")

    @app.get("/files/out/{path:path}")
    def out_file(path: str) -> FileResponse:
        return FileResponse(resolve_inside(session.out, path), headers=_NO_STORE)

    return app


def _json(content: dict) -> JSONResponse:
    return JSONResponse(content, headers=_NO_STORE)


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure becomes a JSON ``{"detail": "..."}`` with a 4xx (or, for bugs, 500) status."""

    @app.exception_handler(AnnotationError)
    async def annotation_error(request: Request, error: AnnotationError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=error.status_code)

    @app.exception_handler(UserError)  # the converters' and the embedding cache's bad input
    async def conversion_error(request: Request, error: UserError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors()[:5]:
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
            problems.append(f"{where}: {item.get('msg', 'invalid')}")
        return JSONResponse({"detail": "malformed request: " + "; ".join(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("error in %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(error).__name__}: {error}"}, status_code=500)
