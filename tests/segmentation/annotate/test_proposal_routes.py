"""Proposals through the HTTP API: from a cascade's file and from a detector run by the app itself."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from common.errors import UserError
from converters.masks import mask_to_rle, read_mask, rle_to_mask
from segmentation.annotate import export
from segmentation.annotate.proposal_file import place_proposals, read_proposal_file

CLASSES = ["scratch", "dent"]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def cascade_file(folder, truths, tmp_path, digests=False):
    """The cascade's ``predictions.json`` (+ ``images.json``): each photo's true defect, class by id;
    ``digests``: ``images.json`` records each photo's sha256, as ``inspection.predict`` writes it."""
    results, images = [], []
    for image_id, (key, truth) in enumerate(truths.items(), start=1):
        ys, xs = np.nonzero(truth)
        bbox = [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
        results.append(
            {
                "image_id": image_id,
                "category_id": 2,
                "bbox": bbox,
                "score": 0.9,
                "segmentation": mask_to_rle(truth),
                "box_score": 0.95,
                "mask_score": 0.93,
            }
        )
        images.append({"id": image_id, "file_name": key, "verdict": "dent", "score": 0.95, "instances": 1})
        if digests:
            images[-1]["sha256"] = hashlib.sha256((folder / key).read_bytes()).hexdigest()
    run = tmp_path / "cascade"
    run.mkdir()
    (run / "images.json").write_text(json.dumps(images))
    (run / "predictions.json").write_text(json.dumps(results))
    return run / "predictions.json"


@pytest.fixture
def reviewed(photos, tmp_path, make_app, colour_sam):
    """``(session, app, truths)``: every photo has its defect as one proposal from a cascade file."""
    folder, truths = photos
    session, app = make_app(folder, tmp_path / "new_defects", colour_sam, classes=CLASSES)
    proposals = read_proposal_file(cascade_file(folder, truths, tmp_path))
    placed = place_proposals(
        proposals,
        keys=session.keys,
        classes=session.classes,
        image_size=lambda key: export.upright_size(session.image_path(key)),
    )
    assert session.add_proposals(placed, source=proposals.source) == 4
    return session, app, truths


@pytest.fixture
def client(reviewed):
    with TestClient(reviewed[1]) as client:
        yield client


def post(client, path, body, status=200):
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    return response.json()


def test_a_photo_opens_with_its_proposals(client, reviewed):
    _, _, truths = reviewed
    detail = client.get("/api/image", params={"image": "wide.png"}).json()
    (proposal,) = detail["proposals"]
    assert proposal["class"] == "dent" and proposal["score"] == 0.9 and proposal["mask_score"] == 0.93
    assert proposal["source"] == "predictions.json" and detail["detector"] is None
    preview = rle_to_mask(proposal["rle"])
    assert preview.shape == tuple(detail["preview"]) == (120, 256)  # like instances: SAM's input size
    listed = client.get("/api/proposals", params={"image": "wide.png"}).json()
    assert listed["proposals"] == detail["proposals"] and listed["detector"] is None
    session = client.get("/api/session").json()
    assert {i["image"]: i["proposals"] for i in session["images"]}["a.png"] == 1


def test_accept_saves_the_proposal_like_a_drawn_instance_and_undo_brings_it_back(client, reviewed):
    session, _, truths = reviewed
    detail = post(client, "/api/proposals/accept", {"image": "a.png", "proposal": 1})
    assert detail["proposals"] == [] and [i["class"] for i in detail["instances"]] == ["dent"]
    assert detail["status"] == "in_progress" and detail["can_undo"]
    mask = read_mask(session.category_dir / "ground_truth/dent/a_mask.png") > 0
    assert np.array_equal(mask, truths["a.png"])  # the file's exact mask
    detail = post(client, "/api/undo", {"image": "a.png"})
    assert len(detail["proposals"]) == 1 and detail["instances"] == []
    assert not (session.category_dir / "ground_truth/dent/a_mask.png").exists()
    detail = post(client, "/api/proposals/accept", {"image": "a.png", "proposal": 1, "class": "scratch"})
    assert detail["instances"][0]["class"] == "scratch"


def test_delete_accept_all_and_done_discard_decided_proposals(client, reviewed):
    session, _, _ = reviewed
    detail = post(client, "/api/proposals/delete", {"image": "b.jpg", "proposal": 1})
    assert detail["proposals"] == [] and detail["status"] == "unlabelled"
    post(client, "/api/undo", {"image": "b.jpg"})
    detail = post(client, "/api/proposals/accept-all", {"image": "b.jpg"})
    assert len(detail["instances"]) == 1 and detail["proposals"] == []
    post(client, "/api/proposals/accept-all", {"image": "b.jpg"}, status=409)
    state = json.loads(session.state_path.read_text())
    assert state["images"]["b.jpg"]["proposals"] == [] and state["images"]["a.png"]["proposals"][0]["id"] == 1
    detail = post(client, "/api/status", {"image": "b.jpg", "status": "done"})
    assert detail["status"] == "done"


def test_correcting_a_proposal_accepts_the_refined_mask_in_its_place(client, reviewed, defect_centre):
    _, _, truths = reviewed
    truth = truths["lot_2/c.png"]  # two defects, the file proposes the union as one
    (proposal,) = client.get("/api/image", params={"image": "lot_2/c.png"}).json()["proposals"]
    left = truth & (np.arange(128) < 64)
    box = [15, 18, 45, 42]  # the user narrows the box to the left defect and clicks in it
    prediction = post(
        client,
        "/api/predict",
        {"image": "lot_2/c.png", "points": [defect_centre(left)], "labels": [1], "box": box},
    )
    body = {
        "image": "lot_2/c.png",
        "prediction": prediction["prediction"],
        "candidate": prediction["best"],
        "class": "scratch",
        "proposal": proposal["id"],
    }
    detail = post(client, "/api/accept", body)
    assert detail["proposals"] == [] and detail["instances"][0]["class"] == "scratch"
    assert iou(rle_to_mask(detail["instances"][0]["rle"]), left) > 0.7
    detail = post(client, "/api/undo", {"image": "lot_2/c.png"})
    assert [p["id"] for p in detail["proposals"]] == [proposal["id"]] and detail["instances"] == []


def test_a_restart_keeps_the_undecided_proposals(reviewed, make_app, colour_sam):
    session, app, _ = reviewed
    with TestClient(app) as client:
        post(client, "/api/proposals/accept", {"image": "a.png", "proposal": 1})
        post(client, "/api/proposals/delete", {"image": "b.jpg", "proposal": 1})
    _, again = make_app(None, session.out, colour_sam)
    with TestClient(again) as client:
        counts = {i["image"]: i["proposals"] for i in client.get("/api/session").json()["images"]}
    assert counts == {"a.png": 0, "b.jpg": 0, "lot_2/c.png": 1, "wide.png": 1}


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/api/proposals/accept", {"image": "a.png", "proposal": 7}, 404, "no undecided proposal 7"),
        ("/api/proposals/accept", {"image": "a.png", "proposal": 0}, 422, "proposal"),
        ("/api/proposals/accept", {"image": "a.png", "proposal": 1, "class": "stain"}, 400, "unknown class"),
        ("/api/proposals/accept", {"image": "nope.png", "proposal": 1}, 404, "unknown image"),
        ("/api/proposals/accept", {"image": "a.png", "proposal": 1, "x": 1}, 422, "Extra inputs"),
        ("/api/proposals/delete", {"image": "a.png", "proposal": "one"}, 422, "proposal"),
        ("/api/proposals/delete", {"image": "a.png"}, 422, "proposal"),
        ("/api/proposals/detect", {"image": "a.png"}, 409, "no detector: start the app with --detector"),
        (
            "/api/accept",
            {"image": "a.png", "prediction": "p1", "candidate": 0, "class": "dent", "proposal": -1},
            422,
            "proposal",
        ),
    ],
)
def test_malformed_proposal_requests_get_4xx_with_one_line(client, path, body, status, message):
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail


