"""``python -m segmentation.annotate``: label new defect photos with SAM clicks in a local web page.

    python -m segmentation.annotate --images photos/ --out datasets/new_defects --classes scratch dent stain

prints ``Open http://127.0.0.1:<port>/`` and serves until Ctrl+C. The same
``--out`` again resumes (``--images`` and ``--classes`` may then be left out).
``--export`` writes YOLO + COCO into ``<out>/export`` without starting the
server, and without the photos when their folder is gone (the tree holds their
copies). ``--rename-class OLD=NEW`` renames a saved class (its mask value kept) in the state and the
tree, ``--rename-category NEW`` the category, and each exits too (then exports, with ``--export``).
See :mod:`segmentation.annotate` for the page and the output layout.

To review instead of draw, ``--proposals predictions.json`` (the inspection
cascade's COCO results, :mod:`segmentation.annotate.proposal_file`) or
``--detector best.pt`` (run by the app on each photo, boxes to SAM masks,
:mod:`segmentation.annotate.detector`) puts proposals on the photos, which the
user accepts, corrects or deletes. A ``--checkpoint`` decoder.pt's colour head
refines the detector's box masks (not with ``--crop-fraction``; ``--no-colour-head``
leaves it out), and its colour prompt (``colour_prompt: true`` in training) gives each of those
boxes its colour map as SAM's mask prompt (not with ``--crop-fraction`` either; ``--no-colour-prompt``
leaves it out). A ``sam_finetuned.pth`` has no place for either: with ``--detector``, one whose
run's ``decoder.pt`` carries them gets a ``note:`` naming that file. A ``--proposals`` file's masks
are shown as the file gives them: SAM decodes none.

Bad input (options, folders, classes, the model, a taken port) stops it before
the server starts with one ``error:`` line and exit code 2, and with nothing
written: the session is only read until the model has loaded.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING

from common.cli import OneLineParser, acknowledge_termination, command_name, exit_code, user_path
from common.errors import UserError, few, one_line
from common.folders import check_input_file
from common.io import expand_user
from converters.convert import TASKS, format_report
from segmentation.duplicates import MASK_IOU
from segmentation.specks import DEFAULT_CELLS, check_speck_cells

if TYPE_CHECKING:  # annotations only: these import torch, which --help and bad options do without
    import torch
    from fastapi import FastAPI
    from segment_anything.modeling import Sam

    from segmentation.annotate.detector import YoloDetector
    from segmentation.annotate.proposal_file import ProposalFile
    from segmentation.annotate.proposals import Proposal
    from segmentation.annotate.session import AnnotationSession
    from segmentation.colour_head import ColourHead
    from segmentation.colour_prompt import ColourPrompt
    from segmentation.embeddings import EmbeddingCache

#: Default port; ``--port 0`` (or ``auto``) takes any free one.
DEFAULT_PORT = 8765
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=command_name("segmentation.annotate"),
        description="Label defects in new photos with SAM (click, box, accept) in a local web page; "
        "writes an MVTec-layout category, and YOLO + COCO through the converters.",
    )
    add_io_arguments(parser)
    add_model_arguments(parser)
    add_review_arguments(parser)
    add_server_arguments(parser)
    return parser


def add_io_arguments(parser: argparse.ArgumentParser) -> None:
    """``--images``, ``--out``, ``--classes`` and the options that rename or export instead of serving."""
    io = parser.add_argument_group("input and output")
    io.add_argument(
        "--images", type=user_path, help="folder of photos (searched recursively); optional on a resume"
    )
    io.add_argument(
        "--out", type=user_path, required=True, help="output folder: state, MVTec category, export"
    )
    io.add_argument(
        "--classes",
        nargs="+",
        action="extend",  # --classes a --classes b is both, not b alone
        metavar="NAME",
        help="defect classes, number keys 1-9 pick them (first run: defect)",
    )
    io.add_argument("--category", help="category folder name under --out (default: the --out folder's name)")
    io.add_argument(
        "--export", action="store_true", help="write YOLO + COCO to OUT/export and exit (no server)"
    )
    io.add_argument(
        "--rename-class",
        action="append",
        metavar="OLD=NEW",
        help="rename a saved class (its mask value stays) in the state and the tree, then exit (no server); "
        "repeat for more; with --export, export after",
    )
    io.add_argument(
        "--rename-category",
        metavar="NEW",
        help="rename the saved category (the tree's folder under --out) in the state, the folder and the "
        "last export's split, then exit (no server); with --export, export after",
    )
    io.add_argument(
        "--no-progress",
        action="store_true",
        help="--export: no progress bars on stderr (as the converters' --no-progress)",
    )
    io.add_argument(
        "--yolo-task",
        choices=TASKS,
        default="detect",
        help="YOLO labels of --export: boxes (default) or polygons",
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """SAM's weights, device and runtime, and what is done to its masks."""
    model = parser.add_argument_group("model")
    model.add_argument("--model", help="registry name: vit_t (MobileSAM, default), vit_b, vit_l, vit_h")
    model.add_argument(
        "--checkpoint", type=user_path, help="fine-tuned decoder.pt or full sam_finetuned.pth (with --model)"
    )
    model.add_argument(
        "--cache-dir",
        type=user_path,
        help="embedding cache (default: $MVTEC_FINETUNE_CACHE/embeddings if that is set, "
        "else ~/.cache/mvtec-finetune/embeddings)",
    )
    model.add_argument(
        "--device", default="auto", help="auto (default: CUDA if present), cpu, cuda, cuda:1, ..."
    )
    model.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    model.add_argument(
        "--runtime",
        choices=("auto", "onnx", "torch"),
        default="auto",
        help="where the decoder runs per click: auto (default: ONNX Runtime on a CPU, else torch)",
    )
    model.add_argument(
        "--prefetch", type=int, default=2, help="next images embedded ahead in the background (2)"
    )
    model.add_argument(
        "--crop-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="decode a box whose longest side < F x the photo's on a zoomed crop around it "
        "(segmentation's rule, e.g. 0.125; one encoder run per new crop, then cached); 0: off (default)",
    )
    model.add_argument(
        "--speck-cells",
        type=float,
        default=DEFAULT_CELLS,
        metavar="N",
        help="remove islands and holes smaller than N of SAM's low-resolution cells from every mask "
        f"(a cell is (long side / 256)^2 px: {DEFAULT_CELLS:g} is 64 px on a 512-px photo; each speck would "
        f"export as an instance of its own); 0: SAM's masks exactly (default {DEFAULT_CELLS:g})",
    )
    model.add_argument(
        "--no-colour-head",
        action="store_true",
        help="leave out the colour head a --checkpoint decoder.pt carries (colour_head=true in training), "
        "which otherwise refines the --detector box proposals",
    )
    model.add_argument(
        "--no-colour-prompt",
        action="store_true",
        help="leave out the colour prompt a --checkpoint decoder.pt carries (colour_prompt=true in "
        "training), which otherwise gives each --detector box its colour map as SAM's mask prompt "
        "(needed for --crop-fraction with such a decoder.pt)",
    )


