"""YOLO + COCO of the labelled images, written into ``<out>/export``; the running export's progress and
its cancel."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from converters.convert import format_report
from segmentation.annotate.routes.shared import Body, Context, json_response

router = APIRouter(prefix="/api")


class ExportRequest(Body):
    task: Literal["detect", "segment"] = "detect"


class CancelRequest(Body):
    id: str  # the export's, from GET /api/export/status


@router.post("/export")
def export_dataset(context: Context, body: ExportRequest | None = None) -> JSONResponse:
    """``{task}`` (``detect``: boxes, ``segment``: polygons) -> ``{out, report}``; 503 while another runs
    (waiting for it held this request, and its thread, for as long as that export ran); 409 once
    ``POST /api/export/cancel`` stopped it (``{detail, cancelled: true}``, ``<out>/export`` as the last
    export left it)."""
    report = context.session.export(task=(body or ExportRequest()).task, wait=False)
    return json_response({"out": str(report.out), "report": format_report(report)})


@router.get("/export/status")
def export_status(context: Context) -> JSONResponse:
    """``{running: false}``, or the running export's ``{running: true, id, stage, done, total,
    cancelling}``: ``done`` photos of ``total`` at ``stage`` (``preparing``, then ``reading`` the tree,
    ``writing`` the data set), which the page polls while its export request waits; ``id`` is what a
    cancel names."""
    return json_response(context.session.export_status())


@router.post("/export/cancel")
def cancel_export(context: Context, body: CancelRequest) -> JSONResponse:
    """``{id}`` -> ``{cancelling}``: the running export of that ``id`` stops before its next photo (its
    request answered 409, the half-written folder discarded); false where none runs or another does."""
    return json_response({"cancelling": context.session.cancel_export(body.id)})
