"""The ``--proposals`` file's proposals of a photo replaced on disk while the page runs: dropped.

The file was written for the photos on disk when the page started (its masks were checked against
their sizes then). A photo replaced since (same name, other bytes; a file merely touched is the same
photo) loses the file's undecided proposals when it is opened, undo included, with a notice, as the
detector's are (:meth:`~segmentation.annotate.detector.DetectorProposals.refresh`). The file stays
among the photo's proposers, so a restart does not put the old photo's proposals on the new one;
accepted instances stay: the user decided them.

Where the file records the sha256 of the photos it proposed on (``inspection.predict``'s ``images.json``),
a photo is compared with it when first opened, not read at the start: one that differs (another photo
set of the same names, a photo replaced while the page was stopped) loses the file's undecided proposals
so. A file that records none takes the photos at the start as the ones it was written for (each hashed
then: telling a photo merely touched from one replaced needs the bytes of the first).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

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
        digests: key -> the sha256 the file records of the photo it proposed on
            (:func:`~segmentation.annotate.proposal_file.recorded_digests`); those photos are not read
            before they are opened.
    """

    def __init__(
        self, session: AnnotationSession, *, source: str, name: str, digests: Mapping[str, str] | None = None
    ) -> None:
        self.session, self.source, self.name = session, source, name
        self._lock = threading.Lock()
        #: key -> the photo's file key and sha256 when it was last known to be the file's photo.
        self._photos: dict[str, tuple[FileKey, str]] = {}
        #: key -> the sha256 the file records, for the photos not yet compared with it.
        self._recorded: dict[str, str] = {}
        for key in session.keys:
            if not any(p.source == name for p in session.entry(key).proposals):
                continue
            if digests and key in digests:
                self._recorded[key] = digests[key]
                continue
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
            if key in self._recorded:
                return self._compare_recorded(key)
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
            notice = self._drop(key, f"{key} changed on disk since {self.name} proposed on it")
            del self._photos[key]  # once dropped: a drop the disk refused is tried again at the next opening
            return notice

    def _compare_recorded(self, key: str) -> str | None:
        """:meth:`refresh` of a photo whose sha256 the file records, at its first opening (lock held)."""
        path = self.session.image_path(key)
        now = file_key(path)
        try:
            digest = sha256_file(path, what="photo")
        except UserError:  # unreadable now: compared at the next opening
            return None
        if digest == self._recorded[key]:
            del self._recorded[key]
            self._photos[key] = (now, digest)
            return None
        why = f"{key} is not the photo {self.name} proposed on (images.json records another sha256)"
        notice = self._drop(key, why, photo="that photo")
        del self._recorded[key]  # once dropped, as in refresh
        return notice

    def _drop(self, key: str, why: str, photo: str = "the old photo") -> str | None:
        """Drops the file's undecided proposals of ``key``; ``why: what was dropped``, or None for none."""
        dropped = self.session.drop_proposals(key, source=self.source, name=self.name, keep_source=True)
        if not dropped:  # decided meanwhile (accepted, deleted, or the photo marked done or good)
            return None
        return f"{why}: {dropped_text(dropped, photo)}"