def test_get_proposals_of_an_unknown_image_is_404(client):
    assert client.get("/api/proposals", params={"image": "nope.png"}).status_code == 404
    assert client.get("/api/proposals").status_code == 422


# --- proposals of a class the session lacks: anomaly.predict's 'anomaly' ------------------------------


def anomaly_file(truths, tmp_path):
    """anomaly.predict's ``predictions.json``: each photo's defect as class ``anomaly``; lot_2/c.png's
    left defect as a ``dent`` too (a third of the union: not a duplicate)."""
    results = [
        {"file_name": key, "category_name": "anomaly", "score": 0.8, "segmentation": mask_to_rle(truth)}
        for key, truth in truths.items()
    ]
    left = truths["lot_2/c.png"] & (np.arange(128) < 64)
    results.append(
        {"file_name": "lot_2/c.png", "category_name": "dent", "score": 0.9, "segmentation": mask_to_rle(left)}
    )
    run = tmp_path / "anomaly"
    run.mkdir()
    (run / "predictions.json").write_text(json.dumps(results))
    return run / "predictions.json"


@pytest.fixture
def unnamed(photos, tmp_path, make_app, colour_sam):
    """``(session, app, truths)``: classes stain dent; each photo has its defect as an 'anomaly' proposal."""
    folder, truths = photos
    session, app = make_app(folder, tmp_path / "new_defects", colour_sam, classes=["stain", "dent"])
    proposals = read_proposal_file(anomaly_file(truths, tmp_path))
    placed = place_proposals(
        proposals,
        keys=session.keys,
        classes=session.classes,
        image_size=lambda key: export.upright_size(session.image_path(key)),
    )
    assert session.add_proposals(placed, source=proposals.source) == 5
    return session, app, truths


def test_a_proposal_of_a_class_the_session_lacks_is_accepted_only_as_one_of_its_classes(unnamed):
    # with --classes stain dent, anomaly.predict's proposals were refused; with --classes anomaly stain dent
    # 'anomaly' stayed a class of the export, with 0 instances once every proposal was renamed
    session, app, truths = unnamed
    with TestClient(app) as client:
        (proposal,) = client.get("/api/image", params={"image": "a.png"}).json()["proposals"]
        assert (proposal["class"], proposal["is_class"]) == ("anomaly", False)
        refusal = (
            "a.png: anomaly is not a class here: press R to accept proposal #1 as the selected class "
            "(one of stain, dent), or E to correct it"
        )
        assert (
            post(client, "/api/proposals/accept", {"image": "a.png", "proposal": 1}, 409)["detail"] == refusal
        )
        assert post(client, "/api/proposals/accept-all", {"image": "a.png"}, 409)["detail"] == refusal
        body = {"image": "a.png", "proposal": 1, "class": "anomaly"}
        assert "unknown class 'anomaly'" in post(client, "/api/proposals/accept", body, status=400)["detail"]
        detail = post(client, "/api/proposals/accept", {**body, "class": "stain"})  # R: the selected class
        assert detail["proposals"] == [] and [i["class"] for i in detail["instances"]] == ["stain"]
        assert np.array_equal(
            read_mask(session.category_dir / "ground_truth/stain/a_mask.png") > 0, truths["a.png"]
        )
        post(client, "/api/export", {})
    out = session.out / "export"
    assert "anomaly" not in (out / "data.yaml").read_text()
    assert sorted(json.loads((session.category_dir / "mask_values.json").read_text()).values()) == [
        "dent",
        "good",
        "stain",
    ]
    coco = sorted((out / "annotations").glob("instances_*.json"))
    assert coco and all(
        sorted(c["name"] for c in json.loads(path.read_text())["categories"]) == ["dent", "stain"]
        for path in coco
    )
    state = json.loads(session.state_path.read_text())
    assert state["classes"] == ["stain", "dent"]
    assert [p["class"] for p in state["images"]["b.jpg"]["proposals"]] == ["anomaly"]  # undecided: kept


def test_accept_all_leaves_the_proposals_of_a_class_the_session_lacks_and_says_so(unnamed):
    with TestClient(unnamed[1]) as client:
        detail = post(client, "/api/proposals/accept-all", {"image": "lot_2/c.png"})
        assert [i["class"] for i in detail["instances"]] == ["dent"] and detail["accepted"] == 1
        assert [(p["class"], p["is_class"]) for p in detail["proposals"]] == [("anomaly", False)]
        assert detail["notice"].startswith("anomaly is not a class here: press R to accept proposal #")
        detail = post(client, "/api/proposals/accept-all", {"image": "a.png"}, status=409)
        assert "anomaly is not a class here" in detail["detail"]


