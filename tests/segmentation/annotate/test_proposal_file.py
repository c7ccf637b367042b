"""The proposals file: reading the cascade's COCO results, placing them on the photos, one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from common.errors import UserError
from converters.masks import mask_to_rle
from segmentation.annotate.proposal_file import (
    check_made_on,
    left_to_place,
    made_on,
    match_photo,
    place_proposals,
    read_proposal_file,
    recorded_digests,
    relative_to_images,
)

CLASSES = ["scratch", "dent"]
#: ``(H, W)`` of each photo; two share a name in different folders.
SIZES = {"a.png": (40, 50), "lot_1/c.png": (30, 20), "lot_2/c.png": (30, 20), "lot_2/d.png": (24, 32)}


def blob(shape, box):
    """``(H, W)`` bool mask with the rectangle ``(x1, y1, x2, y2)`` set."""
    mask = np.zeros(shape, bool)
    x1, y1, x2, y2 = box
    mask[y1:y2, x1:x2] = True
    return mask


def result(file_name, box, shape, **fields):
    """One COCO result entry: a rectangle mask, its bbox (xywh), score 0.9, category 1."""
    x1, y1, x2, y2 = box
    entry = {
        "image_id": 1,
        "category_id": 1,
        "bbox": [x1, y1, x2 - x1, y2 - y1],
        "score": 0.9,
        "segmentation": mask_to_rle(blob(shape, box)),
        "file_name": file_name,
    }
    entry.update(fields)
    return {key: value for key, value in entry.items() if value is not None}


@pytest.fixture
def keys() -> list[str]:
    return list(SIZES)


def write(folder: Path, results, images=None) -> Path:
    """``predictions.json`` (and ``images.json`` when given) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "predictions.json"
    path.write_text(results if isinstance(results, str) else json.dumps(results))
    if images is not None:
        (folder / "images.json").write_text(json.dumps(images))
    return path


def place(path: Path, keys, classes=CLASSES):
    return place_proposals(read_proposal_file(path), keys=keys, classes=classes, image_size=SIZES.__getitem__)


@pytest.mark.parametrize(
    "file_name, expected",
    [
        ("a.png", "a.png"),  # the same relative path
        ("./lot_2/d.png", "lot_2/d.png"),
        ("d.png", "lot_2/d.png"),  # a bare name found once
        ("run/photos/lot_1/c.png", "lot_1/c.png"),  # the cascade ran on a parent folder
        ("/abs/photos/lot_2/c.png", "lot_2/c.png"),
        ("lot_2\\c.png", "lot_2/c.png"),  # written on Windows
        ("lot_3/c.png", None),  # the name exists, the folder does not
        ("e.png", None),
    ],
)
def test_match_photo(file_name, expected, keys):
    assert match_photo(file_name, keys) == expected


def test_a_bare_name_in_two_folders_is_ambiguous(keys):
    with pytest.raises(UserError, match=r"'c.png' matches 2 photos \(lot_1/c.png, lot_2/c.png\)"):
        match_photo("c.png", keys)


def test_a_good_file_places_every_proposal(tmp_path, keys):
    a, d = SIZES["a.png"], SIZES["lot_2/d.png"]
    results = [
        result("a.png", (10, 5, 20, 15), a, score=0.5, category_name="dent", mask_score=0.8),
        result("a.png", (30, 20, 40, 30), a, score=0.95),  # category_id 1: scratch
        result(None, (2, 2, 9, 9), d, image_id=7, score=None, box_score=0.7),  # placed via images.json
        result("a.png", (0, 0, 0, 0), a),  # an empty mask: nothing to accept, left out
        {  # polygons, no bbox, no score
            "file_name": "lot_1/c.png",
            "category_id": 2,
            "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]],
        },
    ]
    images = [{"id": 7, "file_name": "lot_2/d.png", "width": 32, "height": 24, "verdict": "scratch"}]
    found = place(write(tmp_path / "run", results, images), keys)
    assert sorted(found) == ["a.png", "lot_1/c.png", "lot_2/d.png"]
    first, second = found["a.png"]  # best score first
    assert (first.class_name, first.score, first.box) == ("scratch", 0.95, (30.0, 20.0, 40.0, 30.0))
    assert (second.class_name, second.mask_score, second.area) == ("dent", 0.8, 100)
    assert np.array_equal(second.mask(), blob(a, (10, 5, 20, 15)))
    (placed,) = found["lot_2/d.png"]
    assert (placed.class_name, placed.score, placed.source) == ("scratch", 0.7, "predictions.json")
    (polygon,) = found["lot_1/c.png"]
    assert polygon.class_name == "dent" and polygon.score is None and polygon.mask().shape == (30, 20)
    assert polygon.box == (2.0, 2.0, 12.0, 12.0)  # the mask's own box when the file gives none


