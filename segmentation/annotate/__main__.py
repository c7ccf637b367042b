"""``python -m segmentation.annotate``: label new defect photos with SAM clicks in a local web page.

    python -m segmentation.annotate --images photos/ --out datasets/new_defects --classes scratch dent stain

prints ``Open http://127.0.0.1:<port>/`` and serves until Ctrl+C. The same
``--out`` again resumes (``--images`` and ``--classes`` may then be left out).
``--export`` writes YOLO + COCO into ``<out>/export`` without starting the
server. See :mod:`segmentation.annotate` for the page and the output layout.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
from pathlib import Path

from common.cli import exit_code
from common.errors import UserError
from converters.convert import TASKS, format_report

#: Default port; ``--port 0`` (or ``auto``) takes any free one.
DEFAULT_PORT = 8765
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m segmentation.annotate",
        description="Label defects in new photos with SAM (click, box, accept) in a local web page; "
        "writes an MVTec-layout category, and YOLO + COCO through the converters.",
    )
    io = parser.add_argument_group("input and output")
    io.add_argument(
        "--images", type=Path, help="folder of photos (searched recursively); optional on a resume"
    )
    io.add_argument("--out", type=Path, required=True, help="output folder: state, MVTec category, export")
    io.add_argument(
        "--classes",
        nargs="+",
        metavar="NAME",
        help="defect classes, number keys 1-9 pick them (first run: defect)",
    )
    io.add_argument("--category", help="category folder name under --out (default: the --out folder's name)")
    io.add_argument(
        "--export", action="store_true", help="write YOLO + COCO to OUT/export and exit (no server)"
    )
    io.add_argument(
        "--yolo-task",
        choices=TASKS,
        default="detect",
        help="YOLO labels of --export: boxes (default) or polygons",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", help="registry name: vit_t (MobileSAM, default), vit_b, vit_l, vit_h")
    model.add_argument(
        "--checkpoint", type=Path, help="fine-tuned decoder.pt or full sam_finetuned.pth (with --model)"
    )
    model.add_argument(
        "--cache-dir", type=Path, help="embedding cache (default ~/.cache/mvtec-finetune/embeddings)"
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
    server = parser.add_argument_group("server")
    server.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (127.0.0.1); other than loopback exposes the page",
    )
    server.add_argument(
        "--port", default=str(DEFAULT_PORT), help=f"port ({DEFAULT_PORT}); 0 or auto picks a free one"
    )
    return parser


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``port`` 0: a free one), IPv4 or IPv6 by the address.

    Raises:
        UserError: the address cannot be bound (in use, not local).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise UserError(f"cannot use host {host!r}: {error}") from None
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
    return load_finetuned(checkpoint, model=model, device=device)


def main(argv: list[str] | None = None) -> int:
    """Parses ``argv`` and serves (or exports); bad input is one ``error:`` line and exit code 2."""
    args = build_parser().parse_args(argv)
    return exit_code(lambda: run(args))


def run(args: argparse.Namespace) -> None:
    """Opens the session, then exports, or loads SAM and serves the page until Ctrl+C."""
    from segmentation.annotate.session import AnnotationSession

    port = parse_port(args.port)
    if args.prefetch < 0:
        raise UserError(f"--prefetch must be >= 0, got {args.prefetch}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    session = AnnotationSession.open(args.out, args.images, classes=args.classes, category=args.category)
    if args.export:
        print(format_report(session.export(task=args.yolo_task)))
        return
    sock = bind(args.host, port)  # before loading the model: a taken port fails at once
    try:
        serve(args, session, sock)
    finally:
        sock.close()


def choose_runtime(requested: str, device_type: str, missing: list[str]) -> tuple[str, str | None]:
    """Where the decoder runs per click, and a note when ``auto`` had to fall back.

    ``auto`` is ONNX Runtime on a CPU (about twice as fast per click) and torch
    elsewhere; without the ``missing`` ONNX packages it falls back to torch.

    >>> choose_runtime("auto", "cpu", [])
    ('onnx', None)
    >>> choose_runtime("auto", "cuda", [])
    ('torch', None)

    Raises:
        UserError: ``onnx`` asked for on a GPU, or without its packages.
    """
    runtime = requested if requested != "auto" else ("onnx" if device_type == "cpu" else "torch")
    if runtime == "onnx" and device_type != "cpu":
        raise UserError(
            f"--runtime onnx runs the decoder on the CPU; the model is on {device_type}: use torch"
        )
    if runtime == "onnx" and missing:
        if requested == "onnx":
            raise UserError(
                f"--runtime onnx needs {' and '.join(missing)}: pip install {' '.join(missing)}"
            )
        return (
            "torch",
            f"{' and '.join(missing)} not installed: the decoder runs in torch (about half as fast)",
        )
    return runtime, None


def serve(args: argparse.Namespace, session, sock: socket.socket) -> None:
    import torch
    import uvicorn

    from common.io import cache_root
    from segmentation.annotate.app import create_app
    from segmentation.decoder_onnx import missing_packages
    from segmentation.embeddings import EmbeddingCache
    from segmentation.evaluate import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)  # before any thread runs an operator: torch fixes it per thread
    try:
        device = resolve_device(args.device)
        runtime, note = choose_runtime(args.runtime, device.type, missing_packages())
        if note:
            print(f"note: {note}")
        sam, name = load_model(args.model, args.checkpoint, device)
    except (RuntimeError, AssertionError) as error:  # e.g. --device cuda without CUDA
        raise UserError(f"cannot load the model on {args.device}: {error}") from None
    cache = EmbeddingCache(args.cache_dir or cache_root() / "embeddings", sam, model_name=name)
    app = create_app(
        session,
        sam,
        cache=cache,
        model_name=name,
        prefetch=args.prefetch,
        allowed_hosts=LOOPBACK_HOSTS if is_loopback(args.host) else None,
        runtime=runtime,
    )
    counts = session.counts()
    print(
        f"{len(session.keys)} images in {session.images_dir} ({counts['unlabelled']} unlabelled, "
        f"{counts['in_progress']} in progress, {counts['done']} done, {counts['good']} good); "
        f"classes: {' '.join(session.classes)}; model {name} on {device}, {torch.get_num_threads()} CPU "
        f"threads, decoder on {runtime}; embeddings in {cache.folder}"
    )
    print(f"writing to {session.category_dir} (state: {session.state_path})")
    if not is_loopback(args.host):
        print(f"note: bound to {args.host}: anyone who can reach this machine can read and change the labels")
    print(f"Open {url_for(sock)}   (Ctrl+C to stop)", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn has shut down gracefully and re-raises the Ctrl+C it caught
    print(
        f"stopped; everything accepted is saved in {session.out}. "
        f"YOLO + COCO: python -m segmentation.annotate --out {session.out} --export"
    )


if __name__ == "__main__":
    raise SystemExit(main())