def test_a_corrected_proposal_of_a_class_the_session_lacks_is_saved_as_the_chosen_class(
    unnamed, defect_centre
):
    _, app, truths = unnamed
    truth = truths["b.jpg"]
    with TestClient(app) as client:
        (proposal,) = client.get("/api/image", params={"image": "b.jpg"}).json()["proposals"]
        prediction = post(
            client,
            "/api/predict",
            {"image": "b.jpg", "points": [defect_centre(truth)], "labels": [1], "box": proposal["box"]},
        )
        body = {
            "image": "b.jpg",
            "prediction": prediction["prediction"],
            "candidate": prediction["best"],
            "class": "anomaly",
            "proposal": proposal["id"],
        }
        assert "unknown class 'anomaly'" in post(client, "/api/accept", body, status=400)["detail"]
        detail = post(client, "/api/accept", {**body, "class": "stain"})
        assert detail["proposals"] == [] and [i["class"] for i in detail["instances"]] == ["stain"]
        assert iou(rle_to_mask(detail["instances"][0]["rle"]), truth) > 0.7


def test_a_restart_keeps_the_undecided_proposals_of_a_class_the_session_lacks(unnamed, make_app, colour_sam):
    session, app, _ = unnamed
    with TestClient(app) as client:
        post(client, "/api/proposals/accept", {"image": "a.png", "proposal": 1, "class": "dent"})
    _, again = make_app(None, session.out, colour_sam)
    with TestClient(again) as client:
        counts = {i["image"]: i["proposals"] for i in client.get("/api/session").json()["images"]}
        (proposal,) = client.get("/api/image", params={"image": "b.jpg"}).json()["proposals"]
    assert counts == {"a.png": 0, "b.jpg": 1, "lot_2/c.png": 2, "wide.png": 1}
    assert (proposal["class"], proposal["is_class"]) == ("anomaly", False)


# --- a detector in the app ------------------------------------------------------------------------


def detector_app(session, sam, detector, tmp_path, *, prefetch=0):
    """The app over ``session`` with ``detector``, its embedding cache under ``tmp_path``."""
    from segmentation.annotate.app import create_app
    from segmentation.embeddings import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "embeddings", sam, model_name="test")
    return create_app(session, sam, cache=cache, model_name="test", prefetch=prefetch, detector=detector)


@pytest.fixture
def detecting(photos, tmp_path, colour_sam, red_detector):
    """``(session, app, truths, detector)``: the app runs the stub detector on each photo."""
    from segmentation.annotate.session import AnnotationSession

    folder, truths = photos
    session = AnnotationSession.open(tmp_path / "new_defects", folder, classes=CLASSES)
    return session, detector_app(session, colour_sam, red_detector, tmp_path), truths, red_detector


def test_the_detector_proposes_sam_masks_of_its_boxes_on_the_decoder_thread(detecting):
    session, app, truths, detector = detecting
    with TestClient(app) as client:
        assert (
            client.get("/api/image", params={"image": "lot_2/c.png"}).json()["detector"]["state"] == "pending"
        )
        detail = post(client, "/api/proposals/detect", {"image": "lot_2/c.png"})
        assert detail["detector"] == {"state": "done", "error": None}
        assert [p["class"] for p in detail["proposals"]] == ["dent", "dent"]
        assert [p["score"] for p in detail["proposals"]] == [0.9, 0.8]
        truth = truths["lot_2/c.png"]
        masks = [rle_to_mask(p["rle"]) for p in detail["proposals"]]
        assert iou(masks[0] | masks[1], truth) > 0.8 and not (masks[0] & masks[1]).any()
        assert all(p["mask_score"] == 0.9 for p in detail["proposals"])  # the colour SAM's single mask
        assert detector.calls == ["sam-decoder_0"]  # on the decoder thread, like every click
        post(client, "/api/proposals/detect", {"image": "lot_2/c.png"})
        assert len(detector.calls) == 1  # once per photo
        detail = post(client, "/api/proposals/accept-all", {"image": "lot_2/c.png"})
        assert len(detail["instances"]) == 2
        assert client.get("/api/session").json()["detector"] == "red.pt"


def test_d_from_a_tab_that_did_not_see_the_detectors_proposals_is_refused_and_the_asker_gets_the_version(
    detecting,
):
    # the detector's proposals left the photo's version as it was: D from a tab that opened the photo
    # before another tab's (or a prefetch's) run marked it done, discarding them unseen
    session, app, _, _ = detecting
    with TestClient(app) as client:
        shown_a = client.get("/api/image", params={"image": "lot_2/c.png"}).json()
        assert shown_a["proposals"] == []
        shown_b = post(client, "/api/proposals/detect", {"image": "lot_2/c.png"})  # another tab
        assert len(shown_b["proposals"]) == 2 and shown_b["version"] != shown_a["version"]
        listed = client.get("/api/proposals", params={"image": "lot_2/c.png"}).json()
        assert listed["version"] == shown_b["version"]
        saved = session.state_path.read_bytes()
        for status in ("good", "done"):
            body = {"image": "lot_2/c.png", "status": status, "version": shown_a["version"]}
            refused = client.post("/api/status", json=body)
            assert refused.status_code == 409, refused.text
            assert refused.json()["detail"] == (
                f"lot_2/c.png was given new proposals since this page showed it: not marked {status}; "
                "its labels are shown as they are now"
            )
        assert session.state_path.read_bytes() == saved
        # the tab that got them with their version accepts one and undoes it, unrefused
        detail = post(client, "/api/proposals/accept", {"image": "lot_2/c.png", "proposal": 1})
        detail = post(client, "/api/undo", {"image": "lot_2/c.png", "version": detail["version"]})
        assert len(detail["proposals"]) == 2 and detail["instances"] == []


def test_a_file_error_after_the_detectors_proposals_were_saved_is_a_507_with_saved_null(
    detecting, monkeypatch
):
    # the proposals were saved (the version moved), then the photo's detail could not be read: the 507 had
    # no ``saved``, as a prediction's, so the page kept the version from before them and did not read again
    from segmentation.annotate.routes import proposals

    session, app, _, _ = detecting

    def unreadable(*args, **kwargs):
        raise OSError(5, "Input/output error", "/images/lot_2/c.png")

    with TestClient(app) as client:
        shown = client.get("/api/image", params={"image": "lot_2/c.png"}).json()
        monkeypatch.setattr(proposals, "image_detail", unreadable)
        response = client.post("/api/proposals/detect", json={"image": "lot_2/c.png"})
        assert response.status_code == 507 and response.json()["saved"] is None, response.text
        monkeypatch.undo()
        read = client.get("/api/image", params={"image": "lot_2/c.png"}).json()
        assert len(read["proposals"]) == 2 and read["version"] != shown["version"]