def test_a_class_not_among_the_classes_is_kept_for_the_page_to_rename(tmp_path, keys):
    # anomaly.predict's proposals are all 'anomaly': they were refused unless --classes held it, and then
    # 'anomaly' stayed a class of the data set for good; now they load under their own name
    a = SIZES["a.png"]
    results = [
        result("a.png", (1, 1, 5, 5), a, category_name="anomaly", score=0.8),
        result("a.png", (10, 10, 20, 20), a, category_id=2, score=0.9),  # ids still map onto the classes
    ]
    mapped, anomaly = place(write(tmp_path / "run", results), keys)["a.png"]
    assert (anomaly.class_name, anomaly.area) == ("anomaly", 16) and mapped.class_name == "dent"


def test_a_whole_coco_data_set_is_taken_too(tmp_path, keys):
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 50, "height": 40}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 5,
                "segmentation": mask_to_rle(blob((40, 50), (1, 1, 6, 6))),
            }
        ],
        "categories": [{"id": 5, "name": "dent"}],
    }
    path = write(tmp_path, coco)
    (proposal,) = place(path, keys)["a.png"]
    assert proposal.class_name == "dent" and read_proposal_file(path).class_names() == ["dent"]


def test_the_source_names_the_file_and_its_content(tmp_path):
    path = write(tmp_path, [result("a.png", (1, 1, 5, 5), SIZES["a.png"])])
    source = read_proposal_file(path).source
    assert source.startswith("predictions.json sha256:") and read_proposal_file(path).source == source
    path.write_text(json.dumps([result("a.png", (1, 1, 6, 6), SIZES["a.png"])]))
    assert read_proposal_file(path).source != source


A, D = SIZES["a.png"], SIZES["lot_2/d.png"]


