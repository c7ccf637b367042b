"""YOLO + COCO of the labelled images, written into ``<out>/export``; the running export's progress and
its cancel."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import Field

from converters.convert import format_report
from segmentation.annotate.routes.shared import Body, Context, json_response

router = APIRouter(prefix="/api")


#: An export's id: the server's, or one the page draws before it asks for the export.
ExportId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


class ExportRequest(Body):
    task: Literal["detect", "segment"] = "detect"
    id: ExportId | None = None  # the page's own, so that a cancel sent before this request came stops it


class CancelRequest(Body):
    id: ExportId  # the export's: the page's own, or from GET /api/export/status


@router.post("/export")
def export_dataset(context: Context, body: ExportRequest | None = None) -> JSONResponse:
    """``{task, id}`` (``detect``: boxes, ``segment``: polygons; ``id``: optional, the export's name for
    its cancel) -> ``{out, report}``; 503 while another runs (waiting for it held this request, and its
    thread, for as long as that export ran); 409 once ``POST /api/export/cancel`` stopped it (``{detail,
    cancelled: true}``, ``<out>/export`` as the last export left it), a cancel that came before it too."""
    body = body or ExportRequest()
    report = context.session.export(task=body.task, wait=False, export_id=body.id)
    return json_response({"out": str(report.out), "report": format_report(report)})


@router.get("/export/status")
def export_status(context: Context) -> JSONResponse:
    """``{running: false}``, or the running export's ``{running: true, id, stage, done, total, elapsed_s,
    cancelling}``: ``done`` photos of ``total`` at ``stage`` (``preparing``, then ``reading`` the tree,
    ``writing`` the data set) after ``elapsed_s`` seconds (no limit stops an export: its cancel does),
    which the page polls while its export request waits; ``id`` is what a cancel names."""
    return json_response(context.session.export_status())


@router.post("/export/cancel")
def cancel_export(context: Context, body: CancelRequest) -> JSONResponse:
    """``{id}`` -> ``{cancelling}``: the export of that ``id`` stops before its next photo (its request
    answered 409, the half-written folder discarded), one not begun yet before its first; false where
    that export is over."""
    return json_response({"cancelling": context.session.cancel_export(body.id)})
