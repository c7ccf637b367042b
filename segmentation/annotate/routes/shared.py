"""What every router of the annotation server shares: the app's context, request bodies, JSON answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from segmentation.annotate.detector import DetectorProposals
from segmentation.annotate.file_proposals import FileProposals
from segmentation.annotate.predictor import InteractivePredictor
from segmentation.annotate.prefetch import EmbeddingPrefetcher
from segmentation.annotate.session import AnnotationSession

#: Answers that change with every request must never come from the browser's cache.
NO_STORE = {"Cache-Control": "no-store"}

ImageKey = Annotated[str, Field(min_length=1, max_length=1024)]


@dataclass
class AppContext:
    """The state behind every route: one session, its embeddings, SAM, and the page's settings.

    Attributes:
        session: the annotation state of ``--out``.
        prefetcher: embeddings, computed ahead in a background thread.
        predictor: clicks to masks, on the decoder thread.
        model_name: shown on the page.
        prefetch: images after the current one embedded ahead.
        detector: proposals from ``--detector``, None without one.
        file_proposals: the photos holding ``--proposals`` file proposals, None without a file.
        previews: ``(image, "i<instance id>" or "p<proposal id>", "HxW") -> preview RLE``:
            instances and proposals never change, and full-resolution masks are costly to shrink.
        pieces: ``(image, "i<instance id>") -> 8-connected pieces`` of an instance's mask, each
            of which every export makes an instance of its own (the MVTec masks hold no instance ids).
    """

    session: AnnotationSession
    prefetcher: EmbeddingPrefetcher
    predictor: InteractivePredictor
    model_name: str
    prefetch: int
    detector: DetectorProposals | None = None
    file_proposals: FileProposals | None = None
    previews: dict[tuple[str, str, str], dict] = field(default_factory=dict)
    pieces: dict[tuple[str, str], int] = field(default_factory=dict)

    def close(self) -> None:
        """Stops the detector's background thread, the decoder thread, then the embedding worker."""
        if self.detector is not None:
            self.detector.close()
        self.predictor.close()
        self.prefetcher.close()


async def app_context(request: Request) -> AppContext:
    """The dependency every route takes its context from (async: no thread-pool hop for a lookup)."""
    return request.app.state.context


Context = Annotated[AppContext, Depends(app_context)]


class Body(BaseModel):
    """A request body: unknown fields are refused, ``class`` may be sent for ``class_name``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ImageRequest(Body):
    image: ImageKey


def json_response(content: dict) -> JSONResponse:
    """A JSON answer the browser does not cache."""
    return JSONResponse(content, headers=NO_STORE)