@pytest.mark.parametrize("step", ["image_path", "refresh_size"])
def test_a_file_error_before_the_detector_ran_is_a_507_that_saved_nothing(detecting, monkeypatch, step):
    # the photo could not be read before the detector ran: nothing saved, yet the 507 had ``saved`` null
    # and the page said the change may be saved all the same
    from segmentation.annotate.session import AnnotationSession

    session, app, _, detector = detecting

    def unreadable(*args, **kwargs):
        raise OSError(5, "Input/output error", "/images/lot_2/c.png")

    with TestClient(app) as client:
        shown = client.get("/api/image", params={"image": "lot_2/c.png"}).json()
        monkeypatch.setattr(AnnotationSession, step, unreadable)
        response = client.post("/api/proposals/detect", json={"image": "lot_2/c.png"})
        assert response.status_code == 507 and "saved" not in response.json(), response.text
        assert "Input/output error" in response.json()["detail"]
        monkeypatch.undo()
        read = client.get("/api/image", params={"image": "lot_2/c.png"}).json()
        assert read["proposals"] == [] and read["version"] == shown["version"] and detector.calls == []


def test_a_photo_opened_as_its_prefetched_proposals_arrive_is_shown_with_their_version(
    detecting, monkeypatch
):
    # the detector's run ahead of the page (prefetch) added its proposals while GET /api/image read the
    # detail, after its version: the page got them with "done" (so it asked for no run) and the version
    # from before them, and its own G was refused: "was given new proposals since this page showed it"
    session, app, _, _ = detecting
    detector, read = app.state.context.detector, session.version
    ahead = ["lot_2/c.png"]

    def read_as_the_run_ends(key: str) -> str:
        version = read(key)
        if key in ahead:  # the background run ends just after the version is read
            detector.propose(ahead.pop())
        return version

    monkeypatch.setattr(session, "version", read_as_the_run_ends)
    with TestClient(app) as client:
        detail = client.get("/api/image", params={"image": "lot_2/c.png"}).json()
        assert not ahead and len(detail["proposals"]) == 2
        if detail["detector"]["state"] in ("pending", "running"):  # the page asks, as it does on opening
            detail = post(client, "/api/proposals/detect", {"image": "lot_2/c.png"})
        body = {"image": "lot_2/c.png", "status": "good", "version": detail["version"]}
        assert post(client, "/api/status", body)["status"] == "good"


def test_photos_after_the_opened_one_get_their_proposals_in_the_background(
    photos, tmp_path, colour_sam, red_detector, wait_for
):
    from segmentation.annotate.session import AnnotationSession

    session = AnnotationSession.open(tmp_path / "out", photos[0], classes=CLASSES)
    app = detector_app(session, colour_sam, red_detector, tmp_path, prefetch=2)
    with TestClient(app) as client:
        post(client, "/api/current", {"image": "a.png"})
        wait_for(lambda: session.has_proposed("b.jpg", red_detector.source))
        wait_for(lambda: session.has_proposed("lot_2/c.png", red_detector.source))
        assert not session.has_proposed("a.png", red_detector.source)  # the page asks for the opened one
        assert not session.has_proposed("wide.png", red_detector.source)  # beyond --prefetch
        assert len(session.entry("b.jpg").proposals) == 1


def test_a_restart_does_not_run_the_detector_again_where_it_ran(
    detecting, colour_sam, red_detector, tmp_path
):
    from segmentation.annotate.session import AnnotationSession

    session, app, _, _ = detecting
    with TestClient(app) as client:
        post(client, "/api/proposals/detect", {"image": "a.png"})
        post(client, "/api/proposals/delete", {"image": "a.png", "proposal": 1})
    again = AnnotationSession.open(session.out)
    with TestClient(detector_app(again, colour_sam, red_detector, tmp_path)) as client:
        detail = post(client, "/api/proposals/detect", {"image": "a.png"})
    assert detail["proposals"] == [] and detail["detector"]["state"] == "done"
    assert len(red_detector.calls) == 1


def test_detector_classes_must_be_the_sessions(photos, tmp_path, colour_sam, red_detector):
    from segmentation.annotate.app import create_app
    from segmentation.annotate.session import AnnotationSession

    session = AnnotationSession.open(tmp_path / "out", photos[0], classes=["scratch"])
    with pytest.raises(UserError, match=r"predicts classes dent .*--classes scratch dent$"):
        create_app(session, colour_sam, detector=red_detector)


def out_of_memory(detector):
    """A stand-in for ``detector`` (its names and source) whose every call fails as CUDA out of memory."""

    def broken(image):
        raise RuntimeError("CUDA error: out of memory")

    return type(
        "Broken", (), {"names": detector.names, "source": detector.source, "__call__": staticmethod(broken)}
    )()


def test_a_failing_detector_is_reported_for_its_photo_only(detecting):
    session, app, _, detector = detecting

    app.state.context.detector.detector = out_of_memory(detector)
    with TestClient(app) as client:
        response = client.post("/api/proposals/detect", json={"image": "a.png"})
        assert response.status_code == 400
        assert response.json()["detail"] == "the detector failed on a.png: CUDA error: out of memory"
        state = client.get("/api/image", params={"image": "a.png"}).json()["detector"]
        assert state == {"state": "failed", "error": "CUDA error: out of memory"}
        assert client.get("/api/image", params={"image": "b.jpg"}).json()["detector"]["state"] == "pending"


@pytest.mark.parametrize("class_id", [-1, 2])
def test_a_class_id_outside_the_detectors_names_is_named(detecting, class_id):
    _, app, _, detector = detecting

    def wrong(image):
        found = detector(image)
        found.classes[:] = class_id
        return found

    app.state.context.detector.detector = type(
        "Wrong", (), {"names": detector.names, "source": detector.source, "__call__": staticmethod(wrong)}
    )()
    with TestClient(app) as client:
        response = client.post("/api/proposals/detect", json={"image": "a.png"})
        assert response.status_code == 400
        detail = f"the detector failed on a.png: class id {class_id} outside the detector's 2 classes"
        assert response.json()["detail"] == detail  # -1 was reported as "class id 1 beyond"


def test_a_photo_of_another_size_than_its_embedding_is_named_by_its_path_below_images(detecting, monkeypatch):
    """The detector read ``lot_2/c.png`` at another size than its embedding's (replaced between the
    two reads): the 400 named it ``c.png``, as it would a ``c.png`` beside ``a.png``."""
    from segmentation.annotate import detector as detector_module

    _, app, _, _ = detecting
    decode = detector_module.decode_image_file
    monkeypatch.setattr(detector_module, "decode_image_file", lambda *args: decode(*args)[:-1])
    with TestClient(app) as client:
        response = client.post("/api/proposals/detect", json={"image": "lot_2/c.png"})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "the detector failed on lot_2/c.png: lot_2/c.png changed size since its embedding; open it again"
    )