#: (results, images.json's content or text, a part of the one-line error): proposal files refused
BAD_FILES = [
    pytest.param("[{not json", None, "not JSON", id="malformed-json"),
    pytest.param({"a": 1}, None, "must hold a JSON list of COCO results, not dict", id="not-a-list"),
    pytest.param(
        [result("nope.png", (1, 1, 5, 5), A)], None, "entry 0: no photo 'nope.png'", id="missing-photo"
    ),
    pytest.param([result("c.png", (1, 1, 5, 5), (30, 20))], None, "'c.png' matches 2 photos", id="ambiguous"),
    pytest.param(
        [result("a.png", (1, 1, 5, 5), (40, 60))],
        None,
        "entry 0: its mask is 60x40 but photo a.png is 50x40",
        id="wrong-size",
    ),
    pytest.param(
        [result("a.png", (1, 1, 5, 5), A, category_id=3)],
        None,
        "entry 0: category_id 3 does not fit the 2 classes (scratch dent)",
        id="id-beyond-classes",
    ),
    pytest.param(
        [result("lot_2/d.png", (1, 1, 5, 5), D, category_id=1)],
        [{"id": 1, "file_name": "lot_2/d.png", "verdict": "dent"}],
        "lot_2/d.png has verdict 'dent' in images.json but its category ids map to scratch",
        id="verdict-contradicts-ids",
    ),
    pytest.param(
        [result(None, (1, 1, 5, 5), A, image_id=9)],
        [{"id": 1, "file_name": "a.png"}],
        "entry 0: no file_name, and image_id 9 is not in images.json",
        id="unknown-image-id",
    ),
    pytest.param(
        [result(None, (1, 1, 5, 5), A)],
        None,
        "no file_name, and image_id 1 has no images.json",
        id="no-images",
    ),
    pytest.param(
        [result("a.png", (1, 1, 5, 5), A, segmentation=None)],
        None,
        "'segmentation' must be",
        id="no-mask",
    ),
    pytest.param(
        [result("a.png", (1, 1, 5, 5), A, score="high")], None, "score must be a number", id="bad-score"
    ),
    pytest.param(
        [result("a.png", (1, 1, 5, 5), A, category_id=None)],
        None,
        "no category_id or category_name",
        id="no-class",
    ),
    pytest.param(  # the page's JSON answers could not encode it (UnicodeEncodeError, HTTP 500)
        [result("a.png", (1, 1, 5, 5), A, category_name="scratch\udcff")],
        None,
        r"predictions.json: it holds 'scratch\udcff', which is not UTF-8 text",
        id="class-not-utf8",
    ),
    pytest.param(
        [result(None, (1, 1, 5, 5), A)],
        [{"id": 1, "file_name": "a\ud800.png"}],
        r"images.json: it holds 'a\ud800.png'",
        id="image-list-name-not-utf8",
    ),
    pytest.param(
        [result("a.png", (1, 1, 5, 5), A, bbox=[1, 2, -3, 4])],
        None,
        "bbox must be [x, y, w, h]",
        id="bad-bbox",
    ),
    pytest.param(
        [result("a.png", (1, 1, 5, 5), A, segmentation={"size": [40, 50], "counts": "\x7f\x7f"})],
        None,
        "unreadable RLE counts",
        id="bad-counts",
    ),
    pytest.param([result("a.png", (1, 1, 5, 5), A)], "{", "images.json: not JSON", id="bad-images-json"),
    pytest.param(
        [result("a.png", (1, 1, 5, 5), A)], [{"id": "x"}], "must be a JSON list of {'id'", id="bad-images"
    ),
]


@pytest.mark.parametrize("results, images, fragment", BAD_FILES)
def test_bad_files_are_one_line_naming_the_file(tmp_path, keys, results, images, fragment):
    path = write(tmp_path / "run", results, images if not isinstance(images, str) else None)
    if isinstance(images, str):
        (path.parent / "images.json").write_text(images)
    with pytest.raises(UserError) as error:
        place(path, keys)
    message = str(error.value)
    assert fragment in message and "\n" not in message
    assert str(path.parent) in message


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(UserError, match="cannot read proposals file .*missing.json"):
        read_proposal_file(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # the output folder of anomaly.predict or the cascade: "cannot read ...: Is a directory"
        ("run", "--proposals {run} is a folder, not a file: pass {run}/predictions.json"),
        # the per-photo list beside it: "entry 0: no category_id or category_name"
        (
            "run/images.json",
            "proposals file {run}/images.json is the list of photos written beside the "
            "proposals: pass {run}/predictions.json",
        ),
        # anomaly.predict's summary: "must hold a JSON list of COCO results, not dict", and no way out
        (
            "run/predict.json",
            "proposals file {run}/predict.json must hold a JSON list of COCO results, not "
            "dict (pass {run}/predictions.json)",
        ),
    ],
)
def test_a_file_of_the_predictions_folder_given_instead_names_predictions_json(tmp_path, given, expected):
    run = tmp_path / "run"
    write(run, [result("a.png", (1, 1, 5, 5), A)], [{"id": 1, "file_name": "a.png", "verdict": "anomaly"}])
    (run / "predict.json").write_text(json.dumps({"run": "r", "photos": 1}))
    with pytest.raises(UserError) as error:
        read_proposal_file(tmp_path / given)
    assert str(error.value) == expected.format(run=run)