def add_review_arguments(parser: argparse.ArgumentParser) -> None:
    """``--proposals`` or ``--detector`` (one of them) and the detector's options."""
    review = parser.add_argument_group("proposals to review instead of drawing")
    source = review.add_mutually_exclusive_group()
    source.add_argument(
        "--proposals",
        type=user_path,
        metavar="JSON",
        help="predictions.json of the inspection cascade or of anomaly.predict (COCO results; "
        "images.json beside it)",
    )
    source.add_argument(
        "--detector",
        type=user_path,
        metavar="WEIGHTS",
        help="a detection run's best.pt, run on each photo as it is opened; its boxes become SAM masks",
    )
    review.add_argument("--conf", type=float, help="--detector: lowest box score kept (0.25)")
    review.add_argument("--imgsz", type=int, help="--detector: input size (its training size, or --tile)")
    review.add_argument("--tile", type=int, help="--detector: on overlapping windows of this many px")
    review.add_argument(
        "--mask-iou",
        type=float,
        help=f"--detector: of two masks of one class overlapping by more than this IoU, only the "
        f"better-scored box's is proposed; 1: all ({MASK_IOU})",
    )


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the page is served."""
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (127.0.0.1); other than loopback exposes the page",
    )
    server.add_argument(
        "--port", default=str(DEFAULT_PORT), help=f"port ({DEFAULT_PORT}); 0 or auto picks a free one"
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``port`` 0: a free one), IPv4 or IPv6 by the address.

    Raises:
        UserError: the address cannot be bound (in use, not local).
    """
    try:
        family, address = socket_address(host, port)
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as error:
        raise UserError(f"cannot use host {host!r}: {one_line(error)}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        hint = " (pass --port 0 for a free port)" if port else ""
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror or error}{hint}") from None
    sock.set_inheritable(True)
    return sock


def socket_address(host: str, port: int) -> tuple[socket.AddressFamily, tuple]:
    """``(family, address)`` to bind: a literal IPv4/IPv6 address as it is, a name through the resolver.

    A literal needs no resolver, so 127.0.0.1 serves on a machine without DNS.

    >>> socket_address("::1", 8765)
    (<AddressFamily.AF_INET6: 10>, ('::1', 8765, 0, 0))
    """
    try:
        ip = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        return family, address
    if ip.version == 6:
        return socket.AF_INET6, (str(ip), port, 0, 0)
    return socket.AF_INET, (str(ip), port)