def test_a_photo_whose_colours_are_of_another_size_than_its_embedding_is_named_by_its_path_below_images(
    detecting, monkeypatch
):
    """The colour head read ``lot_2/c.png``'s pixels at another size than its embedding's: the 400 named
    it ``c.png``."""
    from segmentation.annotate import predictor as predictor_module
    from segmentation.colour_head import ColourHead

    _, app, _, _ = detecting
    app.state.predictor.colour_head = ColourHead((0.5, 1.0, -0.2))
    load_rgb = predictor_module.load_rgb
    monkeypatch.setattr(predictor_module, "load_rgb", lambda path: load_rgb(path)[:, :-1])
    with TestClient(app) as client:
        response = client.post("/api/proposals/detect", json={"image": "lot_2/c.png"})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "the detector failed on lot_2/c.png: lot_2/c.png changed size since its embedding; open it again"
    )


@contextlib.contextmanager
def full_decoder_queue(app, wait_for) -> Iterator[None]:
    """The page's decoder queue held full by blocked jobs inside the block (a detect then answers 503)."""
    worker = app.state.predictor.worker
    release = threading.Event()
    blockers = [threading.Thread(target=worker.run, args=(lambda: release.wait(30),)) for _ in range(5)]
    for blocker in blockers:
        blocker.start()
    wait_for(lambda: worker.admitted == worker.capacity)
    try:
        yield
    finally:
        release.set()
        for blocker in blockers:
            blocker.join(timeout=30)


def test_a_full_decoder_queue_answers_detect_with_503_and_records_nothing(detecting, wait_for):
    session, app, _, _ = detecting
    with TestClient(app) as client:
        post(client, "/api/current", {"image": "a.png"})
        with full_decoder_queue(app, wait_for):
            response = client.post("/api/proposals/detect", json={"image": "a.png"})
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert client.get("/api/image", params={"image": "a.png"}).json()["detector"]["state"] == "pending"
        assert len(post(client, "/api/proposals/detect", {"image": "a.png"})["proposals"]) == 1


class Doubled:
    """Every box of ``inner`` (a BoxDetector) twice, the second 1 px tighter and scored 0.05 lower."""

    def __init__(self, inner) -> None:
        self.inner, self.names, self.source = inner, inner.names, inner.source

    def __call__(self, image):
        from detection.detections import ImageDetections

        found = self.inner(image)
        return ImageDetections(
            boxes=np.concatenate([found.boxes, found.boxes + np.array([1, 1, -1, -1])]),
            scores=np.concatenate([found.scores, found.scores - 0.05]),
            classes=np.concatenate([found.classes, found.classes]),
        )


@pytest.mark.parametrize("mask_iou, scores", [(0.7, [0.9, 0.8]), (1.0, [0.9, 0.85, 0.8, 0.75])])
def test_a_stain_boxed_twice_is_proposed_once(photos, tmp_path, colour_sam, red_detector, mask_iou, scores):
    from segmentation.annotate.app import create_app
    from segmentation.annotate.session import AnnotationSession
    from segmentation.embeddings import EmbeddingCache

    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "out", folder, classes=CLASSES)
    cache = EmbeddingCache(tmp_path / "embeddings", colour_sam, model_name="test")
    app = create_app(
        session, colour_sam, cache=cache, model_name="test", prefetch=0, detector=Doubled(red_detector),
        mask_iou=mask_iou,
    )  # fmt: skip
    with TestClient(app) as client:
        detail = post(client, "/api/proposals/detect", {"image": "lot_2/c.png"})
    assert [p["score"] for p in detail["proposals"]] == pytest.approx(scores)


class DoubledAsTheOtherClass(Doubled):
    """:class:`Doubled`, the second box of each pair of the other class."""

    def __call__(self, image):
        from detection.detections import ImageDetections

        found = super().__call__(image)
        half = len(found.classes) // 2
        classes = np.concatenate([found.classes[:half], 1 - found.classes[half:]])
        return ImageDetections(boxes=found.boxes, scores=found.scores, classes=classes)


def test_a_stain_boxed_twice_as_two_classes_is_proposed_as_both(photos, tmp_path, colour_sam, red_detector):
    from segmentation.annotate.app import create_app
    from segmentation.annotate.session import AnnotationSession
    from segmentation.embeddings import EmbeddingCache

    folder, _ = photos
    session = AnnotationSession.open(tmp_path / "out", folder, classes=CLASSES)
    cache = EmbeddingCache(tmp_path / "embeddings", colour_sam, model_name="test")
    app = create_app(
        session, colour_sam, cache=cache, model_name="test", prefetch=0,
        detector=DoubledAsTheOtherClass(red_detector), mask_iou=0.7,
    )  # fmt: skip
    with TestClient(app) as client:
        detail = post(client, "/api/proposals/detect", {"image": "lot_2/c.png"})
    assert [p["score"] for p in detail["proposals"]] == pytest.approx([0.9, 0.85, 0.8, 0.75])


# --- a photo replaced on disk while the page is open -------------------------------------------------


def test_a_drop_of_the_detectors_proposals_the_disk_refused_is_tried_again_at_the_next_opening(
    detecting, photo_writer, monkeypatch
):
    # was: the photo was forgotten before the drop was tried: the disk full, opening it failed, and the
    # next opening took the new photo as the one the detector ran on, its old proposals kept
    from segmentation.annotate import session as session_module

    session, app, _, detector = detecting
    atomic_write = session_module.atomic_write

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with TestClient(app, raise_server_exceptions=False) as client:
        post(client, "/api/proposals/detect", {"image": "a.png"})
        photo_writer(session.images_dir / "a.png", (120, 160), [(120, 30, 12, 9)], seed=7)  # same size
        monkeypatch.setattr(session_module, "atomic_write", full_disk)
        assert client.get("/api/image", params={"image": "a.png"}).status_code != 200
        assert len(session.entry("a.png").proposals) == 1
        monkeypatch.setattr(session_module, "atomic_write", atomic_write)
        detail = client.get("/api/image", params={"image": "a.png"}).json()
        assert detail["notice"] == (
            "a.png changed on disk since the detector ran on it: its 1 undecided proposal of the old photo "
            "was dropped; the detector runs on the new one"
        )
        assert detail["proposals"] == [] and detail["detector"]["state"] == "pending"


