"""``--detector``: loading an ultralytics checkpoint, its settings, and the real path through the app."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from common.errors import UserError
from segmentation.annotate.detector import YoloDetector, check_detector_classes, load_yolo_detector


@pytest.fixture(scope="module")
def yolo_weights(tmp_path_factory):
    """A randomly initialised YOLO11n detection checkpoint (``yolo11n.yaml``, 80 classes '0'..'79')."""
    from ultralytics import YOLO

    path = tmp_path_factory.mktemp("weights") / "best.pt"
    YOLO("yolo11n.yaml").save(str(path))
    return path


@pytest.fixture(scope="module")
def firing_yolo_weights(tmp_path_factory):
    """``yolo_weights`` whose class '0' scores ~1 at every anchor: boxes on any photo, the random
    regression's reaching past it (ultralytics clips them), where the random head finds nothing."""
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    yolo = YOLO("yolo11n.yaml")
    with torch.no_grad():
        for branch in yolo.model.model[-1].cv3:  # the Detect head's class logits, one branch per stride
            branch[-1].bias[0] = 10.0
    path = tmp_path_factory.mktemp("weights") / "best.pt"
    yolo.save(str(path))
    return path


def test_a_checkpoint_loads_with_its_names_and_a_source_naming_its_bytes(yolo_weights):
    detector = load_yolo_detector(yolo_weights, conf=0.5, imgsz=64)
    assert detector.names[:3] == ["0", "1", "2"] and len(detector.names) == 80
    assert detector.source.startswith("best.pt sha256:") and len(detector.source.split(":")[1]) == 16
    assert (detector.conf, detector.imgsz, detector.tile) == (0.5, 64, None)
    assert load_yolo_detector(yolo_weights, tile=96).imgsz == 96  # tiled: native resolution per window


@pytest.mark.parametrize(
    "options, message",
    [
        ({"conf": 0}, "--conf must be in (0, 1], got 0"),
        ({"conf": 1.5}, "--conf must be in (0, 1]"),
        ({"imgsz": 16}, "--imgsz must be in [32, 8192], got 16"),
        ({"imgsz": 100000}, "--imgsz must be in [32, 8192], got 100000"),  # OpenCV ran out of memory
        ({"tile": 8}, "--tile needs a window side >= 32 px, got 8"),
    ],
)
def test_bad_settings_are_refused_before_loading(tmp_path, options, message):
    with pytest.raises(UserError) as error:
        load_yolo_detector(tmp_path / "missing.pt", **options)
    assert message in str(error.value)


@pytest.mark.parametrize("imgsz", [32, 8192])
def test_the_bounds_of_imgsz_pass_its_check(tmp_path, imgsz):
    with pytest.raises(UserError, match="^weights not found"):  # the next check: the file's
        load_yolo_detector(tmp_path / "missing.pt", imgsz=imgsz)


def test_missing_and_garbage_weights_are_one_line(tmp_path):
    with pytest.raises(UserError, match="weights not found"):
        load_yolo_detector(tmp_path / "missing.pt")
    garbage = tmp_path / "best.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(UserError, match="cannot load model") as error:
        load_yolo_detector(garbage)
    assert "\n" not in str(error.value)


def test_classes_outside_the_session_are_refused_with_a_hint():
    stub = type("Stub", (), {"names": ["scratch", "crack"], "source": "best.pt sha256:00"})()
    check_detector_classes(stub, ["scratch", "crack", "dent"])
    with pytest.raises(UserError) as error:
        check_detector_classes(stub, ["scratch", "dent"])
    assert str(error.value) == (
        "detector best.pt predicts classes crack that are not among the classes (scratch dent): "
        "add them, --classes scratch dent crack"
    )
    many = type("Stub", (), {"names": [str(i) for i in range(80)], "source": "best.pt sha256:00"})()
    with pytest.raises(UserError, match=r"0, 1, 2, 3, 4, 5, 6, 7, \.\.\. \(80 in all\)"):
        check_detector_classes(many, ["scratch"])


def weights_named(path, names):
    """A random YOLO11n checkpoint at ``path`` whose class names are ``names`` (as its data set's)."""
    from ultralytics import YOLO

    model = YOLO("yolo11n.yaml")
    model.model.names = dict(enumerate(names))
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(path))
    return path


def test_a_detector_class_with_spaces_is_a_class_of_the_page(tmp_path, photos):
    # converters --names-template '{defect_text}' names 'broken_large' 'broken large', as YOLO-World reads it;
    # the page refused the detector trained on them ("bad class name"), with no option to rename them
    from segmentation.annotate.session import AnnotationSession

    detector = load_yolo_detector(weights_named(tmp_path / "best.pt", ["broken large", "dent"]))
    assert detector.names == ["broken large", "dent"]
    session = AnnotationSession.open(tmp_path / "out", photos[0], default_classes=detector.names)
    assert session.classes == ["broken large", "dent"]
    with pytest.raises(UserError) as error:  # a hint to copy quotes the name
        check_detector_classes(detector, ["dent"])
    assert str(error.value).endswith("add them, --classes dent 'broken large'")
    with pytest.raises(UserError, match=r"not among the classes \('big scratch' dent\): add them"):
        check_detector_classes(detector, ["big scratch", "dent"])  # the page's classes quoted too


