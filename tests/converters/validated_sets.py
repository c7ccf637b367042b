"""Converted data sets edited for converters.validate's tests: laid out or marked as another tool's."""

from __future__ import annotations

import json
import shutil

from common.config import read_yaml
from converters.yolo import DATA_YAML_HEADER


def as_another_tools(dataset):
    """``dataset`` without the marks the converters leave (data.yaml's header line, COCO's description)."""
    data_yaml = dataset / "data.yaml"
    data_yaml.write_text(data_yaml.read_text().removeprefix(DATA_YAML_HEADER))
    for path in (dataset / "annotations").glob("*.json"):
        coco = json.loads(path.read_text())
        coco["info"] = {"description": "exported by another tool"}
        path.write_text(json.dumps(coco))


def turn_a_labelled_val_image(dataset, description: str):
    """A labelled image of ``dataset``'s COCO val split saved again with an EXIF tag turning it 90 degrees,
    the split's ``info.description`` set to ``description``; the image's path."""
    from PIL import Image

    coco_file = dataset / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    coco["info"]["description"] = description
    coco_file.write_text(json.dumps(coco))
    labelled = {annotation["image_id"] for annotation in coco["annotations"]}
    image = dataset / "images" / next(i["file_name"] for i in coco["images"] if i["id"] in labelled)
    with Image.open(image) as photo:
        photo.load()
    image.unlink()  # a link into the source tree: replaced, not written through
    exif = Image.Exif()
    exif[0x0112] = 8
    photo.save(image, format="PNG", exif=exif)
    return image


def as_roboflow_export(out, export):
    """``out`` (a converted set) as Roboflow lays one out: ``valid/images/``, ``valid/labels/``."""
    for split, folder in (("train", "train"), ("val", "valid"), ("test", "test")):
        for kind in ("images", "labels"):
            shutil.copytree(out / kind / split, export / folder / kind)
    names = read_yaml(out / "data.yaml", what="data file")["names"]
    (export / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n"
        f"nc: {len(names)}\nnames: {json.dumps([names[i] for i in sorted(names)])}\n"
    )
