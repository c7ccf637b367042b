"""The ``--proposals`` file's proposals of a photo replaced on disk while the page runs: dropped.

The file was written for the photos on disk when the page started (its masks were checked against
their sizes then). A photo replaced since (same name, other bytes; a file merely touched is the same
photo) loses the file's undecided proposals when it is opened, undo included, with a notice, as the
detector's are (:meth:`~segmentation.annotate.detector.DetectorProposals.refresh`). The file stays
among the photo's proposers, so a restart does not put the old photo's proposals on the new one;
accepted instances stay: the user decided them. A photo replaced while the page was stopped is
taken as the one the file was written for.
"""

from __future__ import annotations

import threading

from common.errors import UserError
from common.io import sha256_file
from segmentation.annotate.prefetch import FileKey, file_key
from segmentation.annotate.proposals import dropped_text
from segmentation.annotate.session import AnnotationSession


class FileProposals:
    """The photos holding undecided proposals of one proposals file, as they were at the start.

    Args:
        session: the session the file's proposals were added to (``add_proposals``), before this.
        source: the file's :attr:`~segmentation.annotate.proposal_file.ProposalFile.source`.
        name: its proposals' :attr:`~segmentation.annotate.proposals.Proposal.source` (the file name).
    """

    def __init__(self, session: AnnotationSession, *, source: str, name: str) -> None:
        self.session, self.source, self.name = session, source, name
        self._lock = threading.Lock()
        #: key -> the photo's file key and sha256 at the start; only photos with the file's proposals.
        self._photos: dict[str, tuple[FileKey, str]] = {}
        for key in session.keys:
            if any(p.source == name for p in session.entry(key).proposals):
                path = session.image_path(key)
                try:
                    self._photos[key] = (file_key(path), sha256_file(path, what="photo"))
                except UserError:  # unreadable: opening it names the file
                    continue

    def refresh(self, key: str) -> str | None:
        """Drops the file's undecided proposals of ``key`` if its photo is another one now.

        Returns:
            A one-line notice when proposals were dropped, else None.
        """
        with self._lock:
            known = self._photos.get(key)
            if known is None:
                return None
            path = self.session.image_path(key)
            now = file_key(path)
            if now == known[0]:
                return None
            try:
                digest = sha256_file(path, what="photo")
            except UserError:  # unreadable now (missing, mid-write): opening it names the file
                return None
            if digest == known[1]:
                self._photos[key] = (now, digest)
                return None
            del self._photos[key]
            dropped = self.session.drop_proposals(key, source=self.source, name=self.name, keep_source=True)
        if not dropped:  # decided meanwhile (accepted, deleted, or the photo marked done or good)
            return None
        return f"{key} changed on disk since {self.name} proposed on it: {dropped_text(dropped)}"