@pytest.mark.parametrize(
    "name, reason",
    [
        (
            "scratch/deep",
            "bad class name 'scratch/deep': use letters and digits (any script), spaces between ",
        ),
        ("scratch.", "bad class name 'scratch.': Windows drops a '.' or space at the end of a folder name"),
        ("combined", "class name 'combined' is reserved by the MVTec layout"),
    ],
)
def test_a_detector_class_the_page_cannot_take_is_refused_naming_the_weights_and_the_way_out(
    tmp_path, photos, capsys, name, reason
):
    from segmentation.annotate.__main__ import main

    weights = weights_named(tmp_path / "runs" / "best.pt", ["dent", name])
    argv = ["--images", str(photos[0]), "--out", str(tmp_path / "out"), "--detector", str(weights)]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: detector weights {weights}: {reason}") and error.count("\n") == 1
    assert error.endswith(
        "the class names are the weights' own, from the data set it was trained on: rename that class there "
        "(converters' --names-template, or the names in --mask-values) and train again, or annotate without "
        "--detector\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_saved_session_with_a_class_windows_cannot_hold_reopens_with_its_detector(
    tmp_path, photos, capsys, monkeypatch
):
    # the session resumes with its 'dent.' (saved before the rule refused it) with a warning, but the
    # detector's names were checked before the state was read: the detector it was made with was refused
    import json

    from segmentation.annotate import __main__ as cli
    from segmentation.annotate.session import AnnotationSession

    out = tmp_path / "out"
    session = AnnotationSession.open(out, photos[0], classes=["dent"])
    state = json.loads(session.state_path.read_text())
    state["classes"] = ["dent."]
    session.state_path.write_text(json.dumps(state))
    reached = []

    def load_model(model, checkpoint, device):  # every check of the command passed: stop there
        reached.append(True)
        raise UserError("stopped before the model")

    monkeypatch.setattr(cli, "load_model", load_model)
    weights = weights_named(tmp_path / "runs" / "best.pt", ["dent."])
    argv = ["--out", str(out), "--detector", str(weights), "--device", "cpu", "--port", "0"]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert reached == [True] and error.endswith("error: stopped before the model\n")
    assert error.startswith("warning: class 'dent.' of ") and "Windows drops a '.'" in error
    # a name the session does not hold yet is held to the whole rule
    weights = weights_named(tmp_path / "runs" / "other.pt", ["dent.", "nul"])
    assert cli.main([*argv[:3], str(weights), *argv[4:]]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: detector weights {weights}: bad class name 'nul': Windows keeps")
    assert reached == [True]


@pytest.mark.parametrize("tile", [None, 64])
def test_the_real_detector_path_through_the_app(photos, tmp_path, colour_sam, firing_yolo_weights, tile):
    """ultralytics on the decoder thread, whole and tiled, its boxes made into proposals."""
    from segmentation.annotate.app import create_app
    from segmentation.annotate.session import AnnotationSession
    from segmentation.embeddings import EmbeddingCache

    detector = load_yolo_detector(firing_yolo_weights, conf=0.01, imgsz=64, tile=tile)
    detector.device = "cpu"
    assert isinstance(detector, YoloDetector)
    # No --classes on a first run: the detector's names are the classes.
    session = AnnotationSession.open(tmp_path / "out", photos[0], default_classes=detector.names)
    cache = EmbeddingCache(tmp_path / "embeddings", colour_sam, model_name="test")
    app = create_app(session, colour_sam, cache=cache, prefetch=0, detector=detector)
    with TestClient(app) as client:
        response = client.post("/api/proposals/detect", json={"image": "lot_2/c.png"})
        assert response.status_code == 200, response.text
        detail = response.json()
    assert detail["detector"] == {"state": "done", "error": None}
    assert detail["proposals"]  # the boxes cover both defects: the checks below see proposals
    for proposal in detail["proposals"]:
        assert proposal["class"] in detector.names and 0.01 <= proposal["score"] <= 1
        x1, y1, x2, y2 = proposal["box"]
        assert 0 <= x1 <= x2 <= 128 and 0 <= y1 <= y2 <= 96  # clipped to the photo: a valid prompt


@pytest.mark.parametrize(("imgsz", "tile", "used"), [(None, None, 320), (None, 256, 256), (480, None, 480)])
def test_the_detector_runs_at_its_training_size_unless_told(imgsz, tile, used):
    from types import SimpleNamespace

    model = SimpleNamespace(names={0: "scratch"}, overrides={"imgsz": 320})  # YOLO(best.pt) trained at 320
    assert YoloDetector(model, source="best.pt", imgsz=imgsz, tile=tile).imgsz == used


def test_a_coco_pretrained_checkpoint_is_one_line(tmp_path):
    # yolo11n.pt as published: a first run without --classes took COCO's 80 objects as the data set's
    # classes (person ... toothbrush), which later runs may only append to
    from ultralytics import YOLO
    from ultralytics.utils import ROOT, YAML

    yolo = YOLO("yolo11n.yaml")
    yolo.model.names = dict(YAML.load(ROOT / "cfg" / "datasets" / "coco.yaml")["names"])
    path = tmp_path / "yolo11n.pt"
    yolo.save(str(path))
    with pytest.raises(UserError) as error:
        load_yolo_detector(path)
    assert str(error.value) == (
        f"--detector {path} is a COCO-pretrained model (its 80 classes are COCO's objects: person, bicycle, "
        "car ...), not one trained on defects (it would call a part 'donut'); pass a detection run's "
        "weights/best.pt (python -m detection.train)"
    )
