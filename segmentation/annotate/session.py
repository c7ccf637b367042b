"""The annotation state of one ``--out`` folder: images, their status and instances, undo/redo.

Pure bookkeeping plus persistence; no model here. The state file
``<out>/annotate_state.json`` is the source of truth: every change (accept,
delete, status, undo, redo, moving to another image) rewrites it atomically
before the MVTec tree is brought in line (:mod:`segmentation.annotate.export`),
so a killed server loses nothing that was answered, and opening the same
``--out`` again resumes, with the tree repaired if it was cut short.

Statuses of an image:

- ``unlabelled``: nothing accepted yet, no files in the tree;
- ``in_progress``: at least one instance accepted;
- ``done``: the user says all its defects are labelled;
- ``good``: the user says it has no defect; copied to ``test/good``.

Undo and redo are per image and kept in memory only: a restart keeps the
annotations, not their history. Undo restores the image's whole state before its
last change: a page asking for it names the :meth:`AnnotationSession.version` of
the image it shows, and is refused when another tab changed the image since (its
undo would wipe that change), or proposals were added or dropped, or the photo was
replaced by one of another size. A status change does the same: done and good discard
the image's undecided proposals, some of which that page may never have shown (a detector
run by another tab, or ahead of this one, adds them).

Proposals (:mod:`segmentation.annotate.proposals`) are instances a model
suggests. They are kept per image, saved with the state, until the user
accepts one (it becomes an instance, through the same code as a drawn one),
deletes it, or marks the image done or good (which discards the undecided
ones); each of these is one undoable change. An image takes the proposals of
a source (a file, a detector) once: decided ones never come back.

A photo replaced on disk by one of another size (same name) cannot keep its
outlines: they fit the old pixels. At the start, or when the page opens it,
its labels and the tree's copy and mask of the old photo are moved to
``<out>/replaced/<stem>-<time>/`` and it starts unlabelled
(:meth:`AnnotationSession.refresh_size`), with a one-line notice naming the folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np

from common.errors import UnreadableFileError, UserError, file_error, read_advice, write_advice
from common.folders import check_output_folder
from common.io import atomic_write, write_failure
from converters.convert import ConversionReport
from converters.masks import mask_to_rle, mask_to_xyxy, rle_to_mask, rle_to_xyxy
from converters.mvtec import GOOD
from converters.yolo import MIN_IMAGE_SIDE
from segmentation.annotate import export
from segmentation.annotate.errors import (
    AnnotationError,
    BusyError,
    ConflictError,
    NotFoundError,
    StorageError,
)
from segmentation.annotate.files import resolve_inside
from segmentation.annotate.proposals import Proposal, duplicate_rles, not_a_class_text, with_ids
from segmentation.annotate.records import (
    DONE,
    IN_PROGRESS,
    STATUS_ACTIONS,
    STATUSES,
    UNLABELLED,
    ImageEntry,
    Instance,
    Snapshot,
    renamed_classes,
)
from segmentation.annotate.state_file import (
    STATE_FILE,
    STATE_FORMAT,
    STATE_VERSION,
    absolute_as_typed,
    category_of,
    check_new_category,
    check_same_photos,
    class_names_of,
    entry_lines,
    images_dir_of,
    listed_entries,
    read_state,
    replaced_size,
    saved_name_warnings,
    state_text,
    stored_entries,
    stored_folder,
    tree_of,
)

logger = logging.getLogger(__name__)

#: Why a photo's :meth:`AnnotationSession.version` moved, as a refusal of a page that did not see it says:
#: ``<photo> <why> since this page showed it``.
CHANGED = "was changed in another tab"
PROPOSED = "was given new proposals"
DROPPED = "was replaced on disk, and its proposals of the old photo were dropped"
RESIZED = "was replaced on disk by a photo of another size"

#: A :meth:`AnnotationSession.version`: the start's token (8 hex digits), "-", the photo's revision.
VERSION = re.compile(r"[0-9a-f]{8}-[0-9]{1,18}")
#: What a malformed version is told it should be (the app's 422, :meth:`AnnotationSession.undo`'s 400).
VERSION_FORM = "should be a version an image detail gave (8 hex digits, '-', a count)"


class AnnotationSession:
    """All annotations of one ``--out`` folder, with atomic persistence (see the module docstring).

    Thread-safe: every public method holds one lock, so the server may call it
    from its worker threads.

    Use :meth:`open`, which creates or resumes the state.
    """

    def __init__(
        self,
        *,
        out: Path,
        images_dir: Path,
        category: str,
        classes: list[str],
        entries: dict[str, ImageEntry],
        current: str | None,
        unreadable: Sequence[str] = (),
        replaced: Mapping[str, tuple[int, int]] | None = None,
        photos_gone: bool = False,
        category_was: str | None = None,
        warnings: Sequence[str] = (),
    ) -> None:
        self.out = out
        self.images_dir = images_dir
        self.category = category
        self.classes = classes
        self._entries = entries
        self._current = current
        self._lock = threading.RLock()
        #: Undoable changes, undo and redo counted since the start (:attr:`ImageEntry.revision`), and
        #: this start's token: a version a page got before a restart is not one of this start's.
        self._revisions = 0
        self._started = secrets.token_hex(4)
        #: The lines of ``images`` in the state file written last (:meth:`_save`); None before the first.
        self._entry_lines: str | None = None
        #: Listed files whose header reads as no image (empty, text, a claimed size over the limit):
        #: they can be neither opened nor marked good, so the command names them.
        self.unreadable = list(unreadable)
        #: Photos replaced on disk by one of another size, with that size: :meth:`persist` sets their
        #: labels aside (:meth:`refresh_size`).
        self._replaced = dict(replaced or {})
        #: One-line notices of what :meth:`persist` did that the user must hear of (labels set aside).
        self.notices: list[str] = []
        #: ``warning:`` lines of what the read found (names saved before the rules refused them,
        #: :func:`~segmentation.annotate.state_file.saved_name_warnings`): the command prints them, once.
        self.warnings = list(warnings)
        #: Read for an export with the photo folder gone: the tree's copies stand in for the photos.
        self.photos_gone = photos_gone
        #: The category's name before a rename not yet finished on disk (:meth:`rename_category`).
        self._category_was = category_was
        #: Held by an export; the tree is read without :attr:`_lock` (:meth:`export`).
        self._export_lock = threading.Lock()
        #: The running export's progress and its cancel (:meth:`export_status`, :meth:`cancel_export`).
        self._export_progress: export.ExportProgress | None = None
        #: The last exports' ids, and cancels that came before their export began (the page names its
        #: export before asking for it); both guarded by :attr:`_cancel_lock` (:meth:`cancel_export`).
        self._export_ids: deque[str] = deque(maxlen=16)
        self._cancels_ahead: deque[str] = deque(maxlen=16)
        self._cancel_lock = threading.Lock()
        #: While an export reads the tree: the photos changed meanwhile, whose files wait for it to end.
        self._tree_read: set[str] | None = None
        #: The last value-coded mask composed: its photo, instances, classes and mask (:meth:`_composed`).
        self._last_composed: tuple[str, tuple[Instance, ...], list[str], np.ndarray] | None = None

    # ------------------------------------------------------------------------------------------
    # Opening

    @classmethod
    def open(
        cls,
        out: str | Path,
        images: str | Path | None = None,
        *,
        classes: Sequence[str] | None = None,
        category: str | None = None,
        default_classes: Sequence[str] | None = None,
    ) -> AnnotationSession:
        """Creates the state in ``out``, or resumes it: :meth:`read`, then :meth:`persist`.

        Raises:
            AnnotationError: see :meth:`read`.
        """
        session = cls.read(out, images, classes=classes, category=category, default_classes=default_classes)
        session.persist()
        return session

    @classmethod
    def read(
        cls,
        out: str | Path,
        images: str | Path | None = None,
        *,
        classes: Sequence[str] | None = None,
        category: str | None = None,
        default_classes: Sequence[str] | None = None,
        photos_optional: bool = False,
        renaming: Collection[str] = (),
        category_renamed_to: str | None = None,
    ) -> AnnotationSession:
        """The session of ``out`` with every option checked, writing nothing yet.

        The command line reads the session first and persists it only once the
        model has loaded, so that any bad input, the session's or the model's,
        stops it with nothing written. Call :meth:`persist` before changing it.

        Args:
            out: the output folder (created by :meth:`persist`).
            images: the folder of photos to annotate; may be left out when
                resuming (the state remembers it). Image keys are relative to it,
                so a moved folder resumes when given anew.
            classes: class names; on a resume they must start with the stored
                ones (new classes may be appended: the mask values of the old
                ones must not change). None: the stored ones, or ``defect``.
            category: category folder name; default the stored one, or the name
                of ``out``.
            default_classes: the classes of a first run without ``classes``
                (a detector's names); None: ``defect``.
            photos_optional: for an export: with ``images`` left out and the stored photo folder
                gone, the session is read from the state alone (:attr:`photos_gone`); the tree
                holds a copy of every photo with labels, which is all an export reads.
            renaming: saved classes a rename gives other names, and ``category_renamed_to``, the name it
                gives the category: such a name Windows cannot hold is not warned of in :attr:`warnings`
                (:func:`~segmentation.annotate.state_file.saved_name_warnings` asks for the rename).

        Raises:
            AnnotationError: bad names, a state written by something else, class
                lists that do not fit, ``images`` inside ``out``, no images, an ``out`` folder
                this user cannot write.
            UserError: a file stands at ``out`` or above it, or it cannot be made.
        """
        out = check_output_folder(absolute_as_typed(out))  # persist() makes it: no file in the way
        if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):  # before the model loads, not after
            raise AnnotationError(f"{out} is not writable: every change is saved there; make it writable")
        state_path = out / STATE_FILE
        stored: dict = read_state(state_path) if state_path.is_file() else {}
        # the options both ways of reading check against the state
        asked = {
            "classes": classes,
            "category": category,
            "renaming": renaming,
            "category_renamed_to": category_renamed_to,
        }
        if photos_optional and images is None and stored and not Path(stored["images_dir"]).is_dir():
            return cls._from_state(out, stored, **asked)
        return cls._from_photos(out, stored, images, default_classes=default_classes, **asked)

    @classmethod
    def _from_photos(
        cls,
        out: Path,
        stored: dict,
        images: str | Path | None,
        *,
        classes: Sequence[str] | None,
        category: str | None,
        default_classes: Sequence[str] | None,
        renaming: Collection[str] = (),
        category_renamed_to: str | None = None,
    ) -> AnnotationSession:
        """The session of ``out`` from its state (``stored``, empty on a first run) and its photo folder,
        ``images`` or the stored one (see :meth:`read`)."""
        images_dir = images_dir_of(stored, images, out)
        category = category_of(stored, category, out)
        names = class_names_of(stored, classes, default_classes, out)
        entries, keys, unreadable = listed_entries(stored, names, images_dir, out)
        if stored and images_dir.resolve() != Path(stored["images_dir"]).resolve():
            tree = tree_of(out, category, stored.get("category_was"))  # a category rename cut short
            check_same_photos(entries, images_dir, tree, annotated_in=stored["images_dir"])

        current = stored.get("current")
        replaced = {
            key: size
            for key, entry in entries.items()
            if entry.present and (size := replaced_size(entry, images_dir / key)) is not None
        }
        return cls(
            out=out,
            images_dir=images_dir,
            category=category,
            classes=names,
            entries=entries,
            current=current if current in keys else keys[0],
            unreadable=unreadable,
            replaced=replaced,
            category_was=stored.get("category_was"),
            warnings=saved_name_warnings(
                stored, out, category_renamed_to=category_renamed_to, renamed=renaming
            ),
        )

    @classmethod
    def _from_state(
        cls,
        out: Path,
        stored: dict,
        *,
        classes: Sequence[str] | None,
        category: str | None,
        renaming: Collection[str] = (),
        category_renamed_to: str | None = None,
    ) -> AnnotationSession:
        """The session of ``out`` from its state alone, its photo folder gone (see :meth:`read`).

        Every annotated photo counts as present: which were removed from the folder cannot be told,
        and the tree holds their copies either way (a photo removed from ``--images`` keeps its files).
        """
        category = category_of(stored, category, out)
        names = class_names_of(stored, classes, None, out)
        entries = stored_entries(stored, names, out)
        if not entries:
            raise AnnotationError(f"{out / STATE_FILE} lists no photos: nothing to export")
        current = stored.get("current")
        return cls(
            out=out,
            images_dir=stored_folder(stored["images_dir"]),
            category=category,
            classes=names,
            entries=entries,
            current=current if current in entries else next(iter(entries)),
            photos_gone=True,
            category_was=stored.get("category_was"),
            warnings=saved_name_warnings(
                stored, out, category_renamed_to=category_renamed_to, renamed=renaming
            ),
        )

    def persist(self, *, splits_later: bool = False) -> str | None:
        """Creates ``out``, sets aside the labels of photos replaced by ones of another size (naming
        each in :attr:`notices`), writes the state and brings the MVTec tree in line with it.

        A category rename cut short is finished first (:meth:`rename_category`), so the tree is never
        written anew beside the old folder. ``splits_later`` (a page): once its folder is renamed, the last
        export's ``splits.json`` refusing the new category in its keys stops nothing but an export
        (:meth:`export` renames them first; read by nothing else): the state keeps the old name, and the
        warning saying so is returned. Without it (a rename, whose own record of the old name would take
        that one's place), that refusal is raised.

        Raises:
            StorageError: the rename cut short cannot be finished (the state not written): its folder
                cannot be renamed, or (without ``splits_later``) the last export's ``splits.json`` rewritten.
        """
        with self._lock:
            self.out.mkdir(parents=True, exist_ok=True)
            warning = None
            try:
                self._finish_category_rename()  # one cut short: before the tree is written under the new name
            except OSError as error:
                if not (splits_later and self._in_export(error)):
                    raise self._unfinished_rename(error) from error
                warning = (
                    f"{self._splits_file} names the category {self._category_was}, not {self.category} "
                    f"({file_error(error)}): an export renames it first, and is refused until it can; "
                    f"{self._export_advice(error)}"
                )
            for key, size in self._replaced.items():
                if (notice := self._set_aside(self._entries[key], size)) is not None:
                    self.notices.append(notice)
            self._replaced = {}
            self._save()
            self._sync_tree()
            return warning

    def _unfinished_rename(self, error: OSError) -> StorageError:
        """The error of a category rename cut short that :meth:`persist` could not finish: a bare
        ``Permission denied: .../export/splits.json`` said neither what was being done nor why."""
        old = self._category_was
        if self._in_export(error):
            what = f"{self._splits_file} names the category {old} and cannot be {self._export_failed(error)}"
            advice = self._export_advice(error)
        else:
            what = f"{self.out / old} cannot be renamed to {self.category_dir}"
            advice = write_advice(error, self.out)
        return StorageError(
            f"the rename of category {old} to {self.category}, cut short earlier, must be finished before "
            f"anything else, but {what} ({file_error(error)}); {advice}, then run it again"
        )

    @property
    def _splits_file(self) -> Path:
        """The last export's split record, whose keys name the category."""
        return self.out / export.EXPORT_DIR / export.SPLITS_FILE

    def _in_export(self, error: OSError) -> bool:
        """Whether ``error`` is a read or write refused in the export folder (``splits.json`` or its
        temporary)."""
        return error.filename is not None and Path(error.filename).parent == self.out / export.EXPORT_DIR

    def _export_advice(self, error: OSError) -> str:
        """What would let the last export's ``splits.json`` be renamed: a readable file where it could not
        be read, else a writable export folder (a bare 'make .../export writable' for a file that does not
        read did not make it readable)."""
        if isinstance(error, UnreadableFileError):
            return read_advice(error, self._splits_file)
        return write_advice(error, self.out / export.EXPORT_DIR)

    @staticmethod
    def _export_failed(error: OSError) -> str:
        """What could not be done to the last export's ``splits.json``: ``read`` or ``rewritten``."""
        return "read" if isinstance(error, UnreadableFileError) else "rewritten"

    @property
    def state_path(self) -> Path:
        return self.out / STATE_FILE

    @property
    def category_dir(self) -> Path:
        return self.out / self.category

    @property
    def category_was(self) -> str | None:
        """The category's old name while its rename is not finished on disk (:meth:`rename_category`)."""
        return self._category_was

    @property
    def keys(self) -> list[str]:
        """The images on disk, in list order."""
        with self._lock:
            return [key for key, entry in self._entries.items() if entry.present]

    @property
    def current(self) -> str:
        """The image the user was last on (resumed from the state)."""
        with self._lock:
            return self._current or self.keys[0]

    def entry(self, key: str) -> ImageEntry:
        """The entry of a listed image; NotFoundError for any other key."""
        with self._lock:
            entry = self._entries.get(key) if isinstance(key, str) else None
            if entry is None or not entry.present:
                raise NotFoundError(f"unknown image: {key!r}")
            return entry

    def image_path(self, key: str) -> Path:
        """The image file of ``key``, checked to lie inside the image folder."""
        self.entry(key)
        return resolve_inside(self.images_dir, key)

    def counts(self) -> dict[str, int]:
        """Listed images per status, plus ``unreadable``: unlabelled files that are no image.

        Those are left out of ``unlabelled``: they can be neither annotated nor marked good, so they
        are not work left to do.
        """
        with self._lock:
            counts = dict.fromkeys((*STATUSES, "unreadable"), 0)
            unreadable = set(self.unreadable)
            for key, entry in self._entries.items():
                if entry.present:
                    cannot_open = entry.status == UNLABELLED and key in unreadable
                    counts["unreadable" if cannot_open else entry.status] += 1
            return counts

    def neighbours(self, key: str, count: int) -> list[str]:
        """The ``count`` images after ``key`` in list order (what the user opens next)."""
        keys = self.keys
        start = keys.index(self.entry(key).key) + 1
        return keys[start : start + count]

    def took_proposals(self, source: str) -> list[str]:
        """The images, on disk or gone from ``--images`` since, that have had ``source``'s proposals."""
        with self._lock:
            return [key for key, entry in self._entries.items() if source in entry.proposed]

    def has_proposed(self, key: str, source: str) -> bool:
        """Whether image ``key`` has had ``source``'s proposals."""
        with self._lock:
            return source in self.entry(key).proposed

    # ------------------------------------------------------------------------------------------
    # Changes: each is saved before it returns

    def refresh_size(self, key: str) -> str | None:
        """Starts ``key`` afresh if its photo was replaced on disk by one of another size.

        Its outlines (instances, proposals) fit the old photo's pixels, not the new one's: they,
        its status and the tree's copy and mask of the old photo are set aside in
        ``<out>/replaced/`` (:meth:`_set_aside`), and the photo is unlabelled at its new size. The
        page calls it when the photo is opened; :meth:`persist` does it at the start. The photo gets a
        new :meth:`version` (:data:`RESIZED`): a page still showing the old one has its done, good, undo
        or redo refused (good marked the new photo, unseen, as having no defect).

        Returns:
            A one-line notice naming where its labels went; None when nothing was set aside
            (the same size, a file that is no image, or nothing but a size to forget).

        Raises:
            BusyError: its labels would be set aside while an export reads the tree (:meth:`export`).
        """
        with self._lock:
            entry = self.entry(key)
            size = replaced_size(entry, self.image_path(key))
            if size is None:
                return None
            if self._tree_read is not None and entry.has_labels:  # its files would leave the tree being read
                raise BusyError(
                    f"{key} was replaced on disk, and an export is reading its files: try again shortly"
                )
            before = (entry.snapshot(), entry.size, entry.proposed, entry.undo_stack, entry.redo_stack)
            notice = self._set_aside(entry, size)
            try:
                self._save()
            except BaseException:  # memory stays what the disk says; the next start sets it aside again
                snapshot, entry.size, entry.proposed, entry.undo_stack, entry.redo_stack = before
                entry.restore(snapshot)
                raise
            self._revise(entry, RESIZED)  # a page showing the old photo must not mark this one good
            self._sync_saved(entry)
            return notice

    def set_current(self, key: str) -> None:
        """Remembers the photo the user opened, where a resume starts; a state the disk refuses (full,
        read-only) keeps it in memory only: opening a photo to look at it must not fail for it."""
        with self._lock:
            self.entry(key)
            if key != self._current:
                self._current = key
                try:
                    self._save(entries_changed=False)
                except StorageError as error:  # the next change saved says it, if the disk is still full
                    logger.warning("%s", error)

    def add_instance(
        self,
        key: str,
        *,
        class_name: str,
        mask: np.ndarray,
        score: float | None = None,
        prompt: dict | None = None,
        proposal: int | None = None,
    ) -> Instance:
        """Accepts an instance: ``mask`` ``(H, W)`` bool at the image's own size.

        Accepting a mask the image already has, in the same class, returns that instance and saves
        no copy: a double Enter or a client's retry must not save the defect twice (a corrected
        proposal is then only decided, and a retry of that correction answers the same).

        Args:
            proposal: the undecided proposal this instance replaces (one the user corrected);
                it goes in the same change, and comes back with its undo.

        Raises:
            AnnotationError: unknown class, empty mask, or a size other than earlier instances'.
            NotFoundError: no such undecided proposal (and the mask is not already saved).
            ConflictError: the mask covers every pixel of an instance of another class
                (:func:`check_not_hiding`).
        """
        with self._lock:
            entry = self.entry(key)
            instance = self._instance(
                entry, entry.next_id, class_name=class_name, mask=mask, score=score, prompt=prompt
            )
            same = (i for i in entry.instances if (i.class_name, i.rle) == (class_name, instance.rle))
            if (kept := next(same, None)) is not None:
                # corrected into a defect already saved: the proposal is decided, no copy; a retry of
                # a correction already saved finds its proposal decided and gets the same answer
                if proposal is not None and any(p.id == proposal for p in entry.proposals):
                    self.delete_proposal(key, proposal)
                return kept
            check_not_hiding(key, entry.instances, mask, class_name)
            replaced = [] if proposal is None else [self._proposal(entry, proposal)]
            self._change(
                entry, partial(_accept, instances=[instance], size=np.shape(mask), replaced=replaced)
            )
            return instance

    def accept_proposals(
        self, key: str, ids: Sequence[int] | None = None, *, class_name: str | None = None
    ) -> list[Instance]:
        """Accepts undecided proposals (all of them when ``ids`` is None) as instances, in one change.

        Each becomes an instance as a drawn one does (:meth:`add_instance`): its exact mask,
        its class (or ``class_name``), SAM's score, and its box and source as the prompt. A
        proposal whose class is not one of :attr:`classes` (a proposals file's ``anomaly``) takes
        ``class_name`` or nothing: all of them (``ids`` None) leaves it undecided
        (:meth:`not_a_class_notice` says so).

        Raises:
            AnnotationError: see :meth:`add_instance`.
            NotFoundError: no such undecided proposal.
            ConflictError: the image has none, one asked for is not of a class and no ``class_name``
                is given (all of them: none is of a class), or one would cover every pixel of an
                instance of another class (:func:`check_not_hiding`, as :meth:`add_instance`);
                nothing is accepted then.
        """
        with self._lock:
            entry = self.entry(key)
            chosen = list(entry.proposals) if ids is None else [self._proposal(entry, i) for i in ids]
            unnamed = [] if class_name else [p for p in chosen if p.class_name not in self.classes]
            if unnamed and (ids is not None or len(unnamed) == len(chosen)):
                raise ConflictError(f"{key}: {not_a_class_text(unnamed, self.classes)}")
            chosen = [p for p in chosen if p not in unnamed]
            if not chosen:
                raise ConflictError(f"{key} has no proposals to accept")
            instances = []
            for n, proposal in enumerate(chosen):
                mask = proposal.mask()
                # those accepted before it, and the earlier ones of this batch, lie under it in the masks
                check_not_hiding(key, [*entry.instances, *instances], mask, class_name or proposal.class_name)
                prompt = {
                    "box": list(proposal.box),
                    "proposal": {"source": proposal.source, "score": proposal.score},
                }
                instances.append(
                    self._instance(
                        entry,
                        entry.next_id + n,
                        class_name=class_name or proposal.class_name,
                        mask=mask,
                        score=proposal.mask_score,
                        prompt=prompt,
                    )
                )
            self._change(entry, partial(_accept, instances=instances, size=mask.shape, replaced=chosen))
            return instances

    def not_a_class_notice(self, key: str) -> str | None:
        """What to do with ``key``'s undecided proposals whose class is not one of :attr:`classes`
        (:func:`~segmentation.annotate.proposals.not_a_class_text`); None when it has none."""
        unnamed = [p for p in self.entry(key).proposals if p.class_name not in self.classes]
        return not_a_class_text(unnamed, self.classes) if unnamed else None

    def delete_proposal(self, key: str, proposal_id: int) -> None:
        """Rejects an undecided proposal (undo brings it back)."""
        with self._lock:
            entry = self.entry(key)
            self._proposal(entry, proposal_id)

            def delete(e: ImageEntry) -> None:
                e.proposals = [p for p in e.proposals if p.id != proposal_id]

            self._change(entry, delete)

    def add_proposals(self, proposals: Mapping[str, Sequence[Proposal]], *, source: str) -> int:
        """Gives each image its proposals from ``source``, unless it had them before; saved once.

        An image marked done or good takes none (its defects are decided), nor does one
        that had ``source``'s proposals already: accepted and deleted ones never come
        back. A proposal whose mask overlaps an instance or an undecided proposal of its
        image (IoU >= 0.5) is a duplicate and left out. Not an undoable change: the new
        proposals join every undo and redo snapshot too (but a done or good one), so undo
        never takes them away. An image given any has a new :meth:`version` (:data:`PROPOSED`): a page
        that did not show them has its done, good, undo or redo refused (done and good, and an undo or
        redo to a done or good state, would discard them unseen); the page that asked for them gets the
        version with them (``POST /api/proposals/detect`` answers the image's detail).

        Returns:
            How many proposals were added.

        Raises:
            AnnotationError: a mask of another size than the image's instances.
        """
        with self._lock:
            entries = [(self.entry(key), items) for key, items in proposals.items()]
            entries = [
                (e, items)
                for e, items in entries
                if source not in e.proposed and e.status not in (DONE, GOOD)
            ]
            before = [
                (e, e.proposals, e.next_proposal_id, e.proposed, e.undo_stack, e.redo_stack)
                for e, _ in entries
            ]
            try:
                added = [_propose(entry, items, source) for entry, items in entries]
                if entries:
                    self._save()
            except BaseException:  # memory stays what the disk says
                for e, *old in before:
                    e.proposals, e.next_proposal_id, e.proposed, e.undo_stack, e.redo_stack = old
                raise
            for (entry, _), n in zip(entries, added, strict=True):
                if n:  # a page that did not show them must not discard them (done, good, undo)
                    self._revise(entry, PROPOSED)
            return sum(added)

    def drop_proposals(self, key: str, *, source: str, name: str, keep_source: bool = False) -> int:
        """Forgets ``source``'s proposals of ``key``: its photo was replaced (same name, other bytes).

        The undecided proposals named ``name`` (their :attr:`Proposal.source`) go, from the undo and
        redo snapshots too (undo would bring back outlines of the old photo), and ``source`` is no
        longer among those it has had, so it may propose on the new photo (a detector); with
        ``keep_source`` it stays (a proposals file, written for the old photo, is not taken again).
        Accepted instances stay: the user decided them. Not an undoable change; any dropped, the
        image has a new :meth:`version` (:data:`DROPPED`).

        Returns:
            How many undecided proposals were dropped.
        """
        with self._lock:
            entry = self.entry(key)
            if source not in entry.proposed:
                return 0
            before = (entry.proposals, entry.proposed, entry.undo_stack, entry.redo_stack)
            dropped = sum(p.source == name for p in entry.proposals)
            entry.proposals = [p for p in entry.proposals if p.source != name]
            entry.proposed = entry.proposed if keep_source else [s for s in entry.proposed if s != source]
            entry.undo_stack = [_without_proposals(s, name) for s in entry.undo_stack]
            entry.redo_stack = [_without_proposals(s, name) for s in entry.redo_stack]
            try:
                self._save()
            except BaseException:  # memory stays what the disk says
                entry.proposals, entry.proposed, entry.undo_stack, entry.redo_stack = before
                raise
            if dropped:  # a page showing them shows outlines of the old photo
                self._revise(entry, DROPPED)
            return dropped

    def delete_instance(self, key: str, instance_id: int) -> None:
        with self._lock:
            entry = self.entry(key)
            if not any(i.id == instance_id for i in entry.instances):
                raise NotFoundError(f"image {key} has no instance {instance_id}")

            def delete(e: ImageEntry) -> None:
                e.instances = [i for i in e.instances if i.id != instance_id]
                if not e.instances and e.status in (IN_PROGRESS, DONE):
                    e.status = UNLABELLED

            self._change(entry, delete)

    def set_status(self, key: str, action: str, *, version: str | None = None) -> None:
        """``done`` (needs an instance), ``good`` (needs none) or ``open`` (back to work).

        Done and good discard the image's undecided proposals, in the same change.

        Args:
            version: the :meth:`version` of ``key`` that the asking page shows; None: not checked.

        Raises:
            ConflictError: ``version`` is not the image's now (another tab changed it since: done or
                good would discard proposals that page never showed), or the status does not fit the
                instances; nothing changed.
        """
        with self._lock:
            entry = self.entry(key)
            self._check_version(entry, version, f"not marked {action}")
            if action == DONE:
                if not entry.instances:
                    raise ConflictError(f"{key} has no instances: mark it good if it has no defect")
                status = DONE
            elif action == GOOD:
                if entry.instances:
                    raise ConflictError(
                        f"{key} has {len(entry.instances)} instance(s): delete them before marking it good"
                    )
                if entry.status != GOOD:  # its copy goes into test/good: refuse a photo that is no image
                    self._check_on_disk(entry)
                    export.upright_size(self.image_path(key), key)
                status = GOOD
            elif action == "open":
                status = IN_PROGRESS if entry.instances else UNLABELLED
            else:
                raise AnnotationError(
                    f"unknown status action {action!r} (one of {', '.join(STATUS_ACTIONS)})"
                )
            if status != entry.status or (status in (DONE, GOOD) and entry.proposals):
                self._change(entry, partial(_set_status, status=status))

    def version(self, key: str) -> str:
        """The version of ``key``'s labels: another after each undoable change of it, undo and redo,
        proposals added or dropped (:meth:`add_proposals`, :meth:`drop_proposals`) and a replaced photo
        started afresh (:meth:`refresh_size`)."""
        with self._lock:
            return f"{self._started}-{self.entry(key).revision}"

    def undo(self, key: str, *, version: str | None = None) -> None:
        """Restores ``key`` as it was before its last change (its whole state: status, instances,
        proposals).

        Args:
            version: the :meth:`version` of ``key`` that the asking page shows; None: not checked.

        Raises:
            ConflictError: nothing to undo, or ``version`` is not the image's now: another tab (or
                request) changed it since, and undo would wipe that change, or it is of an earlier start
                (the history is not kept across restarts); nothing changed.
            AnnotationError: ``version`` is not of the form of one (:data:`VERSION`): no page got it.
        """
        with self._lock:
            entry = self.entry(key)
            self._check_version(entry, version, "nothing undone")
            if not entry.undo_stack:
                raise ConflictError(f"nothing to undo on {key}")
            self._step(entry, entry.undo_stack, entry.redo_stack)

    def redo(self, key: str, *, version: str | None = None) -> None:
        """Brings back ``key``'s last undone change; ``version`` as for :meth:`undo`."""
        with self._lock:
            entry = self.entry(key)
            self._check_version(entry, version, "nothing redone")
            if not entry.redo_stack:
                raise ConflictError(f"nothing to redo on {key}")
            self._step(entry, entry.redo_stack, entry.undo_stack)

    def _check_version(self, entry: ImageEntry, version: str | None, refused: str) -> None:
        """``refused``: what the message says was not done ("nothing undone", "not marked done"); the
        message names what moved the version since ``version`` (:data:`CHANGED`, :data:`PROPOSED`, ...)."""
        if version is None or version == self.version(entry.key):
            return
        if not VERSION.fullmatch(version):  # no page got it: not a restart's
            raise AnnotationError(f"{entry.key}: version {version[:40]!r} {VERSION_FORM}")
        if not version.startswith(f"{self._started}-"):  # a page of an earlier start: no history left
            history = (
                ", and undo history is not kept across restarts" if refused.startswith("nothing") else ""
            )
            raise ConflictError(
                f"{entry.key}: the annotation server was restarted since this page showed it{history}: "
                f"{refused}; its labels are shown as they are now"
            )
        since = int(version.removeprefix(f"{self._started}-"))
        whys = sorted((r, why) for why, r in entry.revised_by.items() if r > since)
        raise ConflictError(
            f"{entry.key} {' and '.join(why for _, why in whys) or CHANGED} since this page showed it: "
            f"{refused}; its labels are shown as they are now"
        )

    def rename_classes(self, renames: Mapping[str, str]) -> None:
        """Gives classes new names (:func:`renamed_classes`: old name -> new), in their places, so every
        mask value stays: the state first (the classes, and the instances and undecided proposals of
        each, in one atomic write), then the tree's class folders and ``mask_values.json``.

        The state is the source of truth: cut short before it is written, nothing is renamed; after, the
        tree, renamed in part or not at all, is brought in line with it at the next start or export, as
        after any change of class. The export under ``<out>/export`` names the old classes until the next
        one, which keeps each photo's split (found by its stem in the moved folder).

        Raises:
            AnnotationError: a name :func:`renamed_classes` refuses (nothing written).
            StorageError: the state cannot be written (nothing renamed), or it was but the tree could
                not be renamed.
        """
        with self._export_lock, self._lock:  # an export reading the tree would lose its folders
            names = renamed_classes(self.classes, renames)
            renames = {old: new for old, new in renames.items() if new != old}
            if not renames:
                return
            kept = [(e, e.snapshot(), e.undo_stack, e.redo_stack) for e in self._entries.values()]
            classes = self.classes
            self.classes = names
            for entry, snapshot, undo, redo in kept:
                entry.restore(_renamed(snapshot, renames))
                entry.undo_stack = [_renamed(s, renames) for s in undo]  # undo never brings an old name back
                entry.redo_stack = [_renamed(s, renames) for s in redo]
            try:
                self._save()
            except BaseException:  # memory stays what the disk says
                self.classes = classes
                for entry, snapshot, undo, redo in kept:
                    entry.restore(snapshot)
                    entry.undo_stack, entry.redo_stack = undo, redo
                raise
            try:
                export.rename_class_folders(self.category_dir, renames)
                self._sync_tree()
            except OSError as error:
                raise StorageError(
                    f"renamed in {self.state_path.name}, but {self.category_dir} could not be renamed "
                    f"({file_error(error)}): it is brought in line at the next start or export; "
                    f"{write_advice(error, self.category_dir)}"
                ) from error

    def rename_category(self, new: str) -> None:
        """Gives the category (the tree's folder ``<out>/<category>``) a new name, checked as ``--category``
        (:func:`check_new_category`): the state first, recording the old name beside the new in one
        atomic write, then the folder (one ``os.rename``) and the last export's ``splits.json`` keys
        (:func:`export.rename_split_category`), then the state without the old name.

        Cut short before the first write, nothing is renamed; after it, the next start or export
        finishes the rename before it writes the tree (:meth:`persist`), so the tree is never written
        anew beside the old folder.

        Raises:
            AnnotationError: a name :func:`check_new_category` refuses (nothing written).
            StorageError: the state cannot be written (nothing renamed), or the folder could not be
                renamed (finished at the next start or export).
        """
        with self._export_lock, self._lock:
            check_new_category(self.out, self.category, new)
            if new == self.category:
                return
            old = self.category
            self.category, self._category_was = new, old
            try:
                self._save()
            except BaseException:  # memory stays what the disk says
                self.category, self._category_was = old, None
                raise
            try:
                self._finish_category_rename()
                self._save()
            except OSError as error:
                if self._in_export(error):  # the folder was renamed; the last export's splits.json refused
                    raise StorageError(
                        f"renamed in {self.state_path.name} and {self.out / old} to {self.category_dir}, but "
                        f"the category in {self._splits_file} could not be renamed "
                        f"({file_error(error)}): that is done at the next start or export; "
                        f"{self._export_advice(error)}"
                    ) from error
                raise StorageError(
                    f"renamed in {self.state_path.name}, but {self.out / old} could not be renamed to "
                    f"{self.category_dir} ({file_error(error)}): that is done at the next start or export; "
                    f"{write_advice(error, self.out)}"
                ) from error

    def _finish_category_rename(self) -> None:
        """Renames the folder and the split keys of the category's old name the state records; not saved.

        Each step is done once: a folder already renamed (or a new one in the way, left as it is) and
        keys already renamed are passed over.
        """
        old = self._category_was
        if old is None:
            return
        source, target = self.out / old, self.category_dir
        if source.is_dir() and not source.is_symlink():
            if not (target.exists() or target.is_symlink()) or os.path.samefile(source, target):
                os.rename(source, target)
        export.rename_split_category(self.out / export.EXPORT_DIR, old, self.category)
        self._category_was = None

    def _finish_split_keys(self) -> None:
        """Finishes a category rename whose folder is renamed, as :meth:`persist` left it for a page: the
        last export's ``splits.json`` keys, which an export reads to keep each photo in its split.

        Raises:
            StorageError: they cannot be renamed (nothing exported: each photo would be dealt anew).
        """
        old = self._category_was
        try:
            self._finish_category_rename()
        except OSError as error:
            raise StorageError(
                f"nothing exported: {self._splits_file} names the category {old}, not {self.category}, and "
                f"cannot be {self._export_failed(error)} ({file_error(error)}), so each photo would be "
                f"dealt a split anew; {self._export_advice(error)}, then export again"
            ) from error
        self._save()

    def export(
        self, *, task: str = "detect", wait: bool = True, export_id: str | None = None, bars: bool = False
    ) -> ConversionReport:
        """YOLO + COCO of the tree into ``<out>/export`` (:func:`export.export_dataset`), the tree first
        brought in line with the state (a photo's files the disk refused after its change was saved).

        The converters read the tree without the session's lock, so the page goes on during a long
        export: a change meanwhile is saved in the state at once and its photo's files are written
        once the tree is read (the export holds the photos as they were when it began); the labels of
        a photo replaced on disk are not set aside meanwhile (:meth:`refresh_size`). Exports run one
        at a time: ``wait`` False (the page's) refuses one asked while another runs, rather than hold a
        request (and the tab that sent it) for as long as that one runs. While it runs,
        :meth:`export_status` says which photo it is at, and :meth:`cancel_export` stops it between photos.
        ``export_id``: its id, drawn by the page (a random one without), which a cancel sent before the
        export began names too. ``bars``: the converters' progress bars on stderr (``--export``'s).

        Raises:
            BusyError: ``wait`` False and another export is running (nothing done).
            ExportCancelledError: :meth:`cancel_export` stopped it (``<out>/export`` as it was).
            ConflictError: no instance accepted yet.
            StorageError: the tree cannot be brought in line with the state.
            UserError: the converters' (an ``--out`` they cannot write).
        """
        # one at a time: each rewrites <out>/export, reading the last one's splits
        if not self._export_lock.acquire(blocking=wait):
            raise BusyError(
                f"nothing exported: an export into {self.out / export.EXPORT_DIR} is already running (asked "
                "by another tab or window, which shows its report): export again once it is done"
            )
        try:
            return self._export_held(task, self._begin_export(export_id), bars)
        finally:
            self._export_progress = None
            self._export_lock.release()

    def export_status(self) -> dict:
        """The running export's ``{running: true, id, stage, done, total, elapsed_s, cancelling}``
        (:class:`export.ExportProgress`), or ``{running: false}``."""
        progress = self._export_progress
        return {"running": False} if progress is None else progress.status()

    def cancel_export(self, export_id: str) -> bool:
        """Asks the export ``export_id`` to stop before its next photo (:class:`export.ExportProgress`):
        the running one, or one not begun yet (a cancel clicked as the page's export request was on its
        way, which then stops before its first photo); False where that export is over (a cancel sent as
        its export ended stopped the next one)."""
        with self._cancel_lock:
            progress = self._export_progress
            if progress is not None and progress.id == export_id:
                progress.cancel.set()
                return True
            if export_id in self._export_ids:
                return False
            self._cancels_ahead.append(export_id)
            return True

    def _begin_export(self, export_id: str | None) -> export.ExportProgress:
        """The progress of the export beginning, named ``export_id`` (random without), cancelled already
        where its cancel came first; :meth:`export_status` reports it from now."""
        progress = export.ExportProgress(self.out / export.EXPORT_DIR)
        if export_id is not None:
            progress.id = export_id
        with self._cancel_lock:
            self._export_ids.append(progress.id)
            if progress.id in self._cancels_ahead:
                self._cancels_ahead.remove(progress.id)
                progress.cancel.set()
            self._export_progress = progress
        return progress

    def _export_held(self, task: str, progress: export.ExportProgress, bars: bool) -> ConversionReport:
        """:meth:`export`, its lock held; ``progress`` hears of each photo; ``bars``: tqdm's on stderr."""
        with self._lock:
            left_out, open_keys = self._exportable()
            self._check_yolo_sides(left_out)
            self._tree_read = set()
        # the converters read the tree without the lock (the page froze for a long export); changes
        # meanwhile are saved in the state, their photos' files written once it is read
        try:
            progress.check()  # cancelled before it began
            report = export.export_dataset(
                self.category_dir, self.out / export.EXPORT_DIR, task=task, on_photo=progress, bars=bars
            )
        finally:
            unwritten = self._sync_after_export()
        if open_keys:
            report.notes.append(
                f"{len(open_keys)} photo(s) in progress, not marked done, are exported with the "
                f"instances they have so far (e.g. {open_keys[0]}); defects not outlined are background"
            )
        if unwritten:
            report.notes.append(unwritten)
        if left_out:
            report.notes.insert(
                0,
                f"{len(left_out)} labelled photo(s) left out of this export (e.g. {left_out[0]}): gone "
                f"from {self.images_dir} and the tree {self.category_dir} holds no copy; their labels "
                f"stay in {self.state_path.name}: put the photos back to export them",
            )
        return report

    def _exportable(self) -> tuple[list[str], list[str]]:
        """The tree brought in line with the state for an export, holding :attr:`_lock`: the labelled photos
        it leaves out (:meth:`_sync_tree`) and those in progress it exports with their instances so far.

        Raises:
            ConflictError: no instance accepted yet, or none on a photo the tree holds.
            StorageError: the tree cannot be brought in line with the state.
        """
        if not any(e.instances for e in self._entries.values()):
            old = self.out / export.EXPORT_DIR
            note = f" ({old} is an earlier export, of instances since deleted)" if old.exists() else ""
            raise ConflictError(f"nothing to export yet: accept at least one defect instance{note}")
        if self._category_was is not None:  # a page started without its split keys (persist)
            self._finish_split_keys()
        # the tree is what the converters read: a photo whose files could not be written after
        # its change was saved (a full disk, since freed) was left out of the export
        try:
            left_out = self._sync_tree()
        except OSError as error:
            raise StorageError(
                f"nothing exported: {self.category_dir} cannot be brought in line with "
                f"{self.state_path.name} ({file_error(error)})"
            ) from error
        if not any(e.instances for k, e in self._entries.items() if k not in left_out):
            gone = next(k for k in left_out if self._entries[k].instances)
            raise ConflictError(  # the converters' "no defect image left to convert" said not why
                f"nothing exported: the photos with instances (e.g. {gone}) are gone from "
                f"{self.images_dir} and the tree {self.category_dir} holds no copy of them; their "
                f"labels stay in {self.state_path.name}: put the photos back, then export"
            )
        # exported as they are (the tree holds every photo with an instance): their defects not
        # yet outlined are background to a detector trained on them
        open_keys = [
            k
            for k, e in self._entries.items()
            if e.status == IN_PROGRESS and e.instances and k not in left_out
        ]
        return left_out, open_keys

    def _check_yolo_sides(self, left_out: Collection[str]) -> None:
        """Refuses, in the page's words, an export holding a photo ultralytics would drop from the YOLO set
        for a side under :data:`~converters.yolo.MIN_IMAGE_SIDE` pixels: the converters' refusal named its
        copy in the tree, and said to scale that copy or move it out, which the next export undoes.
        The converters refuse only the photos the YOLO set holds: every photo with instances here, and
        the good ones the split draws as backgrounds (``--background-ratio`` 0.5, so some of them, each
        export's draw). Every good photo is checked: which ones are drawn is known only once the split
        is, and a refusal then would be the converters' line.

        Raises:
            ConflictError: naming the photo by its key, its size, and the ways out.
        """
        files = None
        for entry in self._entries.values():
            if entry.folder is None or entry.key in left_out:
                continue
            if entry.size is None:  # a good photo: its copy's size, as the converters read it
                files = export.tree_files(self.category_dir) if files is None else files
                copies = [p for p in files.get(entry.stem, []) if p.parent.parent.name == "test"]
                size = export.upright_size(copies[0], entry.key) if copies else None
            else:
                size = entry.size
            if size is not None and min(size) < MIN_IMAGE_SIDE:
                raise ConflictError(
                    f"nothing exported: {entry.key} is {size[1]}x{size[0]} pixels, and ultralytics drops an "
                    f"image with a side under {MIN_IMAGE_SIDE} pixels from a YOLO set; its labels stay in "
                    f"{self.state_path.name}: delete its instances (or its good mark) to leave it out of "
                    "the export, or scale the photo up and label it again"
                )

    def _sync_after_export(self) -> str | None:
        """Writes the files of the photos changed while an export read the tree; what could not be written.

        A photo gone meanwhile with no copy in the tree (:meth:`_lost`) has none to write: the next
        export leaves it out, saying so, until it is back.

        Returns:
            None, or a note: the state holds those changes, and the next start or export writes them.
        """
        with self._lock:
            keys, self._tree_read = self._tree_read or set(), None
            failed = []
            for key in sorted(keys):
                entry = self._entries[key]
                try:
                    existing = export.stem_files(self.category_dir, entry.stem)
                    if not self._lost(entry, existing):
                        self._sync(entry, existing)
                except (OSError, UserError) as error:
                    failed.append((key, error))
        if not failed:
            return None
        key, error = failed[0]
        logger.warning("files of %s not written after the export: %s", key, error)
        disk = isinstance(error, OSError)
        return (
            f"the files of {len(failed)} photo(s) changed during the export (e.g. {key}) could not be "
            f"written to {self.category_dir} ({file_error(error) if disk else error}): they are saved in "
            f"{self.state_path.name} and written at the next start or export"
            + (f"; {write_advice(error, self.category_dir)}" if disk else "")
        )

    # ------------------------------------------------------------------------------------------
    # Inside

    def _instance(
        self,
        entry: ImageEntry,
        instance_id: int,
        *,
        class_name: str,
        mask: np.ndarray,
        score: float | None,
        prompt: dict | None,
    ) -> Instance:
        """A checked instance of ``entry``: a known class, a non-empty mask of the image's size."""
        if class_name not in self.classes:
            raise AnnotationError(f"unknown class '{class_name}' (classes: {', '.join(self.classes)})")
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise AnnotationError(f"a mask is one (H, W) array, got shape {mask.shape}")
        if not mask.any():
            raise AnnotationError("the mask is empty: add or move a point before accepting")
        # before its size is read: a photo removed while the page runs was 'no such file', not 'nothing
        # changed'
        self._check_on_disk(entry)
        # the first instance too: a mask that does not fit would be saved, then refused by the tree
        size = entry.size or export.upright_size(self.image_path(entry.key), entry.key)
        if tuple(mask.shape) != size and entry.outlined_size:
            # the photo was replaced by one of another size since it was opened (or since its proposals,
            # its only outlines, were made: a proposal accepted was refused as 'mask is 512x512, image is
            # 300x300'): its labels are set aside; the mask, made on the photo on disk, is then saved,
            # unless there were labels (the page still shows them, and maybe the old photo: it must be
            # opened again)
            notice = self.refresh_size(entry.key)
            if notice is not None:
                raise ConflictError(f"{notice}: open it again to annotate it")
            size = entry.size or export.upright_size(self.image_path(entry.key), entry.key)
        if tuple(mask.shape) != size:
            raise AnnotationError(
                f"mask is {mask.shape[1]}x{mask.shape[0]}, image {entry.key} is {size[1]}x{size[0]}"
            )
        x1, y1, x2, y2 = (float(v) for v in mask_to_xyxy(mask))
        return Instance(
            id=instance_id,
            class_name=class_name,
            rle=mask_to_rle(mask),
            area=int(np.count_nonzero(mask)),
            box=(x1, y1, x2, y2),
            score=None if score is None else round(float(score), 4),
            prompt=prompt,
        )

    @staticmethod
    def _proposal(entry: ImageEntry, proposal_id: int) -> Proposal:
        found = next((p for p in entry.proposals if p.id == proposal_id), None)
        if found is None:
            raise NotFoundError(f"image {entry.key} has no undecided proposal {proposal_id}")
        return found

    def _set_aside(self, entry: ImageEntry, size: tuple[int, int]) -> str | None:
        """Moves ``entry``'s labels of the photo it had out of the way and starts it afresh at ``size``.

        ``<out>/replaced/<stem>-<UTC time>/`` gets ``labels.json`` (the entry as the state holds it,
        the classes, both sizes) and the tree's copy and mask of the old photo, then the entry is
        unlabelled, without instances, proposals or undo history; its ids go on counting. Not saved
        here: the caller saves. An entry with nothing but a size keeps nothing and says nothing.

        Returns:
            The one-line notice, or None when there was nothing to set aside.
        """
        old = entry.outlined_size
        notice = None
        if entry.has_labels:
            now = datetime.now(timezone.utc)
            folder = self.out / export.REPLACED_DIR / f"{entry.stem}-{now:%Y%m%dT%H%M%SZ}"
            n = 1
            while folder.exists():  # set aside twice in one second
                n += 1
                folder = folder.with_name(f"{entry.stem}-{now:%Y%m%dT%H%M%SZ}-{n}")
            folder.mkdir(parents=True)
            record = {
                "image": entry.key,
                "size": list(old) if old else None,
                "replaced_by": list(size),
                "set_aside": now.isoformat(timespec="seconds"),
                "classes": self.classes,
                "entry": entry.to_json(),
            }
            atomic_write(folder / "labels.json", (json.dumps(record, indent=1) + "\n").encode())
            export.move_stem_files(self.category_dir, entry.stem, folder)
            held = [f"{len(entry.instances)} instance(s)"] if entry.instances else []
            held += [f"{len(entry.proposals)} proposal(s)"] if entry.proposals else []
            held += [f"marked {entry.status}"] if entry.status in (DONE, GOOD) else []
            was = f" {old[1]}x{old[0]}" if old else ""
            notice = (
                f"{entry.key} was replaced by a {size[1]}x{size[0]} photo: the labels of the{was} one it "
                f"replaced ({', '.join(held)}) are set aside in {folder} with its copy and mask; it starts "
                "unlabelled"
            )
        entry.status, entry.instances, entry.proposals, entry.size = UNLABELLED, [], [], None
        entry.proposed, entry.undo_stack, entry.redo_stack = [], [], []  # a detector proposes on it anew
        return notice

    def _change(self, entry: ImageEntry, mutate: Callable[[ImageEntry], None]) -> None:
        self._check_on_disk(entry)
        before = entry.snapshot()
        size, next_id = entry.size, entry.next_id
        mutate(entry)
        try:
            self._save()
        except BaseException:
            entry.restore(before)  # memory stays what the disk says
            entry.size, entry.next_id = size, next_id
            raise
        entry.undo_stack.append(before)
        entry.redo_stack.clear()
        self._revise(entry)
        self._sync_saved(entry)

    def _step(self, entry: ImageEntry, source: list[Snapshot], target: list[Snapshot]) -> None:
        self._check_on_disk(entry)
        now = entry.snapshot()
        entry.restore(source[-1])
        try:
            self._save()
        except BaseException:
            entry.restore(now)
            raise
        source.pop()
        target.append(now)
        self._revise(entry)
        self._sync_saved(entry)

    def _revise(self, entry: ImageEntry, why: str = CHANGED) -> None:
        """Gives ``entry`` a new :meth:`version`: an undoable change, undo or redo changed it, or ``why``
        (proposals added or dropped, labels set aside)."""
        self._revisions += 1
        entry.revision = self._revisions
        entry.revised_by[why] = self._revisions

    def _check_on_disk(self, entry: ImageEntry) -> None:
        """Refuses to change a photo removed while the page runs: the change was saved, then the
        answer (the photo's detail) failed with 'no such file', so the page said nothing changed."""
        try:
            self.image_path(entry.key)
        except NotFoundError:
            raise NotFoundError(
                f"{entry.key} is no longer in {self.images_dir}: nothing changed "
                "(put it back to edit its labels)"
            ) from None

    def _save(self, *, entries_changed: bool = True) -> None:
        """Writes the state file; StorageError when it cannot be written (memory is the caller's to undo).

        ``entries_changed`` False (moving to another photo): the photos' lines are those of the file
        written last, not encoded again (their encoding grows with the folder; a move changes none).
        """
        state = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "images_dir": str(self.images_dir),
            "category": self.category,
            **({"category_was": self._category_was} if self._category_was is not None else {}),
            "classes": self.classes,
            "current": self._current,
            "images": {},
        }
        lines = self._entry_lines if not entries_changed else None
        if lines is None:
            lines = entry_lines({key: entry.to_json() for key, entry in self._entries.items()})
        try:
            atomic_write(self.state_path, state_text(state, image_lines=lines).encode())
            self._entry_lines = lines
        except OSError as error:  # read-only, full: a one-line answer, not an internal error
            raise StorageError(
                f"nothing saved: cannot write {self.state_path} ({write_failure(error, self.state_path)}): "
                f"{write_advice(error, self.out)}, then try again"
            ) from error

    def _sync_saved(self, entry: ImageEntry) -> None:
        """:meth:`_sync` after a change was saved; StorageError saying so when the tree cannot take it.

        The state holds the change; the photo's files are rewritten from it at the next start, or
        export (:meth:`export`), so the page must not hear "internal error" as "not saved". While an
        export reads the tree, they are written once it is done.
        """
        if self._tree_read is not None:
            self._tree_read.add(entry.key)
            return
        try:
            self._sync(entry)
        except OSError as error:
            raise StorageError(
                f"saved in {self.state_path.name}, but the files of {entry.key} in {self.category_dir} "
                f"could not be written ({file_error(error)}): they are written from it at the next "
                f"start or export; {write_advice(error, self.category_dir)}",
                image=entry.key,
                version=self.version(entry.key),
            ) from error

    def _sync(self, entry: ImageEntry, existing: Sequence[Path] | None = None) -> None:
        mask = None
        if entry.instances and entry.status != GOOD:
            mask = self._composed(entry)
        export.sync_image(
            self.category_dir,
            source=self.images_dir / entry.key,
            stem=entry.stem,
            folder=entry.folder,
            mask=mask,
            existing=existing,
        )

    def _composed(self, entry: ImageEntry) -> np.ndarray:
        """``entry``'s value-coded mask (:func:`export.compose_mask` of its instances, in order).

        The last mask composed is kept with its instances: when they begin ``entry``'s (an accept
        appends), only the instances after them are decoded and painted over it, as composing all of
        them would (each accept decoded every earlier mask of the photo again).
        """
        instances = tuple(entry.instances)
        key, done, classes, mask = self._last_composed or (None, (), [], None)
        begun = len(done) <= len(instances) and all(
            a is b for a, b in zip(done, instances[: len(done)], strict=True)
        )
        if begun and (key, classes) == (entry.key, self.classes) and mask.shape == entry.size:
            new = instances[len(done) :]
        else:
            new, mask = instances, np.zeros(entry.size, np.uint8)
        painted = export.compose_mask(
            ((i.class_name, i.rle) for i in new), classes=self.classes, shape=entry.size
        )
        mask = np.where(painted > 0, painted, mask)  # a new array: the one kept is never written to
        self._last_composed = (entry.key, instances, list(self.classes), mask)
        return mask

    def _sync_tree(self) -> list[str]:
        """Brings the whole tree in line with the state (repairs a run cut short between the two).

        Returns:
            the labelled photos the tree cannot hold (:meth:`_lost`): their masks leave it (the converters
            refuse a mask without its image), their labels stay in the state, and the tree holds them
            again once their photos are back.
        """
        export.write_value_map(self.category_dir, self.classes)
        export.match_class_folder_case(self.category_dir, self.classes)  # a case-only rename cut short
        files = export.tree_files(self.category_dir)
        lost = []
        for entry in self._entries.values():
            existing = files.get(entry.stem, [])
            if self._lost(entry, existing):
                export.sync_image(
                    self.category_dir,
                    source=self.images_dir / entry.key,
                    stem=entry.stem,
                    folder=None,
                    mask=None,
                    existing=existing,
                )
                lost.append(entry.key)
            elif entry.present or (entry.folder is not None and existing):
                # a photo removed from the folder keeps its files: moved to its class's folder after a rename
                self._sync(entry, existing)
        export.remove_case_leftovers(self.category_dir)  # their files moved out above
        return lost

    def _lost(self, entry: ImageEntry, existing: Sequence[Path]) -> bool:
        """Whether ``entry`` is labelled, its photo gone from the folder (while the page ran, or before)
        and its copy from the tree: it can only be left out of an export.

        Never with the photo folder itself gone (:attr:`photos_gone`, ``--export`` alone): the copy is
        then made from the photos' folder given as ``--images`` (:func:`export.sync_image` says so).
        """
        if self.photos_gone or entry.folder is None or (self.images_dir / entry.key).is_file():
            return False
        return not any(path.parent.parent.name == "test" and path.is_file() for path in existing)


def _accept(
    entry: ImageEntry, *, instances: list[Instance], size: tuple[int, int], replaced: list[Proposal]
) -> None:
    """Adds accepted ``instances`` (of ``size`` ``(H, W)``), dropping the proposals they replace."""
    gone = {p.id for p in replaced}
    entry.instances = [*entry.instances, *instances]  # new lists: readers in other threads keep theirs
    entry.proposals = [p for p in entry.proposals if p.id not in gone]
    entry.size = (int(size[0]), int(size[1]))
    entry.next_id = instances[-1].id + 1
    if entry.status in (UNLABELLED, GOOD):
        entry.status = IN_PROGRESS


def _renamed(snapshot: Snapshot, renames: Mapping[str, str]) -> Snapshot:
    """``snapshot`` with the class of each instance and proposal renamed by ``renames`` (old -> new)."""
    status, instances, proposals = snapshot
    return (
        status,
        tuple(replace(i, class_name=renames.get(i.class_name, i.class_name)) for i in instances),
        tuple(replace(p, class_name=renames.get(p.class_name, p.class_name)) for p in proposals),
    )


def _set_status(entry: ImageEntry, *, status: str) -> None:
    """Done and good decide the image: its undecided proposals are discarded with it."""
    entry.status = status
    if status in (DONE, GOOD):
        entry.proposals = []


def _without_proposals(snapshot: Snapshot, name: str) -> Snapshot:
    """``snapshot`` without the proposals whose source is ``name``."""
    status, instances, proposals = snapshot
    return status, instances, tuple(p for p in proposals if p.source != name)


def _propose(entry: ImageEntry, proposals: Sequence[Proposal], source: str) -> int:
    """Adds ``source``'s ``proposals`` to ``entry`` and its history, less duplicates; how many were new."""
    sizes = {tuple(p.rle["size"]) for p in proposals}
    if entry.size is not None and sizes - {entry.size}:
        raise AnnotationError(
            f"proposals for {entry.key} are not of its size {entry.size[1]}x{entry.size[0]}"
        )
    existing = [i.rle for i in entry.instances] + [p.rle for p in entry.proposals]
    dropped = duplicate_rles([p.rle for p in proposals], existing)
    fresh = with_ids(
        (p for p, dup in zip(proposals, dropped, strict=True) if not dup), entry.next_proposal_id
    )
    entry.proposals = [*entry.proposals, *fresh]
    entry.next_proposal_id += len(fresh)
    entry.proposed = [*entry.proposed, source]
    # undo and redo never take them away, nor bring them to a decided (done or good) state
    entry.undo_stack = [(s, i, p if s in (DONE, GOOD) else (*p, *fresh)) for s, i, p in entry.undo_stack]
    entry.redo_stack = [(s, i, p if s in (DONE, GOOD) else (*p, *fresh)) for s, i, p in entry.redo_stack]
    return len(fresh)


def check_not_hiding(key: str, instances: Sequence[Instance], mask: np.ndarray, class_name: str) -> None:
    """Refuses a new ``mask`` of ``class_name`` that covers what is left of an instance of another class.

    The masks tree holds one class per pixel, the last accepted painted over the others, so that
    instance would vanish from the masks and from every export while the page still listed it (the
    same outline accepted again in another class, meant as a change of class, did that; so did two
    masks of another class, each over part of it). What is left of an instance is where the tree
    shows its class among its pixels: ``instances`` painted in order.

    Only the masks that can matter are decoded (boxes come from the runs, :func:`rle_to_xyxy`): an
    instance of another class whose box meets ``mask``'s, and those whose boxes meet its box (what is
    left of it); an accept cost a decode of every earlier mask of the photo.

    Raises:
        ConflictError: naming the instance to delete first.
    """
    classes = sorted({instance.class_name for instance in instances} | {class_name})
    mask = np.asarray(mask, dtype=bool)
    boxes = [rle_to_xyxy(instance.rle) for instance in instances]
    box = mask_to_xyxy(mask) if mask.any() else np.zeros(4)
    at_risk = [
        i
        for i, instance in enumerate(instances)
        if instance.class_name != class_name and _meet(boxes[i], box)
    ]
    needed = [i for i in range(len(instances)) if any(_meet(boxes[i], boxes[j]) for j in at_risk)]
    shown = np.full(mask.shape, -1, np.int16)  # the class index each pixel of the tree shows
    masks = {i: rle_to_mask(instances[i].rle) for i in needed}  # in order: later ones paint over
    for i, pixels in masks.items():
        shown[pixels] = classes.index(instances[i].class_name)
    for i in at_risk:
        instance, pixels = instances[i], masks[i]
        left = pixels & (shown == classes.index(instance.class_name))
        if left.any() and not (left & ~mask).any():
            raise ConflictError(
                f"{key}: this {class_name} mask covers all of instance {instance.id} ({instance.class_name}) "
                "that the masks still show, which would vanish from them and the export (one class per "
                f"pixel): delete instance {instance.id} first"
            )


def _meet(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether xyxy boxes ``a`` and ``b`` (exclusive max) share a pixel; an empty box meets none."""
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
