"""Proposals (``--proposals`` or ``--detector``): list, detect, accept, accept all, delete.

Accepting one saves it the way a drawn instance is saved (the same session
code, one undoable change); a corrected one is accepted through
``POST /api/accept`` with its ``proposal`` id. Every change answers with the image's new detail
(:func:`segmentation.annotate.routes.images.image_detail`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from segmentation.annotate.errors import ConflictError
from segmentation.annotate.routes.images import ImageQuery, image_detail
from segmentation.annotate.routes.shared import Context, ImageRequest, json_response

router = APIRouter(prefix="/api/proposals")


class ProposalRequest(ImageRequest):
    proposal: Annotated[int, Field(ge=1, strict=True)]  # strict: true is not proposal 1


class AcceptProposalRequest(ProposalRequest):
    class_name: Annotated[str | None, Field(alias="class", min_length=1, max_length=100)] = None


@router.get("")
def get_proposals(image: ImageQuery, context: Context) -> JSONResponse:
    """``{image, proposals, detector, version}``: the undecided proposals (preview RLEs), the detector's
    state and the image's version (proposals added move it: undo and status send back the one shown)."""
    detail = image_detail(context, image)
    return json_response({key: detail[key] for key in ("image", "proposals", "detector", "version")})


@router.post("/detect")
def detect(body: ImageRequest, context: Context, request: Request) -> JSONResponse:
    """Runs ``--detector`` on the image unless it has run there (waits for its embedding); 503 when busy.

    ``notice``: what was set aside or dropped of a photo replaced on disk since it was opened (the page
    asks again after a busy answer without opening it again), else None. A file error once the detector's
    proposals may be saved is a 507 with ``saved`` null (``request.state.may_be_saved``); one before it ran
    (the photo unreadable) saved nothing, and its 507 says not so.
    """
    if context.detector is None:
        raise ConflictError("no detector: start the app with --detector WEIGHTS")
    notice = context.detector.propose(body.image)
    request.state.may_be_saved = True
    return json_response({**image_detail(context, body.image), "notice": notice})


@router.post("/accept")
def accept(body: AcceptProposalRequest, context: Context) -> JSONResponse:
    """Saves the proposal as an instance of its class (or ``class``); 409 for a proposal whose class is
    not one of the session's (a proposals file's ``anomaly``) without ``class``, saying what to do."""
    context.session.accept_proposals(body.image, [body.proposal], class_name=body.class_name)
    return json_response(image_detail(context, body.image))


@router.post("/accept-all")
def accept_all(body: ImageRequest, context: Context) -> JSONResponse:
    """Saves every undecided proposal of the image as an instance, in one change (one undo).

    Those whose class is not one of the session's stay undecided: ``notice`` says what to do with
    them (else None); 409 when no other is left to accept.
    """
    accepted = context.session.accept_proposals(body.image)
    notice = context.session.not_a_class_notice(body.image)
    return json_response({**image_detail(context, body.image), "accepted": len(accepted), "notice": notice})


@router.post("/delete")
def delete(body: ProposalRequest, context: Context) -> JSONResponse:
    context.session.delete_proposal(body.image, body.proposal)
    return json_response(image_detail(context, body.image))