def test_a_photo_replaced_by_another_of_its_size_is_proposed_anew_and_the_page_says_so(
    detecting, photo_writer
):
    session, app, _, detector = detecting
    folder = session.images_dir
    with TestClient(app) as client:
        (old,) = post(client, "/api/proposals/detect", {"image": "a.png"})["proposals"]
        truth = photo_writer(folder / "a.png", (120, 160), [(120, 30, 12, 9)], seed=7)  # same name and size
        detail = client.get("/api/image", params={"image": "a.png"}).json()
        assert detail["notice"] == (
            "a.png changed on disk since the detector ran on it: its 1 undecided proposal of the old photo "
            "was dropped; the detector runs on the new one"
        )
        assert detail["proposals"] == [] and detail["detector"]["state"] == "pending"  # the page asks again
        detail = post(client, "/api/proposals/detect", {"image": "a.png"})
        (new,) = detail["proposals"]
        assert len(detector.calls) == 2 and new["id"] != old["id"] and detail["notice"] is None
        assert iou(rle_to_mask(new["rle"]), truth) > 0.8  # the new photo's stain, not the old one's
        post(client, "/api/undo", {"image": "a.png"}, status=409)  # nothing to bring the old one back
        assert session.entry("a.png").proposed == [detector.source]
        client.get("/api/image", params={"image": "a.png"})
        assert len(detector.calls) == 2  # a look at it again changes nothing
        (folder / "a.png").touch()  # the same bytes, a new time: nothing changed
        assert client.get("/api/image", params={"image": "a.png"}).json()["notice"] is None
        assert post(client, "/api/proposals/detect", {"image": "a.png"})["proposals"] == [new]


def test_a_photo_replaced_by_another_of_its_size_loses_the_files_undecided_proposals(
    photos, tmp_path, colour_sam, photo_writer, make_app
):
    # the detector's proposals of the old photo were dropped; the file's stayed on the new photo
    from segmentation.annotate.app import create_app
    from segmentation.embeddings import EmbeddingCache

    folder, truths = photos
    session, _ = make_app(folder, tmp_path / "out", colour_sam, classes=CLASSES)
    proposals = read_proposal_file(cascade_file(folder, truths, tmp_path))
    sizes = {"image_size": lambda key: export.upright_size(session.image_path(key))}
    placed = place_proposals(proposals, keys=session.keys, classes=session.classes, **sizes)
    assert session.add_proposals(placed, source=proposals.source) == 4
    cache = EmbeddingCache(tmp_path / "embeddings", colour_sam, model_name="test")
    app = create_app(session, colour_sam, cache=cache, model_name="test", prefetch=0, proposal_file=proposals)
    with TestClient(app) as client:
        post(client, "/api/proposals/accept", {"image": "b.jpg", "proposal": 1})  # decided: the user's
        photo_writer(folder / "a.png", (120, 160), [(120, 30, 12, 9)], seed=7)  # same name and size
        photo_writer(folder / "b.jpg", (150, 100), [(30, 30, 10, 10)], seed=8)
        (folder / "lot_2" / "c.png").touch()  # the same bytes, a new time: nothing changed
        detail = client.get("/api/image", params={"image": "a.png"}).json()
        assert detail["notice"] == (
            "a.png changed on disk since predictions.json proposed on it: its 1 undecided proposal of the "
            "old photo was dropped"
        )
        assert detail["proposals"] == []
        assert client.get("/api/image", params={"image": "a.png"}).json()["notice"] is None  # once
        detail = client.get("/api/image", params={"image": "b.jpg"}).json()
        assert detail["notice"] is None and len(detail["instances"]) == 1
        detail = client.get("/api/image", params={"image": "lot_2/c.png"}).json()
        assert detail["notice"] is None and len(detail["proposals"]) == 1
    assert session.entry("a.png").proposed == [proposals.source]  # a restart does not propose it again
    placed = place_proposals(proposals, keys=session.keys, classes=session.classes, **sizes)
    assert session.add_proposals(placed, source=proposals.source) == 0


def test_a_photo_other_than_the_one_images_json_records_loses_the_files_proposals_when_opened(
    photos, tmp_path, colour_sam, photo_writer, make_app, monkeypatch
):
    # the file was placed by name alone (a.png of another photo set took its proposals), and every
    # proposed photo was read whole at the start; the sha256 images.json records is compared at opening
    from segmentation.annotate import file_proposals
    from segmentation.annotate.app import create_app
    from segmentation.embeddings import EmbeddingCache

    folder, truths = photos
    session, _ = make_app(folder, tmp_path / "out", colour_sam, classes=CLASSES)
    proposals = read_proposal_file(cascade_file(folder, truths, tmp_path, digests=True))
    assert len(proposals.photo_digests) == 4
    photo_writer(folder / "a.png", (120, 160), [(120, 30, 12, 9)], seed=7)  # same name and size, other bytes
    sizes = {"image_size": lambda key: export.upright_size(session.image_path(key))}
    placed = place_proposals(proposals, keys=session.keys, classes=session.classes, **sizes)
    assert session.add_proposals(placed, source=proposals.source) == 4
    hashed = []
    sha256_file = file_proposals.sha256_file
    monkeypatch.setattr(
        file_proposals, "sha256_file", lambda path, **kw: hashed.append(path) or sha256_file(path, **kw)
    )
    cache = EmbeddingCache(tmp_path / "embeddings", colour_sam, model_name="test")
    app = create_app(session, colour_sam, cache=cache, model_name="test", prefetch=0, proposal_file=proposals)
    assert hashed == []  # no photo read before it is opened
    with TestClient(app) as client:
        detail = client.get("/api/image", params={"image": "a.png"}).json()
        assert detail["notice"] == (
            "a.png is not the photo predictions.json proposed on (images.json records another sha256): "
            "its 1 undecided proposal of that photo was dropped"
        )
        assert detail["proposals"] == [] and hashed == [folder / "a.png"]
        assert client.get("/api/image", params={"image": "a.png"}).json()["notice"] is None  # once
        (folder / "b.jpg").touch()  # the same bytes, a new time: the photo proposed on
        detail = client.get("/api/image", params={"image": "b.jpg"}).json()
        assert detail["notice"] is None and len(detail["proposals"]) == 1
        detail = client.get("/api/image", params={"image": "lot_2/c.png"}).json()
        assert detail["notice"] is None and len(detail["proposals"]) == 1
        photo_writer(folder / "lot_2" / "c.png", (96, 128), [(30, 30, 10, 10)], seed=9)  # replaced once seen
        detail = client.get("/api/image", params={"image": "lot_2/c.png"}).json()
        assert detail["notice"] == (
            "lot_2/c.png changed on disk since predictions.json proposed on it: its 1 undecided proposal of "
            "the old photo was dropped"
        )
    assert session.entry("a.png").proposed == [proposals.source]  # a restart does not propose it again
    placed = place_proposals(proposals, keys=session.keys, classes=session.classes, **sizes)
    assert session.add_proposals(placed, source=proposals.source) == 0


