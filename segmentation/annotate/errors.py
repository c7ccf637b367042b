"""Errors of the annotation app, one per HTTP status the server answers with.

All are :class:`~common.errors.UserError` (a ``ValueError``), so the
CLI prints any of them as one ``error:`` line, like the converters do.
"""

from __future__ import annotations

from common.errors import UserError


class AnnotationError(UserError):
    """A request or option that cannot be carried out as given (HTTP 400)."""

    status_code = 400


class NotFoundError(AnnotationError):
    """An unknown image, instance, prediction or file (HTTP 404)."""

    status_code = 404


class ConflictError(AnnotationError):
    """A request that does not fit the current state, e.g. marking good an image with defects (HTTP 409)."""

    status_code = 409


class StorageError(AnnotationError):
    """A file the server must write cannot be written: a full disk, a read-only folder (HTTP 507).

    The message says what was saved: nothing (the state could not be written), or the change
    without the photo's files in the tree (rewritten from the state at the next start or export).
    The latter names the photo (``image``) and the version its saved change gave it (``version``):
    the answer carries its detail with that version, as the change's own answer would.
    """

    status_code = 507

    def __init__(self, message: str, *, image: str | None = None, version: str | None = None) -> None:
        super().__init__(message)
        self.image = image  # the photo whose change was saved all the same; None: nothing saved
        self.version = version


class BusyError(AnnotationError):
    """The decoder's queue is full, or the server is stopping: try again shortly (HTTP 503).

    Answered with a ``Retry-After`` header of :attr:`retry_after_s` seconds; nothing
    was done, so the request may be sent again as it was.
    """

    status_code = 503
    retry_after_s = 1


class ExportCancelledError(ConflictError):
    """An export stopped between photos at the page's request (HTTP 409): the export folder is left as the
    last export wrote it (:meth:`~segmentation.annotate.session.AnnotationSession.cancel_export`)."""