def test_an_images_json_alone_is_still_read_as_proposals(tmp_path):
    # a file named images.json is refused only where a predictions.json beside it is what was meant
    path = tmp_path / "images.json"
    path.write_text(json.dumps([result("a.png", (1, 1, 5, 5), A)]))
    assert len(read_proposal_file(path).results) == 1


def test_photo_sizes_are_read_once_per_photo(tmp_path, keys):
    results = [result("a.png", (i, i, i + 3, i + 3), A) for i in range(5)]
    asked: list[str] = []

    def size(key):
        asked.append(key)
        return SIZES[key]

    found = place_proposals(
        read_proposal_file(write(tmp_path, results)), keys=keys, classes=CLASSES, image_size=size
    )
    assert len(found["a.png"]) == 5 and asked == ["a.png"]


def test_the_photos_of_a_real_folder_through_their_headers(tmp_path, photos):
    """The size check uses the photo's header, as the CLI does (EXIF-upright)."""
    from segmentation.annotate import export

    folder, truths = photos
    results = [result("b.jpg", (50, 70, 70, 110), truths["b.jpg"].shape, category_name="dent")]
    found = place_proposals(
        read_proposal_file(write(tmp_path / "run", results)),
        keys=["a.png", "b.jpg", "lot_2/c.png", "wide.png"],
        classes=CLASSES,
        image_size=lambda key: export.upright_size(folder / key),
    )
    assert found["b.jpg"][0].mask().shape == cv2.imread(str(folder / "b.jpg")).shape[:2]


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"category_id": 0}, "entry 0: category_id 0 does not fit the 2 classes"),
        ({"category_id": True}, "entry 0: category_id must be an integer"),
        ({"score": float("nan")}, "entry 0: score must be a number"),
        ({"segmentation": [[1, 2, 3, 4]]}, "entry 0: 'segmentation' must be"),
        ({"segmentation": {"size": [0, 50], "counts": "0"}}, "entry 0: 'segmentation' must be"),
    ],
    ids=["id-zero", "id-bool", "nan-score", "short-polygon", "empty-size"],
)
def test_entries_that_would_place_wrong_proposals_are_refused(tmp_path, keys, fields, fragment):
    path = write(tmp_path / "run", [result("a.png", (1, 1, 5, 5), A, **fields)])
    with pytest.raises(UserError) as error:
        place(path, keys)
    assert fragment in str(error.value)


def test_a_good_verdict_does_not_contradict_id_mapped_proposals(tmp_path, keys):
    images = [{"id": 1, "file_name": "lot_2/d.png", "verdict": "good"}]
    found = place(write(tmp_path / "run", [result("lot_2/d.png", (1, 1, 5, 5), D)], images), keys)
    assert [p.class_name for p in found["lot_2/d.png"]] == ["scratch"]


def test_verdicts_check_id_mapped_entries_only(tmp_path, keys):
    images = [{"id": 1, "file_name": "lot_2/d.png", "verdict": "scratch"}]
    results = [result("lot_2/d.png", (1, 1, 5, 5), D, category_name="dent")]
    found = place(write(tmp_path / "run", results, images), keys)
    assert [p.class_name for p in found["lot_2/d.png"]] == ["dent"]


