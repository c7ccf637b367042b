"""Clicks and the instances made of them: predictions, accept, delete, statuses, undo and redo.

Every change answers with the image's new detail
(:func:`segmentation.annotate.routes.images.image_detail`), so the page redraws
from what was saved.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from converters.masks import mask_to_rle
from segmentation.annotate.errors import AnnotationError
from segmentation.annotate.predictor import MAX_POINTS, Prediction
from segmentation.annotate.routes.images import image_detail
from segmentation.annotate.routes.shared import Context, ImageRequest, json_response
from segmentation.annotate.session import VERSION, VERSION_FORM

router = APIRouter(prefix="/api")

# strict: JSON's true or "12" is a malformed request, not the number 1 or 12 (pydantic's lax mode).
Coordinate = Annotated[float, Field(allow_inf_nan=False, strict=True)]
# 1 (defect) or 0 (background): strict, as a Literal[0, 1] took JSON's true and 1.0 for 1, false for 0.
PointLabel = Annotated[int, Field(ge=0, le=1, strict=True)]


class PredictRequest(ImageRequest):
    points: list[tuple[Coordinate, Coordinate]] = Field(default_factory=list, max_length=MAX_POINTS)
    labels: list[PointLabel] = Field(default_factory=list, max_length=MAX_POINTS)
    box: tuple[Coordinate, Coordinate, Coordinate, Coordinate] | None = None


class AcceptRequest(ImageRequest):
    prediction: Annotated[str, Field(min_length=1, max_length=64)]
    candidate: Annotated[int, Field(ge=0, le=15, strict=True)]
    class_name: Annotated[str, Field(alias="class", min_length=1, max_length=100)]
    # The proposal this corrects, replaced by it.
    proposal: Annotated[int | None, Field(ge=1, strict=True)] = None


class DeleteRequest(ImageRequest):
    instance: Annotated[int, Field(ge=1, strict=True)]


def _well_formed(version: str | None) -> str | None:
    """A malformed version ("", "garbage") is bad input (422), not one of an earlier start (409)."""
    if version is not None and not VERSION.fullmatch(version):
        raise PydanticCustomError("version", VERSION_FORM)
    return version


class VersionedRequest(ImageRequest):
    """A change refused where the image changed since the page got ``version`` (its detail's; None:
    unchecked): undo and redo would wipe that change, done and good discard proposals it brought."""

    version: Annotated[str | None, Field(max_length=64), AfterValidator(_well_formed)] = None


class StatusRequest(VersionedRequest):
    status: Literal["done", "good", "open"]


@router.post("/predict")
def predict(body: PredictRequest, context: Context) -> JSONResponse:
    """Three candidate masks (COCO RLE previews) for a prompt; 503 when the decoder's queue is full."""
    started = time.perf_counter()
    path = context.session.image_path(body.image)
    prediction = context.predictor.predict(
        body.image, path, points=body.points, labels=body.labels, box=body.box
    )
    return json_response(prediction_json(prediction, server_s=time.perf_counter() - started))


def prediction_json(prediction: Prediction, *, server_s: float) -> dict:
    """The answer to a click: its id, the preview size, candidates, the best one, and timings in ms.

    ``crop``: ``[x0, y0, side]`` of the zoomed crop it was decoded on (image pixels), or None;
    ``ms.crop``: the time to get that crop's embedding (an encoder run the first time).
    """
    window = prediction.window
    candidates = [
        {"rle": mask_to_rle(mask), "score": round(float(score), 4)}
        for mask, score in zip(prediction.masks, prediction.scores, strict=True)
    ]
    return {
        "prediction": prediction.id,
        "size": list(prediction.masks.shape[1:]),
        "candidates": candidates,
        "best": prediction.best,
        "crop": None if window is None else [window.x0, window.y0, window.side],
        "ms": {
            "decode": round(prediction.decode_s * 1e3, 1),
            "predict": round(prediction.total_s * 1e3, 1),
            "decode_cpu": round(prediction.decode_cpu_s * 1e3, 1),
            "predict_cpu": round(prediction.total_cpu_s * 1e3, 1),
            "queue": round(prediction.queue_s * 1e3, 1),
            "crop": round(prediction.crop_s * 1e3, 1),
            "server": round(server_s * 1e3, 1),
        },
    }


@router.post("/accept")
def accept(body: AcceptRequest, context: Context) -> JSONResponse:
    """Saves candidate ``candidate`` of ``prediction`` as an instance of ``class``, at full resolution.

    With ``proposal``, the instance replaces that undecided proposal (the user corrected it).
    """
    session, predictor = context.session, context.predictor
    session.entry(body.image)
    if body.class_name not in session.classes:
        raise AnnotationError(f"unknown class '{body.class_name}' (classes: {', '.join(session.classes)})")
    prediction = predictor.prediction(body.prediction, body.image)
    mask = predictor.full_mask(prediction, body.candidate)
    session.add_instance(
        body.image,
        class_name=body.class_name,
        mask=mask,
        score=float(prediction.scores[body.candidate]),
        prompt=prediction.prompt,
        proposal=body.proposal,
    )
    return json_response(image_detail(context, body.image))


@router.post("/delete")
def delete(body: DeleteRequest, context: Context) -> JSONResponse:
    context.session.delete_instance(body.image, body.instance)
    return json_response(image_detail(context, body.image))


@router.post("/status")
def set_status(body: StatusRequest, context: Context) -> JSONResponse:
    """``done`` (needs an instance), ``good`` (needs none) or ``open``; refused (409) where the image
    changed since the page got ``version``: done and good would discard proposals it never showed."""
    context.session.set_status(body.image, body.status, version=body.version)
    return json_response(image_detail(context, body.image))


@router.post("/undo")
def undo(body: VersionedRequest, context: Context) -> JSONResponse:
    """Refused (409) where the image changed since the page got ``version``: the undo would wipe that."""
    context.session.undo(body.image, version=body.version)
    return json_response(image_detail(context, body.image))


@router.post("/redo")
def redo(body: VersionedRequest, context: Context) -> JSONResponse:
    context.session.redo(body.image, version=body.version)
    return json_response(image_detail(context, body.image))