@pytest.mark.parametrize("recorded", [True, False])  # compared with images.json; with the photo at the start
def test_a_drop_the_disk_refused_is_tried_again_at_the_next_opening(
    photos, tmp_path, colour_sam, photo_writer, make_app, monkeypatch, recorded
):
    # was: the photo was no longer followed once the drop was tried: the disk full, opening it failed,
    # and the next opening showed the other photo's proposals without a word
    from segmentation.annotate import session as session_module
    from segmentation.annotate.errors import StorageError
    from segmentation.annotate.file_proposals import FileProposals
    from segmentation.annotate.proposal_file import recorded_digests

    folder, truths = photos
    session, _ = make_app(folder, tmp_path / "out", colour_sam, classes=CLASSES)
    proposals = read_proposal_file(cascade_file(folder, truths, tmp_path, digests=recorded))
    sizes = {"image_size": lambda key: export.upright_size(session.image_path(key))}
    placed = place_proposals(proposals, keys=session.keys, classes=session.classes, **sizes)
    assert session.add_proposals(placed, source=proposals.source) == 4
    digests = recorded_digests(proposals, session.keys)
    from_file = FileProposals(session, source=proposals.source, name=proposals.path.name, digests=digests)
    photo_writer(folder / "a.png", (120, 160), [(120, 30, 12, 9)], seed=7)  # same name and size, other bytes
    atomic_write = session_module.atomic_write

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(session_module, "atomic_write", full_disk)
    with pytest.raises(StorageError, match="nothing saved: .*No space"):
        from_file.refresh("a.png")
    assert len(session.entry("a.png").proposals) == 1
    monkeypatch.setattr(session_module, "atomic_write", atomic_write)
    assert from_file.refresh("a.png").endswith(
        "its 1 undecided proposal of that photo was dropped"
        if recorded
        else "its 1 undecided proposal of the old photo was dropped"
    )
    assert session.entry("a.png").proposals == []


def anomaly_predict_file(folder, truths, tmp_path):
    """``anomaly.predict``'s ``predictions.json`` (+ ``images.json``, ``predict.json``), written by its
    writer: each photo's true defect as one ``anomaly`` instance."""
    from anomaly.masks import Instances
    from anomaly.outputs import PredictionWriter

    run = tmp_path / "anomaly"
    with PredictionWriter(run) as writer:
        for key, truth in truths.items():
            ys, xs = np.nonzero(truth)
            box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
            instances = Instances(truth[None] > 0, box, np.array([2.0]), np.array([1.0]))
            writer.add(key, truth.shape, 2.0, instances, path=folder / key)
        writer.close({"source": str(folder)})
    return run / "predictions.json"


def test_an_anomaly_predict_file_reads_no_photo_before_it_is_opened(
    photos, tmp_path, colour_sam, make_app, monkeypatch
):
    # anomaly.predict's images.json recorded no sha256: every proposed photo was read whole at the start,
    # as for a file written otherwise
    from segmentation.annotate import file_proposals
    from segmentation.annotate.app import create_app
    from segmentation.embeddings import EmbeddingCache

    folder, truths = photos
    session, _ = make_app(folder, tmp_path / "out", colour_sam, classes=CLASSES)
    proposals = read_proposal_file(anomaly_predict_file(folder, truths, tmp_path))
    assert proposals.photo_digests == {
        key: hashlib.sha256((folder / key).read_bytes()).hexdigest() for key in truths
    }
    sizes = {"image_size": lambda key: export.upright_size(session.image_path(key))}
    placed = place_proposals(proposals, keys=session.keys, classes=session.classes, **sizes)
    assert session.add_proposals(placed, source=proposals.source) == 4
    hashed = []
    sha256_file = file_proposals.sha256_file
    monkeypatch.setattr(
        file_proposals, "sha256_file", lambda path, **kw: hashed.append(path) or sha256_file(path, **kw)
    )
    cache = EmbeddingCache(tmp_path / "embeddings", colour_sam, model_name="test")
    app = create_app(session, colour_sam, cache=cache, model_name="test", prefetch=0, proposal_file=proposals)
    assert hashed == []  # no photo read before it is opened
    with TestClient(app) as client:
        detail = client.get("/api/image", params={"image": "b.jpg"}).json()
        assert detail["notice"] is None and [p["class"] for p in detail["proposals"]] == ["anomaly"]
        assert hashed == [folder / "b.jpg"]  # compared with the sha256 recorded, at its opening


def test_a_replaced_photo_whose_proposals_were_decided_says_only_what_runs(detecting, photo_writer):
    session, app, _, detector = detecting
    folder = session.images_dir
    with TestClient(app) as client:
        post(client, "/api/proposals/detect", {"image": "a.png"})
        post(client, "/api/proposals/delete", {"image": "a.png", "proposal": 1})
        post(client, "/api/proposals/detect", {"image": "b.jpg"})
        post(client, "/api/proposals/accept-all", {"image": "b.jpg"})
        post(client, "/api/status", {"image": "b.jpg", "status": "done"})
        photo_writer(folder / "a.png", (120, 160), [(120, 30, 12, 9)], seed=7)
        photo_writer(folder / "b.jpg", (150, 100), [(30, 30, 10, 10)], seed=8)
        detail = client.get("/api/image", params={"image": "a.png"}).json()
        assert (
            detail["notice"]
            == "a.png changed on disk since the detector ran on it: the detector runs on the new one"
        )
        assert detail["detector"]["state"] == "pending"
        detail = client.get("/api/image", params={"image": "b.jpg"}).json()  # done: no proposals to take
        assert detail["notice"] is None and detail["detector"]["state"] == "skipped"
        post(client, "/api/status", {"image": "b.jpg", "status": "open"})
        (proposal,) = post(client, "/api/proposals/detect", {"image": "b.jpg"})["proposals"]
    assert proposal["box"][0] < 30 < proposal["box"][2]  # the new photo's stain
    assert len(detector.calls) == 3


