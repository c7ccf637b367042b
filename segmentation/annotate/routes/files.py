"""The page, its static files, and the files the page shows from ``--images`` and ``--out``.

Every path goes through :func:`segmentation.annotate.files.resolve_inside`: a
request never reads outside these three folders.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from common.exif import is_rotated
from common.images import has_alpha
from segmentation.annotate import export
from segmentation.annotate.files import resolve_inside
from segmentation.annotate.routes.shared import NO_STORE, Context
from segmentation.embeddings import load_rgb

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
#: Suffixes browsers display themselves; other image files are sent as PNG.
BROWSER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
#: Of those, the ones every browser turns as their EXIF orientation says, as SAM sees them. Chromium
#: draws a rotated WebP as stored, so it is sent upright as PNG; so is a rotated PNG (Chromium turns
#: it, but a PNG's eXIf chunk is not known to be applied by every browser, as a JPEG's tag is).
ORIENTED_SUFFIXES = (".jpg", ".jpeg")

router = APIRouter()


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers=NO_STORE)


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    return FileResponse(resolve_inside(STATIC_DIR, name), headers=NO_STORE)


@router.get("/files/images/{path:path}")
def image_file(path: str, context: Context) -> Response:
    """A photo of ``--images``; formats browsers cannot show (TIFF), not upright as the page's masks
    are (an EXIF-rotated WebP or PNG), or with an alpha channel, as the upright PNG SAM sees.

    A browser lays a photo with alpha over the page (a part faded or hidden) while SAM, as every model
    here, reads the colours beneath (:func:`common.images.has_alpha`): the outlines were drawn on another
    picture than the one they segment.
    """
    target = resolve_inside(context.session.images_dir, path)
    suffix = target.suffix.lower()
    if (
        suffix in BROWSER_SUFFIXES
        and (suffix in ORIENTED_SUFFIXES or not is_rotated(target))
        and not has_alpha(target)
    ):
        return FileResponse(target)
    return Response(export.encode_png(load_rgb(target)), media_type="image/png")


@router.get("/files/out/{path:path}")
def out_file(path: str, context: Context) -> FileResponse:
    """A file of ``--out``: the written masks and image copies, the state."""
    return FileResponse(resolve_inside(context.session.out, path), headers=NO_STORE)
