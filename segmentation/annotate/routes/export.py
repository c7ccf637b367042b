"""YOLO + COCO of the labelled images, written into ``<out>/export``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from converters.convert import format_report
from segmentation.annotate.routes.shared import Body, Context, json_response

router = APIRouter(prefix="/api")


class ExportRequest(Body):
    task: Literal["detect", "segment"] = "detect"


@router.post("/export")
def export_dataset(context: Context, body: ExportRequest | None = None) -> JSONResponse:
    """``{task}`` (``detect``: boxes, ``segment``: polygons) -> ``{out, report}``; 503 while another runs
    (waiting for it held this request, and its thread, for as long as that export ran)."""
    report = context.session.export(task=(body or ExportRequest()).task, wait=False)
    return json_response({"out": str(report.out), "report": format_report(report)})