def test_a_coco_data_sets_own_categories_name_its_classes(tmp_path, keys):
    coco = {
        "images": [{"id": 1, "file_name": "a.png"}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "segmentation": mask_to_rle(blob(A, (1, 1, 6, 6)))}
        ],
        "categories": [{"id": 1, "name": "dent"}],
    }
    path = write(
        tmp_path,
        coco,
        {"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "scratch"}]},
    )
    (proposal,) = place(path, keys)["a.png"]
    assert proposal.class_name == "dent"


def test_a_proposal_box_is_clipped_to_its_photo():
    from segmentation.annotate.proposals import make_proposal

    proposal = make_proposal(blob((40, 50), (40, 30, 50, 40)), class_name="dent", box=[38, 28, 70, 60])
    assert proposal.box == (38.0, 28.0, 50.0, 40.0)


def test_a_resumed_file_passes_over_the_photos_that_had_it_and_leaves_out_those_changed_since(tmp_path):
    # a restart with the file the session took: a photo deleted from --images since, or replaced by one of
    # another size, stopped the same command with "no photo" / "its mask is 50x40": the file was taken
    path = write(
        tmp_path,
        [
            result("a.png", (1, 1, 9, 9), (40, 50)),  # had its proposals, now 20x30: passed over
            result("gone.png", (1, 1, 9, 9), (40, 50)),  # deleted from --images, had them: passed over
            result("lot_2/d.png", (1, 1, 9, 9), (40, 50)),  # never had them (set aside), now 32x24
            result("lot_1/c.png", (1, 1, 9, 9), (30, 20)),  # fits: left to place
            result("e.png", (1, 1, 9, 9), (30, 20)),  # deleted, never had them
        ],
    )
    file = read_proposal_file(path)
    left, left_out = left_to_place(
        file, keys=list(SIZES), had=["a.png", "gone.png"], image_size=SIZES.__getitem__
    )
    assert [r.file_name for r in left.results] == ["lot_1/c.png"]
    assert left_out == ["lot_2/d.png (32x24 now, its masks 50x40)", "e.png (not among --images now)"]
    assert left.source == file.source  # still the file the session took
    fresh, none = left_to_place(file, keys=list(SIZES), had=[], image_size=SIZES.__getitem__)
    assert fresh == file and none == []  # a first run: place_proposals refuses what does not fit


@pytest.mark.parametrize("name", ["d.png", "run/lot_2/d.png"])
def test_a_resumed_file_naming_a_photo_by_its_bare_name_or_a_longer_path_passes_over_the_photo(
    tmp_path, name
):
    # a photo that had the file's proposals is among keys and among had: listed twice, 'd.png' was
    # refused as matching "2 photos (lot_2/d.png, lot_2/d.png)", and the same command could not restart
    path = write(tmp_path, [result(name, (1, 1, 9, 9), (24, 32)), result("a.png", (1, 1, 9, 9), (40, 50))])
    file = read_proposal_file(path)
    left, left_out = left_to_place(file, keys=list(SIZES), had=["lot_2/d.png"], image_size=SIZES.__getitem__)
    assert [r.file_name for r in left.results] == ["a.png"] and left_out == []


class ScannedList(list):
    """A list that counts the scans ``in`` makes of it."""

    scans = 0

    def __contains__(self, item) -> bool:
        ScannedList.scans += 1
        return super().__contains__(item)


def test_a_resumed_file_looks_each_photo_up_once_not_a_scan_of_the_list_per_entry(tmp_path, monkeypatch):
    # a restart with a file covering the folder: each entry scanned the list of the photos that had it
    # (and of the photos), a time that grew with their product (thousands of photos, three entries each)
    path = write(tmp_path, [result(key, (1, 1, 9, 9), size) for key, size in SIZES.items() for _ in range(3)])
    file = read_proposal_file(path)
    monkeypatch.setattr(ScannedList, "scans", 0)
    left, left_out = left_to_place(
        file,
        keys=ScannedList(SIZES),
        had=ScannedList(["a.png", "lot_1/c.png"]),
        image_size=SIZES.__getitem__,
    )
    assert [r.file_name for r in left.results] == ["lot_2/c.png"] * 3 + ["lot_2/d.png"] * 3
    assert left_out == [] and ScannedList.scans == 0


@pytest.mark.parametrize(
    "record, text, expected",
    [
        ("predict.json", '{"source": "/w/photos/lot_7"}', "/w/photos/lot_7"),  # anomaly.predict
        ("args.yaml", "conf: 0.25\nsource: /w/photos/lot_7\n", "/w/photos/lot_7"),  # inspection.predict
        ("predict.json", '{"source": "/w/photos/**/*.png"}', "/w/photos"),  # a pattern: its leading folder
        ("predict.json", '{"source": "/w/photos/0001.JPG"}', "/w/photos"),  # one photo: its folder
        ("predict.json", '{"run": "/w/runs/x"}', None),  # no source recorded
        ("predict.json", "not json", None),
        ("args.yaml", "source: [unclosed", None),
    ],
)
def test_made_on_reads_the_photo_folder_the_run_beside_the_file_records(tmp_path, record, text, expected):
    (tmp_path / record).write_text(text)
    assert made_on(tmp_path) == (None if expected is None else Path(expected))
    assert made_on(tmp_path / "none") is None


def test_a_file_made_on_a_folder_below_images_is_placed_on_its_photos(tmp_path):
    # 'c.png' of a run on <images>/lot_2 matched lot_1/c.png and lot_2/c.png: refused as ambiguous
    images = tmp_path / "photos"
    (images / "lot_2").mkdir(parents=True)
    path = write(tmp_path / "run", [result("c.png", (1, 1, 9, 9), (30, 20))])
    (tmp_path / "run" / "predict.json").write_text(json.dumps({"source": str(images / "lot_2")}))
    file, outside = relative_to_images(read_proposal_file(path), images)
    found = place_proposals(file, keys=list(SIZES), classes=CLASSES, image_size=SIZES.__getitem__)
    assert list(found) == ["lot_2/c.png"] and outside == []
    assert relative_to_images(file, tmp_path / "elsewhere") == (file, [])  # made on no folder below it


def test_a_file_made_on_a_folder_above_images_leaves_out_the_photos_outside_it(tmp_path):
    # made on photos/ (two lots) for --images photos/lot_2: its lot_1/c.png matched lot_2's c.png by its end
    images = tmp_path / "photos"
    (images / "lot_2").mkdir(parents=True)
    entries = [result(name, (1, 1, 9, 9), (30, 20)) for name in ("lot_1/c.png", "lot_2/c.png", "lot_2/d.png")]
    path = write(
        tmp_path / "run", entries, images=[{"id": 1, "file_name": "lot_2/c.png", "verdict": "scratch"}]
    )
    (tmp_path / "run" / "predict.json").write_text(json.dumps({"source": str(images)}))
    file, outside = relative_to_images(read_proposal_file(path), images / "lot_2")
    assert [r.file_name for r in file.results] == ["c.png", "d.png"] and outside == ["lot_1/c.png"]
    assert file.verdicts == {"c.png": "scratch"}


def test_the_sha256_images_json_records_follows_the_names_made_relative_to_images(tmp_path):
    # inspection.predict records each photo's sha256: the page compares the photo it opens with it,
    # by key; lot_1/c.png, outside --images photos/lot_2, is not lot_2's c.png
    images = tmp_path / "photos"
    (images / "lot_2").mkdir(parents=True)
    entries = [result(name, (1, 1, 9, 9), (30, 20)) for name in ("lot_1/c.png", "lot_2/c.png", "lot_2/d.png")]
    records = [
        {"id": 1, "file_name": "lot_1/c.png", "sha256": "1" * 64},
        {"id": 2, "file_name": "lot_2/c.png", "sha256": "2" * 64},
        {"id": 3, "file_name": "lot_2/d.png"},  # none recorded (a file written otherwise)
    ]
    path = write(tmp_path / "run", entries, images=records)
    (tmp_path / "run" / "predict.json").write_text(json.dumps({"source": str(images)}))
    read = read_proposal_file(path)
    assert read.photo_digests == {"lot_1/c.png": "1" * 64, "lot_2/c.png": "2" * 64}
    file, _ = relative_to_images(read, images / "lot_2")
    assert recorded_digests(file, ["c.png", "d.png"]) == {"c.png": "2" * 64}
    assert recorded_digests(read, ["lot_1/c.png", "lot_2/c.png"]) == {
        "lot_1/c.png": "1" * 64,
        "lot_2/c.png": "2" * 64,
    }


@pytest.mark.parametrize(
    "recorded",
    ["abc", "g" * 64, "1" * 63, "1" * 65, " " + "1" * 63, 12, ["1" * 64]],
    ids=["short", "not-hex", "63", "65", "space", "int", "list"],
)
def test_a_sha256_that_is_not_one_is_refused_at_reading_naming_the_file_and_the_photo(tmp_path, recorded):
    # a malformed sha256 never equals the photo's: every proposal on it was dropped at its first
    # opening, "images.json records another sha256", as if the photo had been replaced
    records = [{"id": 1, "file_name": "lot_2/c.png", "sha256": recorded}]
    entries = [result("lot_2/c.png", (1, 1, 9, 9), (30, 20))]
    path = write(tmp_path / "run", entries, images=records)
    coco = write(tmp_path / "coco", {"images": records, "annotations": entries})  # a whole COCO data set
    for read, named in ((path, path.parent / "images.json"), (coco, coco)):
        with pytest.raises(UserError) as error:
            read_proposal_file(read)
        assert str(error.value) == (
            f"{named}: the sha256 of photo 'lot_2/c.png' must be 64 hexadecimal digits, "
            f"not {json.dumps(recorded)}"
        )


def test_a_sha256_in_capitals_is_the_same_digest(tmp_path):
    # hashlib's hexdigest is lowercase: 'AB...' compared as it was never matched, and the photo's
    # proposals were dropped; null records none, as a missing sha256 does
    records = [
        {"id": 1, "file_name": "lot_2/c.png", "sha256": "AB" * 32},
        {"id": 2, "file_name": "lot_2/d.png", "sha256": None},
    ]
    entries = [result(name, (1, 1, 9, 9), (30, 20)) for name in ("lot_2/c.png", "lot_2/d.png")]
    read = read_proposal_file(write(tmp_path / "run", entries, images=records))
    assert read.photo_digests == {"lot_2/c.png": "ab" * 32}


def test_a_file_made_on_other_photos_of_the_same_names_is_refused(tmp_path):
    images, lot_8 = tmp_path / "photos", tmp_path / "lot_8"
    for folder, value in ((images, 10), (lot_8, 10)):
        folder.mkdir()
        cv2.imwrite(str(folder / "a.png"), np.full((40, 50, 3), value, np.uint8))
    path = write(tmp_path / "run", [result("a.png", (1, 1, 9, 9), (40, 50))])
    (tmp_path / "run" / "predict.json").write_text(json.dumps({"source": str(lot_8)}))
    check_made_on(read_proposal_file(path), images=images, keys=["a.png"])  # the same bytes: a copy
    cv2.imwrite(str(lot_8 / "a.png"), np.full((40, 50, 3), 200, np.uint8))
    with pytest.raises(UserError, match=f"was made on the photos of {lot_8}, whose a.png differs from"):
        check_made_on(read_proposal_file(path), images=images, keys=["a.png"])
    (lot_8 / "a.png").unlink()  # moved since: nothing to compare with
    check_made_on(read_proposal_file(path), images=images, keys=["a.png"])


def test_two_names_that_match_one_photo_are_refused(tmp_path):
    # a file made on two lots, read without a record of its folder, beside --images lot_1: lot_3/c.png
    # matched c.png by its end as lot_1/c.png did, and its proposals went onto that photo unsaid
    entries = [
        result(name, (1, 1, 9, 9), (30, 20)) for name in ("lot_1/c.png", "./lot_1/c.png", "lot_3/c.png")
    ]
    path = write(tmp_path, entries)
    with pytest.raises(UserError) as error:
        place(path, ["c.png"])
    assert str(error.value) == (
        f"proposals file {path}: entries 0 and 2 name 'lot_1/c.png' and 'lot_3/c.png', two photos, and both "
        "match c.png of --images: pass --images the folder the file was made on"
    )
    found = place(write(tmp_path, entries[:2]), ["lot_1/c.png"])  # one photo spelled two ways
    assert [len(items) for items in found.values()] == [2]