def url_for(sock: socket.socket) -> str:
    """The address to open in a browser (a wildcard bind is shown as 127.0.0.1)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> list[str] | None:
    """The ``Host`` headers the page accepts bound to ``host``: None (any) beyond loopback, else the
    loopback names and ``host`` itself (the address printed for 127.0.0.2 or 127.0.1.1 was refused).

    >>> allowed_hosts("127.0.0.2")
    ['127.0.0.1', 'localhost', '::1', '[::1]', '127.0.0.2']
    """
    if not is_loopback(host):
        return None
    return LOOPBACK_HOSTS if host in LOOPBACK_HOSTS else [*LOOPBACK_HOSTS, host]


def parse_port(text: str) -> int:
    if text == "auto":
        return 0
    try:
        port = int(text)
    except ValueError:
        raise UserError(f"--port must be a number or 'auto', got {text!r}") from None
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be 0-65535, got {port}")
    return port


def load_model(model: str | None, checkpoint: Path | None, device):
    """``(sam, model name)``: official weights, or a fine-tuned ``decoder.pt`` / ``sam_finetuned.pth``."""
    from segmentation.finetuned import load_finetuned
    from segmentation.models import DEFAULT_MODEL, load_sam

    if checkpoint is None:
        name = model or DEFAULT_MODEL
        return load_sam(name, device=device), name
    return load_finetuned(checkpoint, model=model, device=device, base_option="")  # no base weights flag


def main(argv: list[str] | None = None) -> int:
    """Parses ``argv`` and serves (or exports); bad input is one ``error:`` line and exit code 2."""
    return exit_code(lambda: run(build_parser().parse_args(argv)))


def run(args: argparse.Namespace) -> None:
    """Exports, or checks every input, loads SAM and serves the page until Ctrl+C.

    The cheap checks come first and nothing is written before the model has
    loaded, so any bad input stops the command with nothing behind.
    """
    port = parse_port(args.port)
    check_counts(args)
    check_review_options(args)
    if args.rename_class is not None or args.rename_category is not None:
        rename_session(args)
        return
    if args.export:
        export_session(args)
        return
    lock = OutLock(args.out)  # before the session is read: what another command saves meanwhile is seen
    proposal_file, detector = read_review_sources(args)
    session, proposals, notes = read_session(args, proposal_file, detector)
    device, runtime = check_model_options(args)
    colour_head = read_colour_head(args)
    colour_prompt = read_colour_prompt(args)
    note_colour_left_behind(args, detector)
    warn_grey_photos(session, detector, colour_head=colour_head, colour_prompt=colour_prompt)
    check_detector(detector, session)
    if detector is not None:
        detector.device = str(device)
    with lock:
        lock.take()  # before loading the model: a page already on --out fails at once
        if lock.saved_meanwhile():  # a page stopped since the read: its last changes are read, not lost
            session, proposals, notes = read_session(args, proposal_file, detector)
            check_detector(detector, session)
        print_warnings(session)  # of the session served: printed once, not at each read
        for note in notes:
            print(note, file=sys.stderr)
        sock = bind(args.host, port)  # before loading the model: a taken port fails at once
        try:
            serve(
                args,
                session,
                sock,
                lock=lock,
                device=device,
                runtime=runtime,
                detector=detector,
                proposals=(proposal_file, proposals) if proposal_file else None,
                colour_head=colour_head,
                colour_prompt=colour_prompt,
            )
        finally:
            sock.close()


def export_session(args: argparse.Namespace) -> None:
    """``--export``: YOLO + COCO of what ``--out`` holds, with its notices and report printed.

    Raises:
        UserError: ``--out`` holds no annotations (a first run would write a state only to refuse),
            or another command holds it.
    """
    from segmentation.annotate.session import STATE_FILE, AnnotationSession

    def read() -> AnnotationSession:
        session = AnnotationSession.read(
            args.out, args.images, classes=args.classes, category=args.category, photos_optional=True
        )
        if not session.state_path.is_file():
            raise UserError(
                f"nothing to export: {args.out} holds no annotations ({STATE_FILE}); annotate first "
                f"(python -m segmentation.annotate --images IMAGES --out {quote(str(args.out))})"
            )
        return session

    lock = OutLock(args.out)  # before the read: a page that stops meanwhile saves its last changes
    session = read()
    with lock:
        lock.take()
        if lock.saved_meanwhile():  # what was read is stale: exported and written back, it lost them
            session = read()
        print_warnings(session)  # of the session exported: once, not at each read
        session.persist(splits_later=True)  # the export says why it cannot rename the split keys, if so
        print_notices(session)
        print_export(session, task=args.yolo_task, bars=not args.no_progress)


def print_export(session: AnnotationSession, *, task: str, bars: bool = True) -> None:
    """Exports ``session`` (persisted, its ``--out`` held) and prints the report; ``bars``: the converters'
    progress bars on stderr (off: ``--no-progress``)."""
    if session.photos_gone:
        print(
            f"note: the photo folder {session.images_dir} is gone: exporting the copies of the "
            f"photos in {session.category_dir}"
        )
    print(format_report(session.export(task=task, bars=bars)))  # tqdm on stderr: a big folder takes a while


def parse_renames(values: list[str]) -> dict[str, str]:
    """``--rename-class`` values as old name -> new name.

    >>> parse_renames(["scrach=scratch", "big dent=dent"])
    {'scrach': 'scratch', 'big dent': 'dent'}

    Raises:
        UserError: a value that is not one ``OLD=NEW`` (no class name holds ``=``), a class renamed twice.
    """
    renames: dict[str, str] = {}
    for value in values:
        old, _, new = value.partition("=")
        if not old or not new or "=" in new:
            raise UserError(f"--rename-class takes OLD=NEW (a class and its new name), got {value!r}")
        if old in renames:
            raise UserError(f"--rename-class renames {old!r} twice: to {renames[old]!r} and to {new!r}")
        renames[old] = new
    return renames


def rename_session(args: argparse.Namespace) -> None:
    """``--rename-class OLD=NEW`` and ``--rename-category NEW``: the classes, then the category, of the
    session in ``--out`` renamed (:meth:`~segmentation.annotate.session.AnnotationSession.rename_classes`,
    :meth:`~segmentation.annotate.session.AnnotationSession.rename_category`), then, with ``--export``,
    exported; no server. Every name is checked before anything is written.

    Raises:
        UserError: a bad ``OLD=NEW``, ``--classes`` beside it, no state in ``--out``, an old name that is
            no class, a new name the rules refuse; another command holds ``--out``.
    """
    from segmentation.annotate.records import renamed_classes
    from segmentation.annotate.state_file import check_new_category

    renames = parse_renames(args.rename_class or [])
    check_rename_options(args, renames)
    lock = OutLock(args.out, advice="stop it first, then rename")  # before the read (OutLock.saved_meanwhile)
    session = read_renaming(args, renames)
    renamed_classes(session.classes, renames)
    category = args.rename_category
    if category is not None:
        check_new_category(session.out, session.category, category, was=session.category_was)
    changed = {old: new for old, new in renames.items() if new != old}
    kept = category in (None, session.category) and session.category_was is None
    if not changed and kept and not args.export:  # nothing to do: no lock to take (a page may hold it)
        print_warnings(session)
        for note in rename_notes(renames, category, current=session.category, pending=None):
            print(note)
        return
    with lock:
        lock.take()
        if lock.saved_meanwhile():  # a page stopped since the read: renamed from its last state, not lost
            session = read_renaming(args, renames)  # the renames below check their names against it again
        rename_held(session, args, renames)


def read_renaming(args: argparse.Namespace, renames: dict[str, str]) -> AnnotationSession:
    """The session in ``--out`` read for :func:`rename_session`: a name renamed here (``renames``' old names,
    the category's) is not warned of as one Windows cannot hold."""
    from segmentation.annotate.session import AnnotationSession

    return AnnotationSession.read(
        args.out,
        args.images,
        category=args.category,
        photos_optional=True,
        renaming={old for old, new in renames.items() if new != old},
        category_renamed_to=args.rename_category,
    )


def rename_held(session: AnnotationSession, args: argparse.Namespace, renames: dict[str, str]) -> None:
    """:func:`rename_session`'s renames of ``session``, with ``--out``'s lock held: the notes, the state
    saved, then the export (``--export``) or a note that the one in ``--out`` is stale."""
    from segmentation.annotate.export import EXPORT_DIR

    category = args.rename_category
    changed = {old: new for old, new in renames.items() if new != old}
    print_warnings(session)  # of the session renamed: once, not at each read
    # the notes, from the state held: a refused lock printed none that said what it would do
    pending = session.category_was  # a rename the folder refused (or cut short): persist() finishes it
    for note in rename_notes(renames, category, current=session.category, pending=pending):
        print(note)
    moved = category is not None and category != session.category
    was = pending or session.category  # the tree's name when last whole: an export's at the latest
    session.persist()
    print_notices(session)
    rename_saved(session, changed, category if moved else None)
    if args.export:
        print_export(session, task=args.yolo_task, bars=not args.no_progress)
    elif (changed or session.category != was) and (session.out / EXPORT_DIR).is_dir():
        stale = session.category != was
        print(stale_export_note(session.out / EXPORT_DIR, args.out, classes=bool(changed), category=stale))


def check_rename_options(args: argparse.Namespace, renames: dict[str, str]) -> None:
    """A rename (``renames``: ``--rename-class``'s, or ``--rename-category`` alone) without ``--classes``,
    of an ``--out`` that holds a saved state.

    Raises:
        UserError: ``--classes`` beside it; no state in ``--out``.
    """
    from segmentation.annotate.session import STATE_FILE

    if args.classes is not None:
        option = "--rename-class" if renames else "--rename-category"
        raise UserError(
            f"{option} renames what is saved, --classes adds classes: run them one after the other"
        )
    if not (expand_user(args.out) / STATE_FILE).is_file():
        raise UserError(f"nothing to rename: {args.out} holds no annotation state ({STATE_FILE})")


def rename_notes(
    renames: dict[str, str], category: str | None, *, current: str, pending: str | None
) -> list[str]:
    """The ``note:`` lines of a rename before it is done: each class (``renames``: old to new) and the
    category (``category``: the new name, None: not renamed; ``current``: the saved one) named so already,
    and a category rename ``pending`` (its old name) that was not finished, which any rename finishes
    first (:meth:`~segmentation.annotate.session.AnnotationSession.persist`); ``--rename-category`` to
    its old name then renames it back."""
    notes = [
        f"note: class {quote(old)} is named so already: nothing to rename"
        for old, new in renames.items()
        if old == new
    ]
    if category == current and pending is None:
        notes.append(f"note: the category is named {category} already: nothing to rename")
    elif pending is not None:
        then = ", then renaming it back" if category == pending else ""
        notes.append(
            f"note: the rename of category {pending} to {current} was not finished: finishing it{then}"
        )
    return notes


def rename_saved(session: AnnotationSession, changed: dict[str, str], category: str | None) -> None:
    """Renames the classes (``changed``: old to new, each another name), then the category (``category``:
    the new name, None: kept), of ``session`` as saved, each with a line saying so."""
    if changed:
        session.rename_classes(changed)
        done = ", ".join(f"{quote(old)} to {quote(new)}" for old, new in changed.items())
        print(
            f"renamed class {done} in {session.out} (classes: {' '.join(map(quote, session.classes))}; "
            "mask values unchanged)"
        )
    if category is not None:
        old = session.category
        session.rename_category(category)
        print(f"renamed category {old} to {category}: the tree is {session.category_dir}")


def stale_export_note(export_dir: Path, out: Path, *, classes: bool, category: bool) -> str:
    """The note that the export in ``export_dir`` still names the old ``classes`` and/or ``category``, with
    the command (``--out out``) that writes it again."""
    old = " and ".join(what for what, renamed in (("classes", classes), ("category", category)) if renamed)
    return (
        f"note: the export in {export_dir} names the old {old} until it is written again: python -m "
        f"segmentation.annotate --out {quote(str(out))} --export (each photo keeps its split)"
    )


def read_session(
    args: argparse.Namespace, proposal_file: ProposalFile | None, detector: YoloDetector | None
) -> tuple[AnnotationSession, dict[str, list[Proposal]], list[str]]:
    """The session of ``--out`` (nothing written yet), the file's proposals placed on its photos, and the
    ``note:`` lines of entries left out (:func:`place_file_proposals`), for the caller to print once.

    A first run without ``--classes`` takes the detector's class names, else the file's.
    """
    from segmentation.annotate.proposal_file import check_first_classes
    from segmentation.annotate.session import AnnotationSession
    from segmentation.annotate.state_file import saved_classes

    names = detector.names if detector else proposal_file.class_names() if proposal_file else None
    if proposal_file is not None and names and args.classes is None and not saved_classes(args.out):
        check_first_classes(names, proposal_file.path)
    session = AnnotationSession.read(
        args.out, args.images, classes=args.classes, category=args.category, default_classes=names or None
    )
    proposals, notes = place_file_proposals(session, proposal_file) if proposal_file else ({}, [])
    return session, proposals, notes


class OutLock:
    """Holds ``--out`` for one command: an exclusive ``flock`` on the folder, kept until the command ends.

    Two pages (or a page and ``--export``) on one ``--out`` each rewrite ``annotate_state.json``
    from their own copy, so the second silently dropped what was accepted in the first.
    :meth:`take` locks a folder that exists; a page on a new ``--out`` takes it again once the
    folder is made, after the model has loaded (nothing is written before). No lock on Windows.
    Made before the command reads the session, it tells whether another command saved it before
    this one held ``--out`` (:meth:`saved_meanwhile`): then the session is read again.
    """

    def __init__(self, out: Path, *, advice: str = "stop it first, or export from its page") -> None:
        from segmentation.annotate.state_file import absolute_as_typed

        self.out = absolute_as_typed(out)  # as AnnotationSession.read takes --out
        self.advice = advice  # what the refusal asks for
        self.fd: int | None = None
        #: The state file's bytes when this lock was made (None: none): made before the command reads
        #: the session, it tells whether what was read is what the lock holds (:meth:`saved_meanwhile`).
        self.seen = saved_state(self.out)

    def saved_meanwhile(self) -> bool:
        """Whether the state in ``out`` changed since this lock was made, or last asked: another command
        (a page stopping, a rename) saved it before this one held ``out``, so the session read before
        is stale and is read again; written back, it dropped that command's last changes.
        """
        now = saved_state(self.out)
        changed, self.seen = now != self.seen, now
        return changed

    def take(self) -> None:
        """Locks ``out`` if it exists and is not locked by this command yet.

        Raises:
            UserError: another ``segmentation.annotate`` holds ``out``.
        """
        try:
            import fcntl
        except ImportError:  # Windows: no flock
            return
        if self.fd is not None or not self.out.is_dir():
            return
        fd = os.open(self.out, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(
                f"{self.out} is open in another segmentation.annotate (each would overwrite the other's "
                f"labels): {self.advice}"
            ) from None
        self.fd = fd

    def __enter__(self) -> OutLock:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def saved_state(out: Path) -> bytes | None:
    """The bytes of the state saved in ``out`` now; None where there is none (or it cannot be read)."""
    from segmentation.annotate.state_file import STATE_FILE

    try:
        return (out / STATE_FILE).read_bytes()
    except OSError:
        return None


def check_detector(detector: YoloDetector | None, session: AnnotationSession) -> None:
    """Every class ``detector`` predicts is one of ``session``'s; nothing to check without one."""
    if detector is not None:
        from segmentation.annotate.detector import check_detector_classes

        check_detector_classes(detector, session.classes)


def check_review_options(args: argparse.Namespace) -> None:
    """``--conf``, ``--imgsz``, ``--tile``, ``--mask-iou`` only with ``--detector`` (``--mask-iou`` in
    [0, 1]); no proposals with ``--export``, ``--rename-class`` or ``--rename-category``."""
    if args.export and (args.proposals or args.detector):
        raise UserError("--export writes what is accepted; --proposals and --detector are for the page")
    rename = "--rename-class" if args.rename_class else "--rename-category" if args.rename_category else None
    if rename and (args.proposals or args.detector):
        raise UserError(f"{rename} renames and exits; --proposals and --detector are for the page")
    given = [
        f"--{name.replace('_', '-')}"
        for name in ("conf", "imgsz", "tile", "mask_iou")
        if getattr(args, name) is not None
    ]
    if given and args.detector is None:
        verb = "applies" if len(given) == 1 else "apply"
        raise UserError(f"{' and '.join(given)} only {verb} with --detector WEIGHTS")
    if args.mask_iou is not None and not 0 <= args.mask_iou <= 1:  # NaN too
        raise UserError(f"--mask-iou must be in [0, 1], got {args.mask_iou}")


def read_review_sources(args: argparse.Namespace) -> tuple[ProposalFile | None, YoloDetector | None]:
    """The ``--proposals`` file read and checked, or the ``--detector`` loaded (on the CPU for now).

    The detector's class names are checked against the classes saved in ``--out``: a session saved
    with a name Windows cannot hold resumes with it (a warning), so its detector's same name does too.
    """
    if args.proposals is not None:
        from segmentation.annotate.proposal_file import read_proposal_file

        return read_proposal_file(args.proposals), None
    if args.detector is not None:
        from segmentation.annotate.detector import load_yolo_detector
        from segmentation.annotate.state_file import saved_classes

        conf = 0.25 if args.conf is None else args.conf
        saved = saved_classes(args.out)
        return None, load_yolo_detector(
            args.detector, conf=conf, imgsz=args.imgsz, tile=args.tile, saved=saved
        )
    return None, None


def place_file_proposals(
    session: AnnotationSession, proposal_file: ProposalFile
) -> tuple[dict[str, list[Proposal]], list[str]]:
    """The file's proposals by photo, every entry placed and checked (``proposal_file.place_proposals``),
    and the ``note:`` lines naming the entries left out; printed by the caller, once: a session read again
    (another page saved it while this one loaded) printed each twice.

    Names are made relative to ``--images`` where the file was made on a folder below it; made on a folder
    above it, the entries of photos outside ``--images`` are left out with a ``note:``
    (``proposal_file.relative_to_images``); a file made on other photos of the same names is refused
    (``proposal_file.check_made_on``). On a restart with the
    file the session took before, the entries of the photos that had its proposals
    are passed over, and those of photos deleted or replaced by ones of another size since are left out
    with a ``note:`` (``proposal_file.left_to_place``): the same command stopped at them with an error.
    """
    from segmentation.annotate import export
    from segmentation.annotate.proposal_file import (
        check_made_on,
        left_to_place,
        place_proposals,
        relative_to_images,
    )

    def image_size(key: str) -> tuple[int, int]:
        return export.upright_size(session.image_path(key), key)

    notes = []
    proposal_file, outside = relative_to_images(proposal_file, session.images_dir)
    if outside:
        notes.append(
            f"note: proposals file {proposal_file.path} was made on the photos of {proposal_file.folder}: "
            f"left out its proposals of {few(outside)}, not below --images {session.images_dir}"
        )
    had = session.took_proposals(proposal_file.source)
    left, left_out = left_to_place(proposal_file, keys=session.keys, had=had, image_size=image_size)
    check_made_on(left, images=session.images_dir, keys=session.keys)
    if left_out:
        notes.append(
            f"note: proposals file {proposal_file.path}: left out its proposals of {few(left_out)}, "
            "changed since this --out took the file (run the prediction again to review them)"
        )
    placed = place_proposals(left, keys=session.keys, classes=session.classes, image_size=image_size)
    return placed, notes


def check_counts(args: argparse.Namespace) -> None:
    """``--prefetch`` >= 0, ``--threads`` >= 1, ``--crop-fraction`` in [0, 1], ``--speck-cells`` >= 0."""
    if not 0 <= args.crop_fraction <= 1:  # NaN too
        raise UserError(f"--crop-fraction must be in [0, 1], got {args.crop_fraction}")
    check_speck_cells(args.speck_cells)
    if args.prefetch < 0:
        raise UserError(f"--prefetch must be >= 0, got {args.prefetch}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")


def check_model_options(args: argparse.Namespace) -> tuple[torch.device, str]:
    """``(device, decoder runtime)``; ``--model`` known, ``--checkpoint`` present; nothing loaded yet.

    Also sets ``--threads``: torch fixes its thread count per thread once any
    operator has run, so it goes first.

    Raises:
        UserError: an unknown model, a missing checkpoint, a bad or absent device, an
            impossible ``--runtime``.
    """
    import torch

    from segmentation.decoder_onnx import choose_runtime, missing_packages
    from segmentation.evaluate import resolve_device
    from segmentation.models import sam_model

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model is not None:
        sam_model(args.model)  # one line naming the known models
    if args.checkpoint is not None:
        check_input_file(args.checkpoint, "checkpoint", inside=("decoder.pt",))
    try:
        device = resolve_device(args.device)  # UserError for a device this machine lacks
    except RuntimeError as error:  # a string torch.device() cannot parse
        raise UserError(f"bad --device {args.device!r}: {one_line(error)}") from None
    runtime, note = choose_runtime(args.runtime, device.type, missing_packages())
    if note:
        print(f"note: {note}")
    return device, runtime


def read_colour_head(args: argparse.Namespace) -> ColourHead | None:
    """The colour head ``--checkpoint`` carries (None: none, a full state dict, ``--no-colour-head``).

    Raises:
        UserError: a head together with ``--crop-fraction`` (it works on whole-photo logits; with
            the checkpoint's colour prompt too, both named), a damaged head; ``--no-colour-head``
            without ``--checkpoint`` or with one that carries no head (it changed nothing).
    """
    from segmentation.colour_head import refuse_idle_no_colour_head
    from segmentation.colour_prompt import refuse_colour_with_crops
    from segmentation.finetuned import load_colour_head, load_colour_prompt

    head = None if args.checkpoint is None else load_colour_head(args.checkpoint)
    if args.no_colour_head:
        refuse_idle_no_colour_head(head, args.checkpoint, flag="--checkpoint")
        return None
    if head is not None and args.crop_fraction > 0:
        prompt = None if args.no_colour_prompt else load_colour_prompt(args.checkpoint)
        refuse_colour_with_crops(head, prompt, args.crop_fraction, args.checkpoint)
    return head


def note_colour_left_behind(args: argparse.Namespace, detector: YoloDetector | None) -> None:
    """A ``note:`` on stderr when ``--checkpoint`` is a full state dict whose run's ``decoder.pt`` carries
    a colour head or colour prompt (:func:`segmentation.finetuned.colour_left_behind`): the
    ``--detector``'s box proposals are decoded without them. Without a detector nothing here uses
    them (clicks stay SAM's, a ``--proposals`` file's masks are its own): no note."""
    from segmentation.finetuned import colour_left_behind

    if detector is not None and args.checkpoint is not None:
        if note := colour_left_behind(args.checkpoint, flag="--checkpoint"):
            print(f"note: {note}", file=sys.stderr, flush=True)


def warn_grey_photos(
    session: AnnotationSession,
    detector: YoloDetector | None,
    *,
    colour_head: ColourHead | None,
    colour_prompt: ColourPrompt | None,
) -> None:
    """A ``warning:`` on stderr when the ``--detector``'s box proposals get the decoder's colour head
    or colour prompt and most photos of the list are grey
    (:func:`segmentation.finetuned.greyscale_warning`), as the inspection cascade says. Without a
    detector nothing here uses them: no warning. Files that are no image
    (:attr:`AnnotationSession.unreadable`) are passed over; one that does not decode for all its
    header reads is the page's to show, and the check passes over it too."""
    from segmentation.finetuned import greyscale_warning

    if detector is None:
        return
    unreadable = set(session.unreadable)
    photos = [session.image_path(key) for key in session.keys if key not in unreadable]
    warning = greyscale_warning(photos, colour_head=colour_head, colour_prompt=colour_prompt)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def read_colour_prompt(args: argparse.Namespace) -> ColourPrompt | None:
    """The colour prompt ``--checkpoint`` carries (None: none, a full state dict, ``--no-colour-prompt``).

    Raises:
        UserError: a prompt together with ``--crop-fraction`` (its maps are in the whole photo's
            frame), a damaged prompt; ``--no-colour-prompt`` without ``--checkpoint`` or with one
            that carries no prompt (it changed nothing).
    """
    from segmentation.colour_prompt import refuse_colour_with_crops, refuse_idle_no_colour_prompt
    from segmentation.finetuned import load_colour_prompt

    prompt = None if args.checkpoint is None else load_colour_prompt(args.checkpoint)
    if args.no_colour_prompt:
        refuse_idle_no_colour_prompt(prompt, args.checkpoint, flag="--checkpoint")
        return None
    refuse_colour_with_crops(None, prompt, args.crop_fraction, args.checkpoint)
    return prompt


def serve(
    args: argparse.Namespace,
    session: AnnotationSession,
    sock: socket.socket,
    *,
    device: torch.device,
    runtime: str,
    lock: OutLock | None = None,
    detector: YoloDetector | None = None,
    proposals: tuple[ProposalFile, dict[str, list[Proposal]]] | None = None,
    colour_head: ColourHead | None = None,
    colour_prompt: ColourPrompt | None = None,
) -> None:
    """Loads SAM, writes the session (with the file's proposals), and serves the page until Ctrl+C."""
    from common.io import embeddings_root
    from segmentation.embeddings import EmbeddingCache

    try:
        sam, name = load_model(args.model, args.checkpoint, device)
    except (RuntimeError, AssertionError) as error:  # e.g. out of GPU memory
        raise UserError(f"cannot load the model on {device}: {one_line(error)}") from None
    write_session(session, lock=lock, proposals=proposals)  # only now: a bad model has left nothing behind
    cache = EmbeddingCache(
        args.cache_dir or embeddings_root(),
        sam,
        model_name=name,
        elsewhere="restart with --cache-dir <a writable folder>",
    )
    app = build_app(
        args,
        session,
        sam,
        cache=cache,
        name=name,
        runtime=runtime,
        detector=detector,
        colour_head=colour_head,
        colour_prompt=colour_prompt,
        proposal_file=proposals[0] if proposals else None,
    )
    print(describe(session, name=name, device=device, runtime=runtime, cache=cache))
    for line in option_lines(
        args, colour_head=colour_head is not None, colour_prompt=colour_prompt is not None
    ):
        print(line)
    print(f"Open {url_for(sock)}   (Ctrl+C to stop)", flush=True)
    forced = run_server(app, sock)
    print(stopped_line(session, cache, forced=forced))


def stopped_line(session: AnnotationSession, cache: EmbeddingCache, *, forced: bool = False) -> str:
    """The line printed once the server has stopped: where the labels are, the embeddings the page
    encoded (kept: a next page on these photos reuses them), the export command. ``forced``: a second
    Ctrl+C stopped it before the changes then in flight were answered."""
    from segmentation.embeddings import kept_note

    saved = f"stopped; everything accepted is saved in {session.out}"
    if forced:
        saved = (
            f"stopped at once (second Ctrl+C); everything the page showed as saved is in {session.out}, "
            "a change sent in the last moment may not be (the next start shows what is)"
        )
    if kept := kept_note(cache):  # it said nothing of them: whether the encoder's work was lost
        saved += f"; {kept} (the same command again reuses them)"
    return f"{saved}. YOLO + COCO: python -m segmentation.annotate --out {quote(str(session.out))} --export"


def write_session(
    session: AnnotationSession,
    *,
    lock: OutLock | None,
    proposals: tuple[ProposalFile, dict[str, list[Proposal]]] | None,
) -> None:
    """Makes and locks a new ``--out``, writes the session, prints its notices, adds the file's proposals."""
    if lock is not None:  # a new --out: made and locked before anything is written in it
        session.out.mkdir(parents=True, exist_ok=True)
        lock.take()
        if lock.saved_meanwhile():  # read as new, then a page on it ran while the model loaded
            raise UserError(
                f"{session.out} was annotated by another segmentation.annotate while this one loaded the "
                "model (nothing written): run this command again to resume it"
            )
    if warning := session.persist(splits_later=True):  # the page reads no export: it starts
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    print_notices(session)
    if proposals is not None:
        proposal_file, by_image = proposals
        added = session.add_proposals(by_image, source=proposal_file.source)
        total = len(proposal_file.results)
        photos = len({result.file_name for result in proposal_file.results})
        print(
            f"{added} new proposals from {proposal_file.path} ({total} on {photos} photos; "
            "a photo takes a file's proposals once, none once it is done or good)"
        )
    if note := not_a_class_note(session):
        print(note)


def not_a_class_note(session: AnnotationSession) -> str | None:
    """A ``note:`` line on the undecided proposals whose class is not one of the session's
    (``anomaly.predict``'s ``anomaly``): how many, and how to name them; None when there are none.

    Such a proposal is accepted only as one of the classes (R: the selected one), so its name is
    never saved nor exported.
    """
    unnamed = {
        key: [p.class_name for p in session.entry(key).proposals if p.class_name not in session.classes]
        for key in session.keys
    }
    photos = sum(map(bool, unnamed.values()))
    if not photos:
        return None
    count = sum(map(len, unnamed.values()))
    names = list(dict.fromkeys(name for found in unnamed.values() for name in found))
    folded = {name.casefold() for name in session.classes}
    # a name that is a class but for case is not offered as another class (Scratch beside scratch)
    new = [name for name in names if name.casefold() not in folded]
    one = len(names) == 1
    keep = ""
    if new:
        it = len(new) == 1
        keep = (
            f"; to keep {'it as a class' if it else 'them as classes'}, add {'it' if it else 'them'}: "
            f"--classes {' '.join(map(quote, [*session.classes, *new]))}"
        )
    return (
        f"note: {count} proposal{'s' if count != 1 else ''} to review on {photos} photo"
        f"{'s' if photos != 1 else ''} {'are' if count != 1 else 'is'} of {', '.join(names)}, not "
        f"{'a class' if one else 'classes'} here (classes: {' '.join(map(quote, session.classes))}): "
        "R accepts one as the selected class (number keys pick it), E corrects it first"
        + keep
        + case_only_words(names, session.classes)
    )


def case_only_words(names: list[str], classes: list[str]) -> str:
    """What :func:`not_a_class_note` adds for each proposal class that is one of ``classes`` but for case:
    a cascade's ``Scratch`` beside ``--classes scratch`` was refused before, and now loads as not a class.

    >>> case_only_words(["Scratch", "anomaly"], ["scratch", "dent"])
    '; Scratch differs from the class scratch in case only: R with scratch selected accepts it as scratch'
    """
    folded = {name.casefold(): name for name in reversed(classes)}  # the first of classes alike but for case
    return "".join(
        f"; {name} differs from the class {alike} in case only: R with {alike} selected accepts it as {alike}"
        for name in names
        if (alike := folded.get(name.casefold())) is not None
    )


def build_app(
    args: argparse.Namespace,
    session: AnnotationSession,
    sam: Sam,
    *,
    cache: EmbeddingCache,
    name: str,
    runtime: str,
    detector: YoloDetector | None,
    colour_head: ColourHead | None,
    colour_prompt: ColourPrompt | None = None,
    proposal_file: ProposalFile | None = None,
) -> FastAPI:
    """The page's FastAPI app over ``session`` with the options of ``args``."""
    from segmentation.annotate.app import create_app
    from segmentation.crops import CropRule

    return create_app(
        session,
        sam,
        cache=cache,
        model_name=name,
        prefetch=args.prefetch,
        allowed_hosts=allowed_hosts(args.host),
        runtime=runtime,
        detector=detector,
        crops=CropRule(max_fraction=args.crop_fraction) if args.crop_fraction > 0 else None,
        colour_head=colour_head,
        colour_prompt=colour_prompt,
        speck_cells=args.speck_cells,
        mask_iou=MASK_IOU if args.mask_iou is None else args.mask_iou,
        proposal_file=proposal_file,
    )


def run_server(app: FastAPI, sock: socket.socket) -> bool:
    """Serves ``app`` on the bound ``sock`` until Ctrl+C or a ``kill`` (SIGTERM), which ends the command as
    Ctrl+C does, with exit code 0 (uvicorn shuts down gracefully first). One that came before uvicorn took
    the signals over propagates: ``terminated``, 143 (Ctrl+C: ``interrupted``, 130).

    Returns:
        Whether a second Ctrl+C stopped it at once, before the requests then in flight were answered.
        Those get no answer (the page says the server stopped) rather than a 500, and their
        cancellation is not logged: it printed some 300 lines of CancelledError tracebacks.
    """
    import asyncio
    import logging

    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            await super().shutdown(sockets)
            if self.force_exit:  # the tasks in flight are cancelled next: no 500 for them, no answer
                for connection in list(self.server_state.connections):
                    if connection.transport is not None:
                        connection.transport.abort()

    server = Server(uvicorn.Config(QuietForcedLifespan(app, lambda: server.force_exit), log_level="warning"))

    def not_a_forced_cancel(record: logging.LogRecord) -> bool:  # a request's, logged with its exception
        kind = record.exc_info[0] if record.exc_info else None
        return not (server.force_exit and kind is not None and issubclass(kind, asyncio.CancelledError))

    log = logging.getLogger("uvicorn.error")
    log.addFilter(not_a_forced_cancel)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn has shut down gracefully and re-raises the Ctrl+C or kill it caught
        if not server.should_exit:  # came before uvicorn took the signals over: a stop of the start, not
            raise  # of the server ('terminated', 143, as a kill while SAM loads; Ctrl+C: 'interrupted', 130)
        acknowledge_termination()  # a kill (SIGTERM) is a server's ordinary stop: exit 0, as for Ctrl+C
    finally:
        log.removeFilter(not_a_forced_cancel)
    return server.force_exit


class QuietForcedLifespan:
    """``app`` as uvicorn serves it: no ``lifespan.shutdown.failed`` sent once ``forced()`` (a second Ctrl+C).

    uvicorn skips the app's shutdown on a forced stop and cancels its lifespan, which starlette reports as
    that message with the traceback as its text, and uvicorn logs as an error. The message is dropped by
    its type: no shutdown runs on a forced stop, so nothing else sends it (matching the text's last word,
    ``CancelledError``, missed a cancellation that carries a message, as anyio's cancel scopes' do).
    uvicorn then notes the lifespan at info level, below the server's ``warning``.
    """

    def __init__(self, app: FastAPI, forced: Callable[[], bool]) -> None:
        self.app, self.forced = app, forced

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        async def send_unless_forced(message: dict) -> None:
            if not (self.forced() and message["type"] == "lifespan.shutdown.failed"):
                await send(message)

        await self.app(scope, receive, send_unless_forced if scope["type"] == "lifespan" else send)


def option_lines(args: argparse.Namespace, *, colour_head: bool, colour_prompt: bool = False) -> list[str]:
    """The start-up lines on the options in force: zoomed crops, the colour head and prompt, a non-loopback
    host."""
    lines = []
    if args.crop_fraction > 0:
        lines.append(
            f"zoomed crops for boxes whose longest side < {args.crop_fraction:g} x the photo's "
            "(the first box of a crop runs the encoder once)"
        )
    if colour_head:
        lines.append(
            f"colour head of {args.checkpoint}: refines the detector's box proposals "
            "(clicks stay SAM's; --no-colour-head leaves it out)"
        )
    if colour_prompt:
        lines.append(
            f"colour prompt of {args.checkpoint}: each detector box's colour map is SAM's mask prompt "
            "(clicks stay SAM's; --no-colour-prompt leaves it out)"
        )
    if not is_loopback(args.host):
        lines.append(
            f"note: bound to {args.host}: anyone who can reach this machine can read and change the labels"
        )
    return lines


def describe(
    session: AnnotationSession, *, name: str, device: torch.device, runtime: str, cache: EmbeddingCache
) -> str:
    """The start-up lines: the images and their statuses, the classes, the model, where it writes."""
    import torch

    counts = session.counts()
    proposals = [len(session.entry(key).proposals) for key in session.keys]
    unreadable = f", {counts['unreadable']} unreadable" if counts["unreadable"] else ""
    return (
        f"{len(session.keys)} images in {session.images_dir} ({counts['unlabelled']} unlabelled, "
        f"{counts['in_progress']} in progress, {counts['done']} done, {counts['good']} good{unreadable}; "
        f"{sum(proposals)} proposals to review on {sum(map(bool, proposals))}); "
        f"classes: {' '.join(map(quote, session.classes))}; model {name} on {device}, "
        f"{torch.get_num_threads()} CPU threads, decoder on {runtime}; embeddings in {cache.folder}\n"
        f"writing to {session.category_dir} (state: {session.state_path})"
    ) + unreadable_note(session.unreadable)


def print_warnings(session: AnnotationSession) -> None:
    """The ``warning:`` lines of what reading ``session`` found (names saved before the rules refused
    them), on stderr: called once for the session a command goes on with, not at each read."""
    for warning in session.warnings:
        print(warning, file=sys.stderr, flush=True)


def print_notices(session: AnnotationSession, *, shown: int = 3) -> None:
    """The session's start-up notices (labels of replaced photos set aside), one ``note:`` line each,
    the first ``shown`` of them and a count of the rest."""
    from segmentation.annotate.export import REPLACED_DIR

    for notice in session.notices[:shown]:
        print(f"note: {notice}")
    if len(session.notices) > shown:
        print(
            f"note: and {len(session.notices) - shown} more photos replaced by ones of another size: their "
            f"labels are set aside in {session.out / REPLACED_DIR}"
        )


def unreadable_note(keys: list[str]) -> str:
    """A ``note:`` line naming the listed files that are no image (up to three), or nothing."""
    if not keys:
        return ""
    shown = few(keys)
    files = "1 file" if len(keys) == 1 else f"{len(keys)} files"
    return (
        f"\nnote: {files} with an image suffix but no image, which cannot be annotated nor marked good "
        f"(fix or move them): {shown}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
