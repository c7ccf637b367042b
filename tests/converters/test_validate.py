from __future__ import annotations

import json

import pytest

from common.errors import UserError
from converters.convert import ConvertConfig, convert
from converters.validate import main as validate_main
from converters.validate import validate


@pytest.fixture
def dataset(tmp_path, category_factory):
    category_factory(tmp_path / "data", "widget")
    convert(
        ConvertConfig(root=tmp_path / "data", out=tmp_path / "out", formats=("yolo", "coco"), progress=False)
    )
    return tmp_path / "out"


def test_ultralytics_and_pycocotools_accept_the_output(dataset, capsys):
    results = validate(dataset)
    assert set(results) == {"yolo", "coco"}
    for fmt in ("yolo", "coco"):
        checks = results[fmt]
        assert [c.problems for c in checks.values()] == [[], [], []]
        assert [(c.images, c.backgrounds) for c in checks.values()] == [(9, 3), (3, 1), (3, 1)]
        assert checks["train"].instances == 9
    assert validate_main([str(dataset)]) == 0
    assert "ok" in capsys.readouterr().out


def test_validate_finds_broken_labels(dataset, capsys):
    labels = sorted((dataset / "labels" / "train").glob("*.txt"))
    labels[0].write_text("0 1.5 0.5 0.2 0.2\n")  # centre outside the image: ultralytics drops the file
    coco_file = dataset / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    coco["annotations"][0]["area"] *= 3
    coco_file.write_text(json.dumps(coco))
    results = validate(dataset)
    assert results["yolo"]["train"].problems
    assert "renders" in results["coco"]["val"].problems[0]
    assert validate_main([str(dataset)]) == 1


def test_validate_rejects_a_folder_that_is_no_dataset(tmp_path, capsys):
    with pytest.raises(UserError, match="not a converted data set"):
        validate(tmp_path)
    assert validate_main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no data.yaml")


def test_validate_refuses_a_broken_splits_file(dataset, capsys):
    (dataset / "splits.json").write_text('{"train": [], "val": NaN')
    with pytest.raises(UserError, match="splits.json: not JSON"):
        validate(dataset)
    assert validate_main([str(dataset)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read splits file") and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("task", ["detect", "segment"])
def test_stock_yolo_cli_trains_on_the_data_yaml(tmp_path, category_factory, yolo_train, task):
    """The converter's data.yaml goes straight into `yolo train` (1 epoch, tiny model and images)."""
    category_factory(tmp_path / "data", "widget", size=(64, 64))
    out = tmp_path / "out"
    convert(ConvertConfig(root=tmp_path / "data", out=out, task=task, progress=False))
    model = "yolov8n.yaml" if task == "detect" else "yolov8n-seg.yaml"
    yolo_train(out / "data.yaml", model, tmp_path / "runs", plots="False")
