"""``python -m segmentation.annotate`` given bad input: one ``error:`` line, exit 2, no server, no writes.

Each case runs the real command in a subprocess with the network blocked and
checks that it stops before serving, with one line naming the bad value and
nothing written anywhere: the session is only read, not saved, until the model
has loaded. No case needs model weights: the cache points at an empty folder
(``MVTEC_FINETUNE_CACHE``), and every case fails before a model would load, or
on a checkpoint file that is read before any official weights would be.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from converters.masks import mask_to_rle
from tests.reliability.conftest import assert_user_error, call_main, run_cli

ANNOTATE = "segmentation.annotate"
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")


@pytest.fixture
def paths(tmp_path) -> dict[str, Path]:
    """Two photos, a garbage and a foreign checkpoint, an empty weights cache; ``out`` not there yet."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        image = np.full((48, 64, 3), 150, np.uint8)
        cv2.circle(image, (20 + 10 * index, 24), 6, (40, 40, 170), -1)  # a dark-red defect
        assert cv2.imwrite(str(photos / f"{index:03d}.png"), image)
    nested = tmp_path / "labelled"  # an --out that holds the photos
    (nested / "photos").mkdir(parents=True)
    (nested / "photos" / "000.png").write_bytes((photos / "000.png").read_bytes())
    files = tmp_path / "files"
    files.mkdir()
    (files / "garbage.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    # A fine-tuned decoder of another model: its header is all that is read before the refusal.
    torch.save({"format": "mvtec-finetune/sam-decoder", "model": "vit_b"}, files / "vit_b_decoder.pt")
    (tmp_path / "cache").mkdir()
    write_proposals(files)
    return {
        "photos": photos,
        "out": tmp_path / "out",
        "nested": nested,
        "missing": tmp_path / "no_such_folder",
        "garbage": files / "garbage.pt",
        "foreign": files / "vit_b_decoder.pt",
        "cache": tmp_path / "cache",
        "files": files,
    }


def write_proposals(files: Path) -> None:
    """Proposals files for ``paths``' photos (64x48): garbage, a mask of another size, a missing photo.

    (A class not among ``--classes`` is no error: such proposals are accepted only as one of them.)
    """

    def entry(shape, **fields):
        mask = np.zeros(shape, bool)
        mask[10:20, 10:20] = True
        return {
            "file_name": "000.png",
            "category_id": 1,
            "score": 0.9,
            "segmentation": mask_to_rle(mask),
            **fields,
        }

    for name, content in {
        "garbage": "[{not json",
        "size": [entry((96, 128))],
        "photo": [entry((48, 64), file_name="lot_9/777.png")],
    }.items():
        (files / name).mkdir()
        text = content if isinstance(content, str) else json.dumps(content)
        (files / name / "predictions.json").write_text(text)


def annotate(paths: dict[str, Path], *args: str, in_process: bool = False):
    """The command with ``{name}`` in ``args`` replaced by ``paths[name]``, weights cache empty.

    In a subprocess, or with ``in_process`` its ``main()`` in this one (:func:`call_main`).
    """
    filled = [arg.format(**{name: str(path) for name, path in paths.items()}) for arg in args]
    env = {"MVTEC_FINETUNE_CACHE": str(paths["cache"])}
    if in_process:
        return call_main(ANNOTATE, *filled, env=env)
    return run_cli(ANNOTATE, *filled, env=env, timeout=120)


SERVE = ("--images", "{photos}", "--out", "{out}", "--device", "cpu", "--port", "0")


@pytest.mark.parametrize(
    "args, fragments",
    [
        pytest.param(("--out", "{out}"), ["give the image folder (--images)"], id="no-images"),
        pytest.param(
            ("--images", "{missing}", "--out", "{out}"),
            ["image folder does not exist", "no_such_folder"],
            id="missing-images",
        ),
        pytest.param(
            ("--images", "{nested}/photos", "--out", "{nested}"),
            ["is inside the output folder", "labelled"],
            id="images-inside-out",
        ),
        pytest.param(("--images", "{photos}"), ["required: --out"], id="no-out"),
        pytest.param(
            (*SERVE, "--runtime", "tensorrt"),
            ["argument --runtime: invalid choice: 'tensorrt'"],
            id="bad-runtime",
        ),
        pytest.param(
            (*SERVE, "--model", "vit_z"), ["unknown SAM model 'vit_z'", "vit_t"], id="unknown-model"
        ),
        pytest.param(
            (*SERVE, "--checkpoint", "{missing}/decoder.pt"),
            ["checkpoint not found"],
            id="missing-checkpoint",
        ),
        pytest.param(
            (*SERVE, "--checkpoint", "{garbage}"),
            ["cannot read checkpoint", "garbage.pt"],
            id="garbage-checkpoint",
        ),
        pytest.param(
            (*SERVE, "--checkpoint", "{foreign}", "--model", "vit_t"),
            ["was trained on model 'vit_b', not 'vit_t'"],
            id="checkpoint-of-another-model",
        ),
        pytest.param(
            ("--images", "{photos}", "--out", "{out}", "--device", "tpu9"),
            ["'tpu9'"],
            id="bad-device",
        ),
        pytest.param(
            ("--images", "{photos}", "--out", "{out}", "--device", "cuda"),
            ["--device cuda", "CUDA"],
            id="absent-cuda",
            marks=NO_CUDA,
        ),
        pytest.param((*SERVE, "--classes", "good"), ["class name 'good' is reserved"], id="reserved-class"),
        pytest.param((*SERVE, "--threads", "0"), ["--threads must be >= 1"], id="threads"),
        pytest.param(
            ("--images", "{photos}", "--out", "{out}", "--port", "eighty"), ["--port"], id="port-text"
        ),
    ],
)
def test_bad_input_stops_before_serving_with_nothing_written(
    paths, tmp_path, unchanged, args, fragments, request
):
    # the first case end to end in a subprocess; the others call the same main() in this process
    in_process = request.node.callspec.id != "no-images"
    with unchanged(tmp_path):
        result = annotate(paths, *args, in_process=in_process)
    assert_user_error(result, *fragments)
    assert "Open http" not in result.stdout


REVIEW = (*SERVE, "--classes", "scratch", "dent")


@pytest.mark.parametrize(
    "args, fragments",
    [
        pytest.param(
            (*REVIEW, "--proposals", "{missing}/predictions.json"),
            ["cannot read proposals file", "no_such_folder/predictions.json"],
            id="missing-proposals",
        ),
        pytest.param(
            (*REVIEW, "--proposals", "{files}/garbage/predictions.json"),
            ["cannot read proposals file", "garbage/predictions.json: not JSON"],
            id="malformed-proposals",
        ),
        pytest.param(
            (*REVIEW, "--proposals", "{files}/size/predictions.json"),
            ["entry 0: its mask is 128x96 but photo 000.png is 64x48"],
            id="proposal-of-another-size",
        ),
        pytest.param(
            (*REVIEW, "--proposals", "{files}/photo/predictions.json"),
            ["no photo 'lot_9/777.png' among the images of --images"],
            id="proposal-photo-missing",
        ),
        pytest.param(
            (*REVIEW, "--detector", "{missing}/best.pt"),
            ["weights not found", "best.pt"],
            id="missing-detector",
        ),
        pytest.param(
            (*REVIEW, "--detector", "{garbage}"), ["cannot load model", "garbage.pt"], id="garbage-detector"
        ),
        pytest.param((*REVIEW, "--conf", "0.3"), ["--conf only applies with --detector"], id="conf-alone"),
    ],
)
def test_bad_proposals_and_detectors_stop_before_serving(
    paths, tmp_path, unchanged, args, fragments, request
):
    in_process = request.node.callspec.id != "missing-proposals"  # as the test above
    with unchanged(tmp_path):
        result = annotate(paths, *args, in_process=in_process)
    assert_user_error(result, *fragments)
    assert "Open http" not in result.stdout


def test_a_detector_whose_classes_are_not_the_sessions_is_refused(paths, tmp_path, unchanged):
    from ultralytics import YOLO

    YOLO("yolo11n.yaml").save(str(paths["files"] / "best.pt"))  # 80 classes named '0'..'79'
    with unchanged(tmp_path):
        result = annotate(paths, *REVIEW, "--detector", "{files}/best.pt", "--conf", "1.5")
        assert_user_error(result, "--conf must be in (0, 1], got 1.5")
        result = annotate(paths, *REVIEW, "--detector", "{files}/best.pt")
    assert_user_error(
        result,
        "detector best.pt predicts classes 0, 1, 2",
        "(80 in all) that are not among the classes (scratch dent)",
    )


def test_a_port_in_use_is_refused_before_the_model_loads(paths, tmp_path, unchanged):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with unchanged(tmp_path):
            result = annotate(
                paths, "--images", "{photos}", "--out", "{out}", "--device", "cpu", "--port", str(port)
            )
    assert_user_error(result, f"cannot listen on 127.0.0.1:{port}", "pass --port 0 for a free port")