def test_the_retry_after_a_busy_answer_detects_on_a_photo_replaced_meanwhile(
    detecting, photo_writer, wait_for
):
    # the page asks again after 503's Retry-After without opening the photo again: a photo of another size
    # put in its place then was refused as 'the detector failed on b.jpg: proposals for b.jpg are not of its
    # size 100x150', for good (the old photo's drawn instance kept its size)
    session, app, truths, detector = detecting
    folder = session.images_dir
    session.add_instance("b.jpg", mask=truths["b.jpg"], class_name="dent")
    with TestClient(app) as client:
        post(client, "/api/current", {"image": "b.jpg"})
        with full_decoder_queue(app, wait_for):
            assert client.post("/api/proposals/detect", json={"image": "b.jpg"}).status_code == 503
            truth = photo_writer(folder / "b.jpg", (100, 150), [(40, 50, 12, 10)], seed=3)  # now landscape
        detail = post(client, "/api/proposals/detect", {"image": "b.jpg"})
    assert detail["detector"] == {"state": "done", "error": None}
    assert detail["notice"].startswith("b.jpg was replaced by a 150x100 photo: the labels of the 100x150 one")
    (new,) = detail["proposals"]
    assert detail["instances"] == [] and (detail["width"], detail["height"]) == (150, 100)
    assert iou(rle_to_mask(new["rle"]), truth) > 0.8


def test_a_photo_replaced_while_the_detector_runs_on_it_is_detected_again(detecting, photo_writer):
    session, app, _, detector = detecting
    path = session.images_dir / "a.png"
    truths = []

    def replacing(image):  # the photo is written anew while the detector looks at the old one
        found = detector(image)
        if len(detector.calls) == 1:
            truths.append(photo_writer(path, (120, 160), [(120, 30, 12, 9)], seed=7))
        return found

    app.state.context.detector.detector = type(
        "Replacing",
        (),
        {"names": detector.names, "source": detector.source, "__call__": staticmethod(replacing)},
    )()
    with TestClient(app) as client:
        detail = post(client, "/api/proposals/detect", {"image": "a.png"})
    (proposal,) = detail["proposals"]
    assert len(detector.calls) == 2 and detail["detector"]["state"] == "done"
    assert iou(rle_to_mask(proposal["rle"]), truths[0]) > 0.8  # the new photo's, not the old one's box


def test_a_run_failing_on_a_photo_replaced_during_it_is_run_again_on_the_new_one(detecting, photo_writer):
    # a half-written photo fails to read; the error is the old file's, not the one now on disk
    session, app, _, detector = detecting
    path = session.images_dir / "a.png"
    truths = []

    def failing_once(image):
        if not truths:
            truths.append(photo_writer(path, (120, 160), [(120, 30, 12, 9)], seed=7))
            raise RuntimeError("image file is truncated")
        return detector(image)

    app.state.context.detector.detector = type(
        "FailingOnce",
        (),
        {"names": detector.names, "source": detector.source, "__call__": staticmethod(failing_once)},
    )()
    with TestClient(app) as client:
        detail = post(client, "/api/proposals/detect", {"image": "a.png"})
    (proposal,) = detail["proposals"]
    assert detail["detector"] == {"state": "done", "error": None}
    assert iou(rle_to_mask(proposal["rle"]), truths[0]) > 0.8


def test_a_photo_rewritten_during_every_run_fails_until_opened_again_once_written(detecting, photo_writer):
    # the last rewrite fell in the last run: the failure was kept against that file, which then stayed,
    # so 'open it again once it is written' never ran the detector again
    session, app, _, detector = detecting
    path = session.images_dir / "a.png"
    truths = []

    def rewriting(image):  # a camera writes the photo over and over while the detector looks
        found = detector(image)
        if len(truths) < 3:
            truths.append(photo_writer(path, (120, 160), [(120, 30, 12, 9 + len(truths))], seed=7))
        return found

    app.state.context.detector.detector = type(
        "Rewriting",
        (),
        {"names": detector.names, "source": detector.source, "__call__": staticmethod(rewriting)},
    )()
    with TestClient(app) as client:
        response = client.post("/api/proposals/detect", json={"image": "a.png"})
        assert response.status_code == 400 and len(detector.calls) == 3
        assert response.json()["detail"] == (
            "the detector failed on a.png: a.png changed on disk during each of 3 detector runs: "
            "open it again once it is written"
        )
        assert session.entry("a.png").proposals == []
        detail = client.get("/api/image", params={"image": "a.png"}).json()  # written now: opened again
        assert detail["detector"] == {"state": "pending", "error": None}
        (proposal,) = post(client, "/api/proposals/detect", {"image": "a.png"})["proposals"]
    assert len(detector.calls) == 4 and iou(rle_to_mask(proposal["rle"]), truths[-1]) > 0.8


def test_a_failure_on_a_photo_is_forgotten_once_its_file_is_replaced(detecting, photo_writer):
    # the failure was kept for good, whatever the file became: its message's 'open it again' never ran it
    session, app, _, detector = detecting

    proposals = app.state.context.detector
    proposals.detector = out_of_memory(detector)
    with TestClient(app) as client:
        assert client.post("/api/proposals/detect", json={"image": "a.png"}).status_code == 400
        assert client.get("/api/image", params={"image": "a.png"}).json()["detector"]["state"] == "failed"
        proposals.detector = detector
        truth = photo_writer(session.images_dir / "a.png", (120, 160), [(120, 30, 12, 9)], seed=7)
        detail = client.get("/api/image", params={"image": "a.png"}).json()
        assert detail["detector"] == {"state": "pending", "error": None} and detail["notice"] is None
        (proposal,) = post(client, "/api/proposals/detect", {"image": "a.png"})["proposals"]
    assert iou(rle_to_mask(proposal["rle"]), truth) > 0.8


def test_a_failure_on_a_photo_is_forgotten_once_it_is_replaced_by_one_of_another_size(
    detecting, photo_writer
):
    # opening it says where its labels went; the detector's failure on the old photo must go too
    session, app, truths, detector = detecting
    session.add_instance("a.png", mask=truths["a.png"], class_name="dent")  # set aside with the old photo

    proposals = app.state.context.detector
    proposals.detector = out_of_memory(detector)
    with TestClient(app) as client:
        assert client.post("/api/proposals/detect", json={"image": "a.png"}).status_code == 400
        proposals.detector = detector
        photo_writer(session.images_dir / "a.png", (100, 150), [(40, 50, 12, 10)], seed=3)  # another size
        detail = client.get("/api/image", params={"image": "a.png"}).json()
    assert detail["notice"].startswith("a.png was replaced by a 150x100 photo")
    assert detail["detector"] == {"state": "pending", "error": None}
