"""The session, its images and their embeddings: what the page lists and shows."""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable
from typing import Annotated

import cv2
import numpy as np
import torch
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from converters.masks import mask_to_rle
from segmentation.annotate import export
from segmentation.annotate.records import Instance
from segmentation.annotate.routes.shared import AppContext, Context, ImageRequest, json_response

router = APIRouter(prefix="/api")

ImageQuery = Annotated[str, Query(min_length=1, max_length=1024)]


@router.get("/session")
def get_session(context: Context) -> JSONResponse:
    """Classes, category, the image list with statuses, the current image, the model."""
    session, predictor = context.session, context.predictor
    images = []
    for key in session.keys:
        entry = session.entry(key)
        images.append(
            {
                "image": key,
                "status": entry.status,
                "instances": len(entry.instances),
                "proposals": len(entry.proposals),
            }
        )
    return json_response(
        {
            "category": session.category,
            "classes": session.classes,
            "images": images,
            "current": session.current,
            "counts": session.counts(),
            "out": str(session.out),
            "images_dir": str(session.images_dir),
            "model": context.model_name,
            "img_size": predictor.img_size,
            "torch_threads": torch.get_num_threads(),
            "decoder_runtime": predictor.runtime,
            "crop_fraction": predictor.crops.rule.max_fraction if predictor.crops else 0.0,
            "colour_head": predictor.colour_head is not None,
            "colour_prompt": predictor.colour_prompt is not None,
            "detector": context.detector.name if context.detector else None,
        }
    )


@router.get("/image")
def get_image(image: ImageQuery, context: Context) -> JSONResponse:
    """The photo being opened; replaced on disk by one of another size, its labels are set aside first
    (``notice`` says where); by another photo of its size, the detector's proposals of the old one are
    dropped (``notice`` says so) and the detector is pending again, and so are the undecided proposals
    of the ``--proposals`` file."""
    notice = context.session.refresh_size(image)
    if context.detector is not None:
        notice = context.detector.refresh(image) or notice
    if context.file_proposals is not None:
        notice = context.file_proposals.refresh(image) or notice
    return json_response({**image_detail(context, image), "notice": notice})


@router.get("/embedding")
def get_embedding(image: ImageQuery, context: Context) -> JSONResponse:
    """The embedding's state and progress; asks for it if it is not on its way yet."""
    return json_response(context.prefetcher.request(context.session.image_path(image)).to_json())


@router.post("/current")
def set_current(body: ImageRequest, context: Context) -> JSONResponse:
    """The user opened ``image``: its embedding first, then the next ones (and their proposals) behind."""
    session, prefetcher = context.session, context.prefetcher
    path = session.image_path(body.image)
    session.set_current(body.image)
    status = prefetcher.request(path)
    neighbours = session.neighbours(body.image, context.prefetch)
    prefetcher.prefetch(session.image_path(k) for k in neighbours)
    if context.detector is not None:
        context.detector.prefetch(neighbours)
    return json_response(status.to_json())


def image_detail(context: AppContext, key: str) -> dict:
    """What the page shows of one image: sizes, status, instances and proposals (preview RLEs), undo state."""
    session = context.session
    # the detector's state before the version: "done" read after a run (a prefetch) that ended past the
    # version showed its proposals with the version from before them, and the page, asking for no run,
    # had its own D, G or undo refused; pending or running, the page asks and gets the version with them
    detector = context.detector.status(key) if context.detector else None
    # then: a change made while the rest is read leaves the version older than what is shown (an undo
    # refused, the photo read again), never newer (an undo over labels the page did not show)
    version = session.version(key)
    entry = session.entry(key)
    height, width = entry.size or export.upright_size(session.image_path(key), key)
    size = context.predictor.preview_size((height, width))
    return {
        "image": key,
        "index": session.keys.index(key),
        "url": photo_url(session.image_path(key), key),
        "width": width,
        "height": height,
        "preview": list(size),
        "status": entry.status,
        "instances": [instance_detail(context, entry.key, instance, size) for instance in entry.instances],
        "proposals": [
            {
                **proposal.to_json(),
                "rle": preview_rle(context, entry.key, f"p{proposal.id}", proposal.mask, size),
                "is_class": proposal.class_name in session.classes,  # else accepted only as one of them
            }
            for proposal in entry.proposals
        ],
        "detector": detector,
        "version": version,  # undo and redo send it back (AnnotationSession.undo)
        "can_undo": bool(entry.undo_stack),
        "can_redo": bool(entry.redo_stack),
        "counts": session.counts(),
        "embedding": context.prefetcher.status(session.image_path(key)).to_json(),
    }


def photo_url(path, key: str) -> str:
    """``key``'s address, with its file's time and size: a photo replaced on disk gets another, so the browser
    reads it again (at the same address, it showed the old picture from its cache)."""
    try:
        stat = path.stat()
    except OSError:
        stat = None  # gone: the file's route says so
    tag = f"?v={stat.st_mtime_ns:x}-{stat.st_size:x}" if stat else ""
    return "/files/images/" + urllib.parse.quote(key) + tag


def instance_detail(context: AppContext, image: str, instance: Instance, size: tuple[int, int]) -> dict:
    """What the page shows of one accepted instance; its mask decoded at most once for the preview at
    ``size`` ``(h, w)`` and the count of its pieces (a new instance needs both)."""
    mask = functools.cache(instance.mask)
    return {
        "id": instance.id,
        "class": instance.class_name,
        "area": instance.area,
        "box": list(instance.box),
        "score": instance.score,
        "rle": preview_rle(context, image, f"i{instance.id}", mask, size),
        "pieces": mask_pieces(context, image, f"i{instance.id}", mask),
    }


def mask_pieces(context: AppContext, image: str, name: str, mask: Callable[[], np.ndarray]) -> int:
    """How many 8-connected pieces an instance's full-resolution ``mask()`` has, once per instance.

    Every export splits masks into such pieces (``converters.masks.mask_to_instances``), so the
    page says when one accepted instance will be several.
    """
    key = (image, name)
    if key not in context.pieces:
        context.pieces[key] = cv2.connectedComponents(mask().view(np.uint8), connectivity=8)[0] - 1
    return context.pieces[key]


def preview_rle(
    context: AppContext, image: str, name: str, mask: Callable[[], np.ndarray], size: tuple[int, int]
) -> dict:
    """COCO RLE of an instance's or a proposal's ``mask()`` at the preview ``size`` ``(h, w)``, once."""
    key = (image, name, f"{size[0]}x{size[1]}")
    if key not in context.previews:
        mask = mask()
        if mask.shape != size:  # area: any pixel covered shows, so one-pixel scratches stay visible
            pixels = mask.view(np.uint8) * np.uint8(255)
            mask = cv2.resize(pixels, (size[1], size[0]), interpolation=cv2.INTER_AREA) > 0
        context.previews[key] = mask_to_rle(mask)
    return context.previews[key]
