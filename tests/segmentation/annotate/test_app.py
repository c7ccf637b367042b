"""The HTTP API, end to end with FastAPI's TestClient: clicks, accepts, files, undo, resume, safety."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from converters.masks import read_mask, rle_to_mask
from segmentation.annotate.errors import ConflictError
from segmentation.specks import DEFAULT_CELLS


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture
def app_parts(photos, tmp_path, make_app, colour_sam):
    folder, truths = photos
    session, app = make_app(folder, tmp_path / "new_defects", colour_sam, classes=["scratch", "dent"])
    return session, app, truths


@pytest.fixture
def client(app_parts):
    _, app, _ = app_parts
    with TestClient(app) as client:
        yield client


def predict(client, image, points, labels=None, box=None):
    body = {"image": image, "points": points, "labels": labels or [1] * len(points), "box": box}
    response = client.post("/api/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def accept(client, image, prediction, class_name, candidate=None):
    candidate = prediction["best"] if candidate is None else candidate
    body = {
        "image": image,
        "prediction": prediction["prediction"],
        "candidate": candidate,
        "class": class_name,
    }
    response = client.post("/api/accept", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    for name in ("app.js", "app.css"):
        assert client.get(f"/static/{name}").status_code == 200
    session = client.get("/api/session").json()
    assert session["classes"] == ["scratch", "dent"] and session["category"] == "new_defects"
    assert [i["image"] for i in session["images"]] == ["a.png", "b.jpg", "lot_2/c.png", "wide.png"]
    assert session["current"] == "a.png"


def test_the_pages_keys_panel_names_the_keys_docs_annotate_md_names(client):
    """The panel left out Shift+C (back through the candidates, as Shift+Tab) and Backspace (as Del)."""
    import re

    keys = re.search(r'<dl id="keys">(.*?)</dl>', client.get("/").text, re.S).group(1)
    assert "<dt>Del, Backspace</dt>" in keys
    assert "(Shift+Tab, Shift+C: previous)" in keys


def test_a_click_gives_three_candidates_and_the_best_covers_the_defect(client, app_parts, defect_centre):
    _, _, truths = app_parts
    client.post("/api/current", json={"image": "a.png"})
    result = predict(client, "a.png", [defect_centre(truths["a.png"])])
    assert result["size"] == [120, 160] and len(result["candidates"]) == 3
    masks = [rle_to_mask(c["rle"]) for c in result["candidates"]]
    assert all(m.shape == (120, 160) for m in masks)
    assert result["best"] == 1 and iou(masks[1], truths["a.png"]) > 0.8
    assert set(result["ms"]) == {"decode", "predict", "server", "decode_cpu", "predict_cpu", "queue", "crop"}
    assert result["crop"] is None and result["ms"]["crop"] == 0  # no zoomed crop without --crop-fraction


class DecoderWatch:
    """Hooks on SAM's mask decoder: how many run at once, on which threads; each waits for the release."""

    def __init__(self, decoder) -> None:
        self.release = threading.Event()
        self.running, self.peak, self.threads = 0, 0, set()
        self._lock = threading.Lock()
        self._hooks = [
            decoder.register_forward_pre_hook(self._enter),
            decoder.register_forward_hook(self._leave),
        ]

    def _enter(self, module, args) -> None:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threading.get_ident())
        self.release.wait(30)

    def _leave(self, module, args, output) -> None:
        with self._lock:
            self.running -= 1

    def remove(self) -> None:
        self.release.set()
        for hook in self._hooks:
            hook.remove()


def test_concurrent_clicks_decode_one_at_a_time_and_the_excess_is_refused_with_retry_after(
    client, app_parts, defect_centre, wait_for
):
    _, app, truths = app_parts
    body = {"image": "a.png", "points": [defect_centre(truths["a.png"])], "labels": [1]}
    assert client.post("/api/predict", json=body).status_code == 200  # embedding ready, nothing waits on it
    predictor = app.state.predictor
    capacity, clicks = predictor.worker.capacity, 12
    watch = DecoderWatch(predictor.sam.mask_decoder)
    answers: list = []
    try:
        threads = [
            threading.Thread(target=lambda: answers.append(client.post("/api/predict", json=body)))
            for _ in range(clicks)
        ]
        for thread in threads:
            thread.start()
        # The decoder holds the first click: the queue fills and every click beyond it is answered at once.
        wait_for(lambda: len(answers) == clicks - capacity)
        assert predictor.worker.admitted == capacity and watch.peak == 1
        watch.release.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        watch.remove()
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * capacity + [503] * (clicks - capacity)
    for refused in (answer for answer in answers if answer.status_code == 503):
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["detail"].startswith("the mask decoder is busy")
    assert watch.peak == 1 and len(watch.threads) == 1  # one decoder thread, whatever thread asked
    assert client.post("/api/predict", json=body).status_code == 200  # room again


def test_accept_writes_the_mvtec_files_at_once(client, app_parts, defect_centre):
    session, _, truths = app_parts
    detail = accept(client, "a.png", predict(client, "a.png", [defect_centre(truths["a.png"])]), "dent")
    assert detail["status"] == "in_progress" and [i["class"] for i in detail["instances"]] == ["dent"]
    tree = session.category_dir
    assert (tree / "test/dent/a.png").read_bytes() == (session.images_dir / "a.png").read_bytes()
    mask = read_mask(tree / "ground_truth/dent/a_mask.png")
    assert set(np.unique(mask).tolist()) == {0, 254}  # dent is the second class
    assert iou(mask > 0, truths["a.png"]) > 0.8
    state = json.loads(session.state_path.read_text())
    assert state["images"]["a.png"]["instances"][0]["prompt"]["labels"] == [1]


def test_a_large_image_gets_previews_at_sam_size_and_its_mask_at_full_size(client, app_parts, defect_centre):
    session, _, truths = app_parts
    truth = truths["wide.png"]  # 640 px wide, the colour SAM's input is 256
    result = predict(client, "wide.png", [defect_centre(truth)])
    assert result["size"] == [120, 256]
    detail = accept(client, "wide.png", result, "scratch")
    assert detail["preview"] == [120, 256] and detail["width"] == 640
    assert rle_to_mask(detail["instances"][0]["rle"]).shape == (120, 256)
    mask = read_mask(session.category_dir / "ground_truth/scratch/wide_mask.png") > 0
    assert mask.shape == truth.shape and iou(mask, truth) > 0.8


def test_boxes_negative_points_and_two_classes_on_one_image(client, app_parts, defect_centre):
    session, _, truths = app_parts
    truth = truths["lot_2/c.png"]  # two defects: left one and right one
    left = predict(client, "lot_2/c.png", [], box=[15, 18, 45, 42])
    assert iou(rle_to_mask(left["candidates"][1]["rle"]), truth & (np.arange(128) < 64)) > 0.7
    accept(client, "lot_2/c.png", left, "scratch")
    right = predict(client, "lot_2/c.png", [[95, 65], [10, 10]], labels=[1, 0])
    detail = accept(client, "lot_2/c.png", right, "dent")
    assert [i["class"] for i in detail["instances"]] == ["scratch", "dent"]
    mask = read_mask(session.category_dir / "ground_truth/combined/lot_2__c_mask.png")
    assert mask[30, 30] == 255 and mask[65, 95] == 254
    assert not (session.category_dir / "test/scratch").exists()


def test_delete_undo_redo_and_statuses_through_the_api(client, app_parts, defect_centre):
    session, _, truths = app_parts
    tree = session.category_dir
    detail = accept(client, "a.png", predict(client, "a.png", [defect_centre(truths["a.png"])]), "scratch")
    instance = detail["instances"][0]["id"]
    detail = client.post("/api/delete", json={"image": "a.png", "instance": instance}).json()
    assert detail["status"] == "unlabelled" and not (tree / "test/scratch/a.png").exists()
    detail = client.post("/api/undo", json={"image": "a.png"}).json()
    assert len(detail["instances"]) == 1 and (tree / "test/scratch/a.png").is_file()
    assert detail["can_undo"] and detail["can_redo"]
    detail = client.post("/api/redo", json={"image": "a.png"}).json()
    assert detail["instances"] == [] and not detail["can_redo"]
    assert client.post("/api/redo", json={"image": "a.png"}).status_code == 409
    detail = client.post("/api/status", json={"image": "b.jpg", "status": "good"}).json()
    assert detail["status"] == "good" and (tree / "test/good/b.jpg").is_file()
    assert detail["counts"]["good"] == 1
    client.post("/api/status", json={"image": "b.jpg", "status": "open"})
    assert not (tree / "test/good/b.jpg").exists()
    refused = client.post("/api/status", json={"image": "b.jpg", "status": "done"})
    assert refused.status_code == 409 and "mark it good" in refused.json()["detail"]


def test_an_undo_from_a_tab_that_did_not_show_the_photos_last_change_is_refused(
    client, app_parts, defect_centre
):
    # undo restores the photo's whole state before its last change: tab A's undo, sent after tab B marked
    # the photo done, took back B's change instead of A's accept, without a word
    session, _, truths = app_parts
    shown_a = accept(client, "a.png", predict(client, "a.png", [defect_centre(truths["a.png"])]), "scratch")
    assert client.get("/api/image", params={"image": "a.png"}).json()["version"] == shown_a["version"]
    shown_b = client.post("/api/status", json={"image": "a.png", "status": "done"}).json()
    assert shown_b["version"] != shown_a["version"]
    saved = session.state_path.read_bytes()
    for path, what in [("/api/undo", "undone"), ("/api/redo", "redone")]:
        refused = client.post(path, json={"image": "a.png", "version": shown_a["version"]})
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"] == (
            f"a.png was changed in another tab since this page showed it: nothing {what}; "
            "its labels are shown as they are now"
        )
    assert session.state_path.read_bytes() == saved and session.entry("a.png").status == "done"
    # the tab that made the last change undoes it, and again with each answer's version: as before
    detail = client.post("/api/undo", json={"image": "a.png", "version": shown_b["version"]}).json()
    assert detail["status"] == "in_progress" and len(detail["instances"]) == 1
    detail = client.post("/api/undo", json={"image": "a.png", "version": detail["version"]}).json()
    assert detail["status"] == "unlabelled" and detail["instances"] == []
    detail = client.post("/api/redo", json={"image": "a.png", "version": detail["version"]}).json()
    assert len(detail["instances"]) == 1
    # moving to another photo, or reading this one again, is no change of it
    client.post("/api/current", json={"image": "b.jpg"})
    assert client.get("/api/image", params={"image": "a.png"}).json()["version"] == detail["version"]


def test_done_from_a_tab_that_did_not_show_the_photos_last_change_is_refused(client, app_parts):
    # done discards the undecided proposals: tab A, showing none, marked the photo done after tab B's undo
    # brought one back, and it went without a word
    from segmentation.annotate.proposals import make_proposal

    session, _, truths = app_parts
    session.add_instance("a.png", class_name="scratch", mask=truths["a.png"])
    session.add_proposals(
        {"a.png": [make_proposal(np.eye(120, 160, dtype=bool), class_name="dent")]}, source="x"
    )
    (kept,) = session.entry("a.png").proposals
    shown_a = client.post("/api/proposals/delete", json={"image": "a.png", "proposal": kept.id}).json()
    assert shown_a["proposals"] == []
    shown_b = client.post("/api/undo", json={"image": "a.png"}).json()  # tab B: the proposal is back
    assert len(shown_b["proposals"]) == 1
    saved = session.state_path.read_bytes()
    refused = client.post(
        "/api/status", json={"image": "a.png", "status": "done", "version": shown_a["version"]}
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["detail"] == (
        "a.png was changed in another tab since this page showed it: not marked done; "
        "its labels are shown as they are now"
    )
    assert session.state_path.read_bytes() == saved and session.entry("a.png").proposals == [kept]
    # the tab that shows the proposal marks it done, as does a request without a version (as before)
    body = {"image": "a.png", "status": "done", "version": shown_b["version"]}
    assert client.post("/api/status", json=body).json()["status"] == "done"
    client.post("/api/undo", json={"image": "a.png"})
    assert client.post("/api/status", json={"image": "a.png", "status": "done"}).json()["proposals"] == []


def test_changes_to_a_photo_removed_while_the_page_runs_are_refused_and_not_saved(
    client, app_parts, defect_centre
):
    # the change was saved, then its answer failed with 'no such file': the page said nothing changed
    session, _, truths = app_parts
    for _ in range(2):
        accept(client, "a.png", predict(client, "a.png", [defect_centre(truths["a.png"])]), "scratch")
        truths["a.png"] = truths["a.png"].copy()
        truths["a.png"][:, : truths["a.png"].shape[1] // 2] = False  # another mask: a second instance
    saved = session.state_path.read_bytes()
    (session.images_dir / "a.png").rename(session.out.parent / "a.png")
    for path, body in [
        ("/api/delete", {"instance": 1}),
        ("/api/status", {"status": "done"}),
        ("/api/undo", {}),
    ]:
        refused = client.post(path, json={"image": "a.png", **body})
        assert refused.status_code == 404, (path, refused.text)
        detail = refused.json()["detail"]
        assert detail.startswith(f"a.png is no longer in {session.images_dir}: nothing changed"), detail
    # an unlabelled one marked good said only 'no such file: b.jpg'
    (session.images_dir / "b.jpg").rename(session.out.parent / "b.jpg")
    refused = client.post("/api/status", json={"image": "b.jpg", "status": "good"})
    assert refused.status_code == 404, refused.text
    detail = refused.json()["detail"]
    assert detail.startswith(f"b.jpg is no longer in {session.images_dir}: nothing changed"), detail
    assert session.state_path.read_bytes() == saved


def test_a_new_app_on_the_same_out_folder_resumes(app_parts, make_app, colour_sam, defect_centre):
    session, app, truths = app_parts
    with TestClient(app) as client:
        accept(client, "b.jpg", predict(client, "b.jpg", [defect_centre(truths["b.jpg"])]), "scratch")
        client.post("/api/status", json={"image": "a.png", "status": "good"})
        client.post("/api/current", json={"image": "lot_2/c.png"})
    _, again = make_app(None, session.out, colour_sam)  # a restart: only --out
    with TestClient(again) as client:
        state = client.get("/api/session").json()
        assert state["current"] == "lot_2/c.png" and state["classes"] == ["scratch", "dent"]
        statuses = {i["image"]: i["status"] for i in state["images"]}
        assert statuses == {
            "a.png": "good",
            "b.jpg": "in_progress",
            "lot_2/c.png": "unlabelled",
            "wide.png": "unlabelled",
        }
        detail = client.get("/api/image", params={"image": "b.jpg"}).json()
        assert iou(rle_to_mask(detail["instances"][0]["rle"]), truths["b.jpg"]) > 0.8


def test_a_mask_shown_before_a_restart_is_not_taken_for_one_made_after_it(
    app_parts, make_app, colour_sam, defect_centre
):
    # A tab left open over a restart sends the old server's prediction id; ids began again at p1, so
    # the new server saved the mask of another tab's click on the photo in its place.
    session, app, truths = app_parts
    with TestClient(app) as client:
        shown = predict(client, "a.png", [defect_centre(truths["a.png"])])
    restarted, again = make_app(None, session.out, colour_sam)
    with TestClient(again) as client:
        predict(client, "a.png", [[5, 5]])  # another tab: a click on the background
        body = {"image": "a.png", "prediction": shown["prediction"], "candidate": 0, "class": "scratch"}
        refused = client.post("/api/accept", json=body)
        assert refused.status_code == 404, refused.text
        assert "click again" in refused.json()["detail"]
    assert restarted.entry("a.png").instances == []


@pytest.mark.parametrize(
    "url, status",
    [
        ("/files/images/..%2f..%2fetc%2fpasswd", 400),
        ("/files/images/%2e%2e/new_defects/annotate_state.json", 400),
        ("/files/images//etc/passwd", 400),
        ("/files/images/%2Fetc%2Fpasswd", 400),
        ("/files/images/lot_2%5c..%5c..%5csecret.txt", 400),
        ("/files/images/a.png%00.txt", 400),
        ("/files/images/leak.png", 400),
        ("/files/images/linked/secret.txt", 400),
        ("/files/out/..%2fsecret.txt", 400),
        ("/files/out/new_defects/../../secret.txt", 404),  # normalised by the client: outside both roots
        ("/files/images/missing.png", 404),
        ("/static/..%2fapp.py", 404),  # no route matches a slash in a static name
        ("/static/%2e%2e%2f__init__.py", 404),
    ],
)
def test_paths_outside_the_roots_are_refused(client, app_parts, url, status):
    session, _, _ = app_parts
    secret = session.images_dir.parent / "secret.txt"
    secret.write_text("do not serve")
    os.symlink(secret, session.images_dir / "leak.png")
    os.symlink(secret.parent, session.images_dir / "linked")
    response = client.get(url)
    assert response.status_code == status, response.text
    assert "do not serve" not in response.text
    assert response.headers["content-type"].startswith("application/json")


def test_files_inside_the_roots_are_served(client, app_parts, defect_centre):
    session, _, truths = app_parts
    assert (
        client.get("/files/images/lot_2/c.png").content == (session.images_dir / "lot_2/c.png").read_bytes()
    )
    accept(client, "a.png", predict(client, "a.png", [defect_centre(truths["a.png"])]), "dent")
    mask = client.get("/files/out/new_defects/ground_truth/dent/a_mask.png")
    assert mask.status_code == 200 and mask.headers["content-type"] == "image/png"


def test_tiff_photos_are_sent_to_the_browser_as_png(tmp_path, make_app, colour_sam, photo_writer):
    photo_writer(tmp_path / "photos" / "scan.tif", (40, 50), [(20, 20, 5, 5)])
    _, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app) as client:
        response = client.get("/files/images/scan.tif")
    assert response.headers["content-type"] == "image/png"
    assert cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR).shape == (40, 50, 3)


def test_photos_with_alpha_are_sent_to_the_browser_as_the_png_sam_sees(
    tmp_path, make_app, colour_sam, photo_writer
):
    # a browser lays a photo over the page by its alpha (this one faded, its top rows hidden) while SAM
    # reads the colours beneath: the file went as it was, and the defects were outlined on another picture
    photo_writer(tmp_path / "photos" / "opaque.png", (40, 50), [(20, 20, 5, 5)])
    faded = tmp_path / "photos" / "faded.png"
    photo_writer(faded, (40, 50), [(20, 20, 5, 5)])
    pixels = cv2.imread(str(faded))
    alpha = np.full((40, 50, 1), 128, np.uint8)
    alpha[:10] = 0
    cv2.imwrite(str(faded), np.concatenate([pixels, alpha], axis=2))
    _, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app) as client:
        sent = client.get("/files/images/faded.png")
        assert (
            client.get("/files/images/opaque.png").content
            == (tmp_path / "photos" / "opaque.png").read_bytes()
        )
    assert sent.headers["content-type"] == "image/png"
    shown = cv2.imdecode(np.frombuffer(sent.content, np.uint8), cv2.IMREAD_UNCHANGED)
    assert shown.shape == (40, 50, 3) and np.array_equal(shown, pixels)


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"{not json", 422, "JSON"),
        (b"[1, 2]", 422, "malformed"),
        (b'{"image": "a.png", "points": [[NaN, 3]], "labels": [1]}', 422, "finite"),
        (b'{"image": "a.png", "points": [[1, 2, 3]], "labels": [1]}', 422, "points"),
        (b'{"image": "a.png", "points": [["x", 2]], "labels": [1]}', 422, "points"),
        (b'{"image": "a.png", "points": [[1, 2]], "labels": [7]}', 422, "labels"),
        (
            b'{"image": "a.png", "points": [[1, 2]], "labels": [true]}',
            422,
            "labels.0: Input should be a valid integer",
        ),
        (b'{"image": "a.png", "points": [[1, 2]], "labels": [false]}', 422, "labels.0"),  # not background
        (b'{"image": "a.png", "points": [[1, 2]], "labels": [1.0]}', 422, "labels.0"),
        (b'{"image": "a.png", "points": [["10", 2]], "labels": [1]}', 422, "points"),  # not coerced
        (b'{"image": "a.png", "box": [true, 0, 20, 20]}', 422, "box"),  # not the number 1
        (b'{"image": "a.png", "points": [[1, 2]], "labels": [1], "extra": 1}', 422, "extra"),
        (b'{"points": [[1, 2]], "labels": [1]}', 422, "image"),
        (b'{"image": "a.png", "points": [[1, 2]], "labels": []}', 400, "labels"),
        (b'{"image": "a.png", "points": [[900, 2]], "labels": [1]}', 400, "outside"),
        (b'{"image": "a.png", "points": [], "labels": []}', 400, "empty prompt"),
        (b'{"image": "nope.png", "points": [[1, 2]], "labels": [1]}', 404, "unknown image"),
        (b'{"image": "../a.png", "points": [[1, 2]], "labels": [1]}', 404, "unknown image"),
        (b'{"image": "/etc/passwd", "points": [[1, 2]], "labels": [1]}', 404, "unknown image"),
    ],
)
def test_malformed_predict_requests_get_4xx_with_a_message(client, body, status, message):
    response = client.post("/api/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


DIGITS = "1" * 5000  # more than Python's 4300-digit limit on reading an integer
JSON = "application/json"


#: (path, body, content type, a part of the 422's detail): bodies the routes cannot read
MALFORMED_BODIES = [
    (
        "/api/predict",
        b'{"image": "a.png", "points": [[1, 2]], "labels": [1]}',
        "text/plain",
        "(got text/plain)",
    ),
    (
        "/api/predict",
        b'{"image": "a.png", "points": [[1, 2]], "labels": [1]}',
        "",
        "Content-Type: application/json (got none)",
    ),
    ("/api/export", b"task=segment", "application/x-www-form-urlencoded", "send a JSON object"),
    (
        "/api/predict",
        f'{{"image": "a.png", "points": [[{DIGITS}, 2]]}}'.encode(),
        JSON,
        "points.0.0: a number of 5000",
    ),
    (
        "/api/accept",
        f'{{"image": "a.png", "candidate": -{DIGITS}}}'.encode(),
        JSON,
        "candidate: a number of 5000",
    ),
    (
        "/api/delete",
        f'{{"image": "a.png", "instance": {DIGITS}}}'.encode(),
        JSON,
        "instance: a number of 5000",
    ),
    (
        "/api/predict",
        b'{"image": "a\xff.png", "points": [[1, 2]]}',
        JSON,
        "not UTF-8: byte 0xff at position 12",
    ),
    (
        "/api/predict",
        b'{"image": "a.png", "points": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        JSON,
        "too deeply",
    ),
    ("/api/predict", b'{"image": "a.png", "points": [[1, 2]', JSON, "invalid JSON at character 36"),
    ("/api/predict", b"[1, 2]", JSON, "expected a JSON object, got [1, 2]"),
    ("/api/predict", b"", JSON, "body: missing"),
    ("/api/predict", b'{"image": "a.png", "' + b"k" * 5000 + b'": 1}', JSON, "kkk...: Extra inputs"),
    ("/api/status", b'{"image": "a.png", "status": "' + b"d" * 5000 + b'"}', JSON, 'got "ddd'),
    ("/api/predict", b'{"image": "a\\ud800.png", "points": [[1, 2]]}', JSON, 'got "a?.png"'),  # no 500
]


@pytest.mark.parametrize("path, body, content_type, message", MALFORMED_BODIES)
def test_malformed_bodies_get_a_422_naming_the_field_and_the_problem_in_one_short_line(
    client, path, body, content_type, message
):
    headers = {"content-type": content_type} if content_type else {}  # "": none sent
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("malformed request: ") and message in detail, detail
    assert "\n" not in detail and len(detail) < 160, detail  # long values are cut, not echoed


@pytest.mark.parametrize("version", ["garbage", "", "0123abcd-", "0123ABCD-1", "0123abcd-1x", "-1"])
@pytest.mark.parametrize("path", ["/api/undo", "/api/redo", "/api/status"])
def test_a_malformed_version_is_a_422_not_a_restart(client, app_parts, path, version):
    # any version not of this start was answered 409 'the annotation server was restarted since this page
    # showed it', an untrue reason for a version no server gave
    session, _, truths = app_parts
    session.add_instance("a.png", class_name="scratch", mask=truths["a.png"])
    status = {"status": "good"} if path == "/api/status" else {}
    response = client.post(path, json={"image": "a.png", **status, "version": version})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "malformed request: version: should be a version an image detail gave (8 hex digits, '-', a count), "
        f"got {json.dumps(version)}"
    )
    assert len(session.entry("a.png").instances) == 1 and session.entry("a.png").status == "in_progress"
    # one of another start, well formed: the restart, as before
    response = client.post(path, json={"image": "a.png", **status, "version": "0123abcd-1"})
    assert response.status_code == 409 and "was restarted" in response.json()["detail"], response.text


def test_malformed_accepts_and_other_requests(client, app_parts, defect_centre):
    _, _, truths = app_parts
    result = predict(client, "a.png", [defect_centre(truths["a.png"])])
    ok = {"image": "a.png", "prediction": result["prediction"], "candidate": 1, "class": "dent"}
    for change, status, message in [
        ({"class": "stain"}, 400, "unknown class"),
        ({"prediction": "p999"}, 404, "expired"),
        ({"image": "b.jpg"}, 404, "expired"),  # a prediction of another image
        ({"candidate": 3}, 400, "candidate"),
        ({"candidate": -1}, 422, "candidate"),
        ({"candidate": True}, 422, "candidate"),  # not candidate 1: wrong types are refused, not coerced
        ({"candidate": "0"}, 422, "candidate"),
        ({"proposal": True}, 422, "proposal"),
        ({"class": None}, 422, "class"),
    ]:
        response = client.post("/api/accept", json={**ok, **change})
        assert response.status_code == status and message in response.json()["detail"], (
            change,
            response.text,
        )
    for path, body, status in [
        ("/api/delete", {"image": "a.png", "instance": 5}, 404),
        ("/api/delete", {"image": "a.png", "instance": "x"}, 422),
        ("/api/delete", {"image": "a.png", "instance": True}, 422),  # not instance 1
        ("/api/proposals/delete", {"image": "a.png", "proposal": True}, 422),
        ("/api/status", {"image": "a.png", "status": "finished"}, 422),
        ("/api/undo", {"image": "a.png"}, 409),
        ("/api/export", {"task": "segment"}, 409),  # nothing accepted yet
        ("/api/export", {"task": "pose"}, 422),
        ("/api/current", {"image": "nope.png"}, 404),
    ]:
        response = client.post(path, json=body)
        assert response.status_code == status, (path, body, response.text)
        assert response.json()["detail"]
    assert client.get("/api/image").status_code == 422
    assert client.get("/api/image", params={"image": "nope.png"}).status_code == 404
    assert client.get("/api/session").status_code == 200  # still serving


def test_an_unreadable_photo_is_reported_not_crashed_on(tmp_path, make_app, colour_sam, photo_writer):
    photo_writer(tmp_path / "photos" / "good.png", (40, 50), [(20, 20, 5, 5)])
    (tmp_path / "photos" / "broken.png").write_bytes(b"\x89PNG truncated")
    _, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app) as client:
        assert client.get("/api/image", params={"image": "broken.png"}).status_code == 400
        response = client.post(
            "/api/predict", json={"image": "broken.png", "points": [[1, 1]], "labels": [1]}
        )
        assert response.status_code == 400 and "broken.png" in response.json()["detail"]
        assert client.get("/api/image", params={"image": "good.png"}).status_code == 200


def test_an_unreadable_photo_is_named_by_its_path_below_images(tmp_path, make_app, colour_sam, photo_writer):
    # photos of one name in two folders: the errors said 'c.png', the good one's name as much as the bad's
    photo_writer(tmp_path / "photos" / "lot_1" / "c.png", (40, 50), [(20, 20, 5, 5)])
    (tmp_path / "photos" / "lot_2").mkdir()
    (tmp_path / "photos" / "lot_2" / "c.png").write_bytes(b"\x89PNG truncated")
    _, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app) as client:
        opened = client.get("/api/image", params={"image": "lot_2/c.png"})
        marked = client.post("/api/status", json={"image": "lot_2/c.png", "status": "good"})
        clicked = client.post(
            "/api/predict", json={"image": "lot_2/c.png", "points": [[1, 1]], "labels": [1]}
        )
        embedding = client.get("/api/embedding", params={"image": "lot_2/c.png"}).json()  # the page shows it
    for response in (opened, marked):
        assert response.status_code == 400, response.text
        assert response.json()["detail"].startswith("cannot read image lot_2/c.png: corrupt or not an image")
    assert clicked.status_code == 400, clicked.text
    # the photo's path below --images throughout, not its absolute path
    detail = clicked.json()["detail"]
    assert (
        detail.startswith("cannot embed lot_2/c.png: cannot decode image lot_2/c.png: corrupt")
        and str(tmp_path) not in detail
    ), detail
    error = embedding["error"]  # it named the absolute path
    assert embedding["state"] == "failed" and error.startswith("cannot decode image lot_2/c.png: corrupt"), (
        error
    )


def test_opening_an_image_embeds_it_first_and_prefetches_the_next_two(client, photos, wait_for):
    folder, _ = photos
    status = client.post("/api/current", json={"image": "a.png"}).json()
    assert status["state"] in ("queued", "running", "ready")
    wait_for(lambda: client.get("/api/embedding", params={"image": "a.png"}).json()["state"] == "ready")
    ready = client.get("/api/embedding", params={"image": "a.png"}).json()
    assert ready["progress"] == 1.0 and ready["seconds"] >= 0 and not ready["cached"]
    prefetcher = client.app.state.prefetcher
    wait_for(lambda: all(prefetcher.status(folder / k).state == "ready" for k in ("b.jpg", "lot_2/c.png")))
    assert prefetcher.status(folder / "wide.png").state == "idle"  # --prefetch 2: not three ahead


def test_host_headers_other_than_loopback_are_refused(photos, tmp_path, colour_sam):
    from segmentation.annotate.app import create_app
    from segmentation.annotate.session import AnnotationSession
    from segmentation.embeddings import EmbeddingCache

    session = AnnotationSession.open(tmp_path / "out", photos[0])
    cache = EmbeddingCache(tmp_path / "emb", colour_sam, model_name="test")
    app = create_app(session, colour_sam, cache=cache, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        assert client.get("/api/session").status_code == 200
        response = client.get("/api/session", headers={"host": "evil.example:8765"})
        # it was Starlette's text/plain 'Invalid host header'
        assert response.status_code == 400 and response.headers["content-type"] == "application/json"
        assert response.json() == {
            "detail": 'Host header "evil.example:8765" refused: send one of 127.0.0.1, localhost'
        }
        assert client.post("/api/predict", json={}, headers={"host": "evil.example"}).status_code == 400


HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


def test_the_app_lets_in_exactly_the_hosts_starlettes_check_does(photos, tmp_path, colour_sam):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from segmentation.annotate.app import create_app
    from segmentation.annotate.session import AnnotationSession
    from segmentation.embeddings import EmbeddingCache

    plain = Starlette(
        routes=[Route("/api/session", lambda request: PlainTextResponse("ok"))],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=HOSTS)],
    )
    session = AnnotationSession.open(tmp_path / "out", photos[0])
    cache = EmbeddingCache(tmp_path / "emb", colour_sam, model_name="test")
    app = create_app(session, colour_sam, cache=cache, allowed_hosts=HOSTS)
    hosts = ["127.0.0.1:8765", "LOCALHOST", "[::1]:8765", "localhost.", "127.0.0.2", "evil.example", "",
             "[::1", "localhost:x", "www.localhost", "user@localhost", "localhost, evil.example"]  # fmt: skip
    with TestClient(plain) as starlettes, TestClient(app) as client:
        expected = {h: starlettes.get("/api/session", headers={"host": h}).status_code for h in hosts}
        assert sorted(set(expected.values())) == [200, 400]  # some let in, some refused
        for host in hosts:
            response = client.get("/api/session", headers={"host": host})
            assert response.status_code == expected[host], (host, response.text)
            assert expected[host] == 200 or response.json()["detail"].startswith("Host header "), host


def test_export_through_the_api(client, app_parts, defect_centre):
    session, _, truths = app_parts
    accept(client, "a.png", predict(client, "a.png", [defect_centre(truths["a.png"])]), "dent")
    response = client.post("/api/export", json={"task": "segment"})
    assert response.status_code == 200, response.text
    assert "dent" in response.json()["report"]
    labels = list((session.out / "export" / "labels").rglob("*.txt"))
    lines = [line for path in labels for line in path.read_text().splitlines()]
    assert len(lines) == 1 and len(lines[0].split()) > 5  # one YOLO-seg polygon


def written_files(folder):
    """Each file under ``folder``: its modification time and bytes."""
    return {
        path: (path.stat().st_mtime_ns, path.read_bytes()) for path in folder.rglob("*") if path.is_file()
    }


def test_a_running_export_says_which_photo_it_is_at_and_a_cancel_leaves_the_last_export_as_it_was(
    client, app_parts, monkeypatch, hold_exports
):
    """The page's export said nothing until it ended and could not be given up: GET /api/export/status says
    which photo it is at, POST /api/export/cancel stops it between photos (its request answered 409), and
    <out>/export stays the last export, no hidden half-written folder beside it."""
    from segmentation.annotate import export

    session, _, truths = app_parts
    for key, truth in truths.items():
        session.add_instance(key, class_name="dent", mask=truth)
    assert client.get("/api/export/status").json() == {"running": False}
    # none runs: kept for an export named 0 not begun yet (the next, of the server's id, goes on)
    assert client.post("/api/export/cancel", json={"id": "0"}).json() == {"cancelling": True}
    assert client.post("/api/export", json={}).status_code == 200
    out = session.out / "export"
    last = written_files(out)
    export_dataset = export.export_dataset
    held, release = hold_exports()
    first: list = []
    thread = threading.Thread(target=lambda: first.append(client.post("/api/export", json={})), daemon=True)
    thread.start()
    try:
        assert held.wait(30)
        status = client.get("/api/export/status")
        assert status.headers["cache-control"] == "no-store"
        export_id, elapsed = status.json()["id"], status.json()["elapsed_s"]
        assert isinstance(elapsed, float) and 0 <= elapsed < 60  # how long it has run: no limit stops it
        assert status.json() == {
            "running": True,
            "id": export_id,
            "stage": "writing",
            "done": 1,
            "total": 4,
            "elapsed_s": elapsed,
            "cancelling": False,
        }
        assert client.post("/api/export", json={}).status_code == 503  # one at a time, still
        assert client.post("/api/export/cancel", json={"id": export_id}).json() == {"cancelling": True}
        assert client.get("/api/export/status").json()["cancelling"] is True
    finally:
        release.set()
        thread.join(60)
    assert first[0].status_code == 409, first[0].text
    assert first[0].json() == {
        "detail": f"export cancelled after writing photo 2 of 4: nothing exported, {out} holds the last "
        "export, as it was",
        "cancelled": True,
    }
    assert written_files(out) == last
    assert [path.name for path in session.out.iterdir() if path.name.startswith(".")] == []
    assert client.get("/api/export/status").json() == {"running": False}
    monkeypatch.setattr(export, "export_dataset", export_dataset)
    assert client.post("/api/export", json={}).status_code == 200  # the next runs, and is not cancelled


def test_a_cancel_names_its_export_and_a_late_one_stops_no_later_export(client, app_parts, monkeypatch):
    """POST /api/export/cancel stopped whichever export ran: a cancel sent as its export ended (a slow
    network, a click just then) stopped the next one, another tab's. It names the export by the id of
    GET /api/export/status; only a cancelled export's 409 says cancelled (the page took any 409 after a
    cancel click for the cancel)."""
    from segmentation.annotate import export

    session, _, truths = app_parts
    refused = client.post("/api/export", json={})  # no instance accepted: a 409 that is no cancel
    assert refused.status_code == 409 and list(refused.json()) == ["detail"], refused.text
    for key, truth in truths.items():
        session.add_instance(key, class_name="dent", mask=truth)
    export_dataset, at_photo, release = export.export_dataset, threading.Event(), threading.Event()
    ids = []

    def held_at_the_first_photo_written(*args, on_photo, **kwargs):
        def hook(stage, done, total):
            on_photo(stage, done, total)
            if (stage, done) == ("writing", 1):
                ids.append(client.get("/api/export/status").json().get("id"))
                at_photo.set()
                assert release.wait(10)

        return export_dataset(*args, on_photo=hook, **kwargs)

    monkeypatch.setattr(export, "export_dataset", held_at_the_first_photo_written)
    answers: list = []
    for _ in range(2):
        at_photo.clear()
        release.clear()
        thread = threading.Thread(target=lambda: answers.append(client.post("/api/export", json={})))
        thread.start()
        try:
            assert at_photo.wait(30)
            if len(ids) == 2:  # the first export's cancel, come late: this one goes on
                assert client.post("/api/export/cancel", json={"id": ids[0]}).json() == {"cancelling": False}
                assert client.get("/api/export/status").json()["cancelling"] is False
        finally:
            release.set()
            thread.join(60)
    assert ids[0] != ids[1]
    assert [answer.status_code for answer in answers] == [200, 200], answers[1].text
    assert client.post("/api/export/cancel", json={}).status_code == 422  # which export: not said


def test_a_cancel_that_comes_before_its_export_stops_it_before_its_first_photo(client, app_parts):
    """The page's cancel, clicked as its export request was on its way, named no export (none ran yet) and
    was never sent: the export ran to its end. The page names its export; a cancel of that id that comes
    first is kept, and the export stops before its first photo, <out>/export as it was."""
    session, _, truths = app_parts
    for key, truth in truths.items():
        session.add_instance(key, class_name="dent", mask=truth)
    assert client.post("/api/export", json={"id": "first"}).status_code == 200
    out = session.out / "export"
    last = written_files(out)
    assert client.post("/api/export/cancel", json={"id": "first"}).json() == {"cancelling": False}  # over
    assert client.post("/api/export/cancel", json={"id": "page-7f3a"}).json() == {"cancelling": True}
    refused = client.post("/api/export", json={"task": "segment", "id": "page-7f3a"})
    assert refused.status_code == 409, refused.text
    assert refused.json() == {
        "detail": f"export cancelled before its first photo: nothing exported, {out} holds the last export, "
        "as it was",
        "cancelled": True,
    }
    assert written_files(out) == last
    assert client.get("/api/export/status").json() == {"running": False}
    assert client.post("/api/export", json={"id": "first"}).status_code == 200  # its late cancel not kept
    assert client.post("/api/export", json={"id": "page-7f3a"}).status_code == 200  # a cancel stops one
    for bad in ("", "a b", "x" * 65):
        answer = client.post("/api/export", json={"id": bad})
        assert answer.status_code == 422 and "\n" not in answer.json()["detail"], answer.text
        assert client.post("/api/export/cancel", json={"id": bad}).status_code == 422


def test_an_export_asked_while_another_runs_is_refused_503_not_held_till_it_ends(
    client, app_parts, monkeypatch
):
    # the second waited on the export lock for as long as the first ran: a slow disk held its request
    from segmentation.annotate import export

    session, _, truths = app_parts
    mask = np.zeros(truths["a.png"].shape, bool)
    mask[10:20, 10:30] = True
    session.add_instance("a.png", class_name="dent", mask=mask)
    export_dataset, started, release = export.export_dataset, threading.Event(), threading.Event()

    def slow(*args, **kwargs):
        started.set()
        assert release.wait(10)
        return export_dataset(*args, **kwargs)

    monkeypatch.setattr(export, "export_dataset", slow)
    first: list = []
    thread = threading.Thread(target=lambda: first.append(client.post("/api/export", json={})), daemon=True)
    thread.start()
    try:
        assert started.wait(30)
        second = client.post("/api/export", json={"task": "segment"})
    finally:
        release.set()
        thread.join(60)
    assert second.status_code == 503, second.text
    assert second.json()["detail"].startswith("nothing exported: an export into ")
    assert "is already running" in second.json()["detail"] and "\n" not in second.json()["detail"]
    assert first[0].status_code == 200, first[0].text
    assert client.post("/api/export", json={}).status_code == 200  # once it ended, the next runs


@pytest.mark.parametrize(
    "suffix, sent_as", [(".webp", "image/png"), (".png", "image/png"), (".jpg", "image/jpeg")]
)
def test_an_exif_rotated_photo_reaches_the_page_upright_as_its_masks_are(
    tmp_path, make_app, colour_sam, suffix, sent_as
):
    # Chromium draws a rotated WebP as stored: the page stretched it into the upright size the masks
    # and clicks are in, so a click landed on another part of the photo than the one seen.
    from PIL import Image

    stored = np.zeros((40, 80, 3), np.uint8)
    stored[:, :10] = 255  # a white band on the left of the stored pixels
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the band goes to the top
    options = {"lossless": True} if suffix == ".webp" else {"quality": 95} if suffix == ".jpg" else {}
    (tmp_path / "photos").mkdir()
    image.save(tmp_path / "photos" / f"phone{suffix}", exif=exif, **options)
    _, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app) as client:
        detail = client.get("/api/image", params={"image": f"phone{suffix}"}).json()
        response = client.get(detail["url"])
    assert (detail["width"], detail["height"]) == (40, 80)
    assert response.status_code == 200 and response.headers["content-type"] == sent_as
    if sent_as == "image/png":  # a JPEG's orientation every browser applies: sent as it is
        shown = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_UNCHANGED)
        assert shown.shape[:2] == (80, 40) and shown[:10].mean() > 200 and shown[20:].mean() < 50


def test_a_state_file_that_cannot_be_written_is_a_one_line_507_and_nothing_is_saved(
    client, app_parts, defect_centre, monkeypatch
):
    from segmentation.annotate import session as session_module

    session, _, truths = app_parts
    prediction = predict(client, "a.png", [defect_centre(truths["a.png"])])

    def read_only(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(session_module, "atomic_write", read_only)
    body = {"image": "a.png", "prediction": prediction["prediction"], "candidate": 1, "class": "dent"}
    response = client.post("/api/accept", json=body)  # was 500 "internal error: PermissionError: ..."
    assert response.status_code == 507, response.text
    detail = response.json()["detail"]
    assert detail.startswith("nothing saved: cannot write") and "Permission denied" in detail
    assert str(session.state_path) in detail and "\n" not in detail
    assert "saved" not in response.json()  # nothing was: no detail to keep
    assert session.entry("a.png").instances == []
    monkeypatch.undo()
    assert client.post("/api/accept", json=body).status_code == 200  # the same request, once writable


def test_a_photo_opens_while_the_state_cannot_be_written(client, app_parts, monkeypatch):
    # remembering the photo opened was saved first: a full disk kept every photo from opening (500)
    from segmentation.annotate import session as session_module

    session, _, _ = app_parts

    def full_disk(path, data):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(session_module, "atomic_write", full_disk)
    assert client.post("/api/current", json={"image": "b.jpg"}).status_code == 200
    assert client.get("/api/image", params={"image": "b.jpg"}).status_code == 200
    assert session.current == "b.jpg"


def test_a_tree_that_cannot_be_written_says_the_change_is_saved_and_the_export_still_holds_it(
    client, app_parts, defect_centre, monkeypatch
):
    from segmentation.annotate import export

    session, _, truths = app_parts
    prediction = predict(client, "a.png", [defect_centre(truths["a.png"])])

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", "/out/new_defects/ground_truth/dent/a_mask.png")

    monkeypatch.setattr(export, "sync_image", full_disk)
    body = {"image": "a.png", "prediction": prediction["prediction"], "candidate": 1, "class": "dent"}
    response = client.post("/api/accept", json=body)  # was 500 "internal error: OSError: ..."
    assert response.status_code == 507, response.text
    detail = response.json()["detail"]
    assert detail.startswith("saved in annotate_state.json, but the files of a.png") and "No space" in detail
    # the photo's detail as the change left it, with the version it gave it: the page keeps it as a 200's
    saved = response.json()["saved"]
    assert saved["image"] == "a.png" and saved["version"] == session.version("a.png")
    assert len(saved["instances"]) == 1 and saved["can_undo"]
    monkeypatch.undo()
    # the page retries: the same mask is saved once, so nothing rewrites the photo's files until the export
    assert len(accept(client, "a.png", prediction, "dent")["instances"]) == 1
    assert client.post("/api/export", json={}).status_code == 200
    coco = json.loads((session.out / "export/annotations/instances_train.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["dent", "scratch"]
    assert len(coco["annotations"]) == 1  # was 0: the export read the tree, which lacked the photo


def test_a_file_error_after_a_change_is_a_507_saying_its_labels_are_not_sent(client, app_parts, monkeypatch):
    # the change saved, its detail not read: without ``saved`` the page took it for nothing saved, and an
    # undo pressed before that answer was refused as another tab's change
    from segmentation.annotate.routes import instances

    session, _, truths = app_parts
    session.add_instance("a.png", class_name="dent", mask=truths["a.png"])

    def unreadable(*args, **kwargs):
        raise OSError(5, "Input/output error", "/images/a.png")

    monkeypatch.setattr(instances, "image_detail", unreadable)
    response = client.post("/api/delete", json={"image": "a.png", "instance": 1})
    assert response.status_code == 507, response.text
    assert response.json()["detail"].startswith("cannot read or write a file:")
    assert response.json()["saved"] is None  # may be saved (it is): its detail is not sent
    assert session.entry("a.png").instances == []
    monkeypatch.undo()
    monkeypatch.setattr("segmentation.annotate.routes.images.image_detail", unreadable)
    response = client.get("/api/image", params={"image": "a.png"})
    assert response.status_code == 507 and "saved" not in response.json()  # a read changes nothing


def test_a_file_error_of_a_request_that_changes_no_labels_has_no_saved(client, app_parts, monkeypatch):
    # ``saved`` null says a change may be saved: every POST had it, a prediction's and an export's too
    session, _, _ = app_parts

    def unreadable(*args, **kwargs):
        raise OSError(5, "Input/output error", "/images/a.png")

    monkeypatch.setattr(session, "image_path", unreadable)
    monkeypatch.setattr(session, "export", unreadable)
    for path, body in [("/api/predict", {"image": "a.png", "points": [[5, 5]]}), ("/api/export", {})]:
        response = client.post(path, json=body)
        assert response.status_code == 507 and "saved" not in response.json(), (path, response.text)
    monkeypatch.setattr("segmentation.annotate.routes.instances.image_detail", unreadable)
    response = client.post("/api/status", json={"image": "a.png", "status": "good"})  # a change: it has
    assert response.status_code == 507 and response.json()["saved"] is None, response.text


def test_a_one_pixel_scratch_stays_visible_in_the_preview_of_a_large_image(client, app_parts):
    session, _, _ = app_parts
    scratch = np.zeros((300, 640), bool)
    scratch[151, 100:500] = True  # one pixel high; the preview is 256 px wide for 640
    session.add_instance("wide.png", class_name="scratch", mask=scratch)
    detail = client.get("/api/image", params={"image": "wide.png"}).json()
    preview = rle_to_mask(detail["instances"][0]["rle"])
    assert preview.shape == (120, 256) and preview.any(axis=0).sum() >= 150


def test_a_small_box_is_zoomed_with_crop_fraction_and_not_without(photos, tmp_path, colour_sam, client):
    from segmentation.annotate.app import create_app
    from segmentation.annotate.session import AnnotationSession
    from segmentation.crops import CropRule
    from segmentation.embeddings import EmbeddingCache

    folder, truths = photos
    truth, box = truths["wide.png"], [357, 118, 443, 182]  # an 86x64 defect on a 300x640 photo
    assert predict(client, "wide.png", [], box=box)["crop"] is None  # the default: off
    assert client.get("/api/session").json()["crop_fraction"] == 0
    session = AnnotationSession.open(tmp_path / "zoomed", folder, classes=["dent"])
    cache = EmbeddingCache(tmp_path / "zoomed_embeddings", colour_sam, model_name="test")
    app = create_app(session, colour_sam, cache=cache, model_name="test", crops=CropRule(max_fraction=0.25))
    with TestClient(app) as zoomed:
        assert zoomed.get("/api/session").json()["crop_fraction"] == 0.25
        result = predict(zoomed, "wide.png", [], box=box)
        assert result["crop"] == [271, 21, 258] and result["ms"]["crop"] > 0
        assert result["size"] == [120, 256]  # previews in the photo's frame
        preview = rle_to_mask(result["candidates"][result["best"]]["rle"])
        assert preview.shape == (120, 256) and not preview[:, : 271 * 256 // 640 - 1].any()
        accept(zoomed, "wide.png", result, "dent")
    mask = read_mask(session.category_dir / "ground_truth/dent/wide_mask.png") > 0
    assert mask.shape == truth.shape and iou(mask, truth) > 0.9
    prompt = json.loads(session.state_path.read_text())["images"]["wide.png"]["instances"][0]["prompt"]
    assert prompt["box"] == box and prompt["crop"] == [271, 21, 258]  # the photo's frame, and the crop


def test_an_instance_says_in_how_many_pieces_every_export_will_split_it(
    tmp_path, make_app, colour_sam, photo_writer
):
    photo_writer(tmp_path / "photos" / "one.png", (40, 50), [(20, 20, 5, 5)])
    whole, split = np.zeros((40, 50), bool), np.zeros((40, 50), bool)
    whole[2:6, 2:6] = True
    split[10:14, 10:14] = split[14:16, 14:16] = True  # touching at a corner: one 8-connected piece
    split[30:32, 40:45] = split[35, 2] = True
    session, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app) as client:
        for mask in (whole, split):
            session.add_instance("one.png", class_name="defect", mask=mask)
        detail = client.get("/api/image", params={"image": "one.png"}).json()
    assert [instance["pieces"] for instance in detail["instances"]] == [1, 3]


def test_a_new_instance_s_mask_is_decoded_once_for_its_preview_and_its_pieces(
    tmp_path, make_app, colour_sam, photo_writer, monkeypatch
):
    from segmentation.annotate import records

    photo_writer(tmp_path / "photos" / "one.png", (40, 50), [(20, 20, 5, 5)])
    first, second = np.zeros((40, 50), bool), np.zeros((40, 50), bool)
    first[2:6, 2:6] = True
    second[30:32, 40:45] = second[35, 2] = True
    session, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    decoded, rle_to_mask = [], records.rle_to_mask

    def counted(rle):
        decoded.append(rle["counts"])
        return rle_to_mask(rle)

    with TestClient(app) as client:
        for mask in (first, second):
            session.add_instance("one.png", class_name="defect", mask=mask)
        monkeypatch.setattr(records, "rle_to_mask", counted)
        detail = client.get("/api/image", params={"image": "one.png"}).json()
        assert len(decoded) == 2 and len(set(decoded)) == 2  # each once: the preview and pieces share it
        assert [instance["pieces"] for instance in detail["instances"]] == [1, 2]
        again = client.get("/api/image", params={"image": "one.png"}).json()
    assert len(decoded) == 2 and again["instances"] == detail["instances"]  # both kept: none again


def test_previews_of_photos_of_one_size_are_their_own(tmp_path, make_app, colour_sam, photo_writer):
    masks = {}
    for index, name in enumerate(("one.png", "two.png")):
        photo_writer(tmp_path / "photos" / name, (40, 50), [(20, 20, 5, 5)])
        masks[name] = np.zeros((40, 50), bool)
        masks[name][10 * index : 10 * index + 5, 0:5] = True
    session, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app) as client:
        for name, mask in masks.items():
            session.add_instance(name, class_name="defect", mask=mask)
            detail = client.get("/api/image", params={"image": name}).json()
            assert np.array_equal(rle_to_mask(detail["instances"][0]["rle"]), mask)


def test_accepting_another_candidate_than_the_best_saves_that_candidate(tmp_path, make_app, colour_sam):
    image = np.full((64, 64, 3), 150, np.uint8)
    image[16:48, 16:48] = (65, 65, 170)  # a halo of another red around the defect
    image[24:40, 24:40] = (40, 40, 170)
    (tmp_path / "photos").mkdir()
    assert cv2.imwrite(str(tmp_path / "photos" / "halo.png"), image)
    session, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app) as client:
        result = predict(client, "halo.png", [[32.0, 32.0]])
        masks = [rle_to_mask(candidate["rle"]) for candidate in result["candidates"]]
        other = next(i for i, mask in enumerate(masks) if not np.array_equal(mask, masks[result["best"]]))
        accept(client, "halo.png", result, "defect", candidate=other)
    (instance,) = session.entry("halo.png").instances
    assert np.array_equal(instance.mask(), masks[other])
    assert instance.score == result["candidates"][other]["score"]


def test_a_click_shows_the_defect_first_and_a_box_shows_sams_pick(tmp_path, make_app, colour_sam):
    image = np.full((64, 64, 3), 150, np.uint8)
    image[16:48, 16:48] = (65, 65, 170)  # a halo (a quarter of the photo) around the defect
    image[24:40, 24:40] = (40, 40, 170)  # the defect (a sixteenth)
    (tmp_path / "photos").mkdir()
    assert cv2.imwrite(str(tmp_path / "photos" / "halo.png"), image)
    _, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app) as client:
        for prompt, box in (([[32.0, 32.0]], None), ([[32.0, 32.0]], [14, 14, 50, 50])):
            result = client.post(
                "/api/predict", json={"image": "halo.png", "points": prompt, "labels": [1], "box": box}
            ).json()
            scores = [candidate["score"] for candidate in result["candidates"]]
            areas = [rle_to_mask(candidate["rle"]).mean() for candidate in result["candidates"]]
            if box is None:  # the halo is scored highest; the defect, under a tenth, is shown first
                assert areas[int(np.argmax(scores))] > 0.1 and areas[result["best"]] < 0.1
            else:
                assert result["best"] == int(np.argmax(scores))


def test_a_photo_resized_between_click_and_accept_is_refused_not_saved_warped(
    client, app_parts, defect_centre, photo_writer
):
    session, app, truths = app_parts
    result = predict(client, "a.png", [defect_centre(truths["a.png"])])
    # The photo is replaced on disk by one of another size (re-exported, cropped) before Enter.
    photo_writer(session.image_path("a.png"), (60, 80), [(25, 30, 7, 5)])
    body = {"image": "a.png", "prediction": result["prediction"], "candidate": result["best"]}
    response = client.post("/api/accept", json={**body, "class": "dent"})
    assert response.status_code == 409, response.text
    assert response.json()["detail"].startswith("a.png changed on disk since prediction ")
    assert response.json()["detail"].endswith(": click again")
    assert session.entry("a.png").instances == []  # the old click's mask is not stretched onto the new photo
    assert client.get("/api/session").status_code == 200
    # the pixel size is checked too, for a file whose time and byte size came back the same
    predictor = app.state.predictor
    unchecked = dataclasses.replace(predictor.prediction(result["prediction"], "a.png"), file=None)
    with pytest.raises(
        ConflictError, match="^a.png changed from 160x120 to 80x60 since prediction .*: click again$"
    ):
        predictor.full_mask(unchecked, result["best"])


def test_a_photo_replaced_by_another_of_its_size_between_click_and_accept_is_refused(
    client, app_parts, defect_centre, photo_writer
):
    session, _, truths = app_parts
    path = session.image_path("a.png")
    result = predict(client, "a.png", [defect_centre(truths["a.png"])])
    before = path.stat().st_mtime_ns
    # Another photo of the same 160x120 size (the next one of the lot, saved under this name) before Enter.
    photo_writer(path, (120, 160), [(110, 80, 9, 12)], seed=7)
    os.utime(path, ns=(before + 10**9, before + 10**9))  # saved a second later, as by hand
    body = {"image": "a.png", "prediction": result["prediction"], "candidate": result["best"]}
    response = client.post("/api/accept", json={**body, "class": "dent"})
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert "a.png" in detail and "click again" in detail and "\n" not in detail
    assert session.entry("a.png").instances == []  # the old photo's mask is not saved on the new one
    accept(client, "a.png", predict(client, "a.png", [[110.0, 80.0]]), "dent")  # a new click works


def test_a_photo_replaced_by_one_of_another_size_is_opened_afresh_and_says_where_its_labels_went(
    client, app_parts, defect_centre, photo_writer
):
    session, _, truths = app_parts
    accept(client, "a.png", predict(client, "a.png", [defect_centre(truths["a.png"])]), "dent")
    photo_writer(session.image_path("a.png"), (60, 80), [(25, 30, 7, 5)])  # re-exported at another size
    response = client.get("/api/image", params={"image": "a.png"})
    assert response.status_code == 200, response.text
    detail = response.json()
    # was: the old 160x120 size and its instance, drawn over the new photo, and no new mask taken
    shown = (detail["width"], detail["height"], detail["instances"], detail["status"])
    assert shown == (80, 60, [], "unlabelled")
    assert detail["notice"].startswith("a.png was replaced by a 80x60 photo: the labels of the 160x120 one ")
    assert str(session.out / "replaced") in detail["notice"]
    accept(client, "a.png", predict(client, "a.png", [[25.0, 30.0]]), "dent")  # the new photo is annotated
    assert client.get("/api/image", params={"image": "a.png"}).json()["notice"] is None


def oversized_png(path, side=20_000):
    """A PNG whose header claims ``side`` x ``side`` pixels, over PIL's bomb limit; no pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


@pytest.mark.parametrize("name", ["empty.png", "text.jpg", "oversized.png"])
def test_an_unreadable_photo_cannot_be_marked_good_and_the_out_folder_still_opens(
    tmp_path, make_app, colour_sam, photo_writer, name
):
    from segmentation.annotate.session import AnnotationSession

    photo_writer(tmp_path / "photos" / "ok.png", (40, 50), [(20, 20, 5, 5)])
    bad = tmp_path / "photos" / name
    {"empty.png": lambda: bad.write_bytes(b""), "text.jpg": lambda: bad.write_text("hello")}.get(
        name, lambda: oversized_png(bad)
    )()
    session, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/api/status", json={"image": name, "status": "good"})
        assert response.status_code == 400 and name in response.json()["detail"], response.text
        assert client.get("/api/session").status_code == 200
    # Refused before anything was saved: no good copy of it in the tree, the state unchanged.
    assert session.entry(name).status == "unlabelled"
    assert not list((tmp_path / "out").rglob(f"test/good/{Path(name).stem}.*"))
    assert AnnotationSession.open(tmp_path / "out", None).entry(name).status == "unlabelled"


def test_a_good_photo_replaced_by_an_oversized_one_does_not_stop_the_out_folder_from_opening(
    tmp_path, photo_writer
):
    from segmentation.annotate.session import AnnotationSession

    photo_writer(tmp_path / "photos" / "ok.png", (40, 50), [(20, 20, 5, 5)])
    session = AnnotationSession.open(tmp_path / "out", tmp_path / "photos", classes=["scratch"])
    session.set_status("ok.png", "good")
    oversized_png(tmp_path / "photos" / "ok.png")  # replaced on disk; the next start syncs the tree
    assert AnnotationSession.open(tmp_path / "out", None).entry("ok.png").status == "good"
    session.set_status("ok.png", "good")  # marked good again: no change, nothing to refuse
    assert session.entry("ok.png").status == "good"


LONG = "1" * 4300  # the most digits Python reads


#: (path, body, content type, the 422's whole detail after 'malformed request: ')
MALFORMED_BODY_DETAILS = [
    (
        "/api/predict",
        b'{"image": "a.png", "points": [[1, 2]',
        JSON,
        "body: invalid JSON at character 36: Expecting ',' delimiter",  # the parser's own reason
    ),
    ("/api/predict", b'"x"', JSON, 'body: expected a JSON object, got "x"'),  # as JSON, quotes and all
    (
        "/api/predict",
        b'{"image": "a.png", "points": [[1, 2]], "labels": [1], "extra": 1}',
        JSON,
        "extra: Extra inputs are not permitted",  # no "body." before it, no value after it
    ),
    (
        "/api/predict",
        b'{"image": 1, "points": "x", "labels": [1]}',
        JSON,
        'image: Input should be a valid string, got 1; points: Input should be a valid list, got "x"',
    ),
    (
        "/api/accept",
        b'{"image": "a.png", "prediction": "p1", "candidate": 1.5, "class": null}',
        JSON,
        "candidate: Input should be a valid integer, got 1.5; "
        "class: Input should be a valid string, got null",
    ),
    (
        "/api/status",
        '{"image": "a.png", "status": "fé"}'.encode(),
        JSON,
        "status: Input should be 'done', 'good' or 'open', got \"fé\"",
    ),
    (
        "/api/predict",
        b"[1, 2]",
        "application/json; charset=utf-8",
        "body: expected a JSON object, got [1, 2]",
    ),
    (
        "/api/predict",
        b"[1, 2]",
        "application/json ; charset=utf-8",
        "body: expected a JSON object, got [1, 2]",
    ),
    ("/api/predict", b"[1, 2]", "Application/JSON", "body: expected a JSON object, got [1, 2]"),
    ("/api/predict", b"[1, 2]", "application/vnd.api+json", "body: expected a JSON object, got [1, 2]"),
    (  # an object all the same: it was 'expected a JSON object, got "?"'
        "/api/predict",
        b'{"\\ud800": 1}',
        JSON,
        'body: key "\\ud800" is not valid text (a lone surrogate, which UTF-8 cannot encode)',
    ),
    (
        "/api/status",
        b'{"image": "a.png", "status": "done", "a\\udfff": 1}',
        JSON,
        'body: key "a\\udfff" is not valid text (a lone surrogate, which UTF-8 cannot encode)',
    ),
    (  # was a.png opened: json kept the last
        "/api/status",
        b'{"image": "nope.png", "image": "a.png", "status": "open"}',
        JSON,
        'body: key "image" given twice',
    ),
    ("/api/predict", b'{"image": "a.png", "box": {"a": 1, "a": 2}}', JSON, 'body: key "a" given twice'),
    (  # not read as JSON: what FastAPI's answer is about
        "/api/predict",
        b'{"image": "a.png", "image": "a.png"}',
        "text/plain",
        "body: send a JSON object with Content-Type: application/json (got text/plain)",
    ),
    (
        "/api/predict",
        b"[1, 2]",
        "text/x+json",  # FastAPI reads only application/ media types as JSON
        "body: send a JSON object with Content-Type: application/json (got text/x+json)",
    ),
]


@pytest.mark.parametrize("path, body, content_type, detail", MALFORMED_BODY_DETAILS)
def test_what_a_malformed_body_is_told_word_for_word(client, path, body, content_type, detail):
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == f"malformed request: {detail}"


@pytest.mark.parametrize(
    "body, where",
    [
        (f'{{"a": [{DIGITS}, {DIGITS}2]}}', "a.0"),  # the first in the document, not the last
        (f'{{"a": {LONG}, "b": {DIGITS}}}', "b"),  # 4300 digits are read
        (f'{{"a": -{LONG}, "b": {DIGITS}}}', "b"),  # the sign is no digit
        (DIGITS, "body"),  # the whole body one number
    ],
)
def test_a_huge_number_is_named_where_it_is(client, body, where):
    response = client.post("/api/predict", content=body.encode(), headers={"content-type": JSON})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"malformed request: {where}: a number of 500")
    assert detail.endswith(f" digits (at most 4300): {'1' * 37}...")  # the number, cut short


def test_a_huge_number_before_too_deep_a_nesting_is_a_422_not_a_500(client):
    body = f"[{DIGITS}, ".encode() + b"[" * 5000 + b"]" * 5000 + b"]"
    response = client.post("/api/predict", content=body, headers={"content-type": JSON})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("malformed request: body: cannot be read as JSON: ")


def test_a_missing_query_field_and_a_wrong_method_get_fastapis_answers(client):
    response = client.get("/api/image")
    assert response.json()["detail"] == "malformed request: query.image: Field required"  # no "got null"
    response = client.get("/api/predict")  # other HTTP errors keep FastAPI's answer, headers included
    assert (response.status_code, response.headers.get("allow")) == (405, "POST")
    assert response.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize(
    "url, detail",
    [
        ("/api/image?image=nope.png&image=a.png", "image: given 2 times"),  # was a.png's detail: the last won
        ("/api/embedding?image=a.png&image=a.png", "image: given 2 times"),  # the same value too
        ("/api/proposals?image=a.png&x=1&image=b.jpg&image=a.png", "image: given 3 times"),
        ("/api/session?x=&x=", "x: given 2 times"),  # any parameter, known to the route or not
        ("/files/images/a.png?v=1&v=2", "v: given 2 times"),
    ],
)
def test_a_query_parameter_given_more_than_once_is_a_422_naming_it(client, url, detail):
    response = client.get(url)
    assert response.status_code == 422, response.text
    assert response.json() == {"detail": f"malformed request: query.{detail}: send it once"}


def test_a_body_over_a_mib_is_a_413_before_it_is_read(client, app_parts):
    from segmentation.annotate.guard import MAX_BODY_BYTES

    session, _, _ = app_parts
    assert MAX_BODY_BYTES == 1 << 20
    too_large = {"detail": "request body over 1048576 bytes, the most this server reads"}
    body = b'{"image": "a.png", "status": "good"' + b" " * MAX_BODY_BYTES + b"}"
    response = client.post("/api/status", content=body, headers={"content-type": JSON})
    assert (response.status_code, response.json()) == (
        413,
        too_large,
    )  # was read whole, then a.png marked good
    # sent in chunks without a Content-Length: refused as the bytes come
    chunks = iter([b'{"image": "a.png", "status": "good"', *[b" " * (1 << 16)] * 16, b" }"])
    response = client.post("/api/status", content=chunks, headers={"content-type": JSON})
    assert (response.status_code, response.json()) == (413, too_large)
    assert session.entry("a.png").status != "good"
    # exactly the limit is read, and goes to the route
    body = b'{"image": "a.png", "status": "good"}'
    body = body[:-1] + b" " * (MAX_BODY_BYTES - len(body)) + b"}"
    response = client.post("/api/status", content=body, headers={"content-type": JSON})
    assert response.status_code == 200 and response.json()["status"] == "good", response.text


def test_the_app_removes_specks_unless_told_otherwise(app_parts):
    _, app, _ = app_parts
    assert app.state.predictor.speck_cells == DEFAULT_CELLS == 16


def test_pieces_are_counted_per_photo(tmp_path, make_app, colour_sam, photo_writer):
    # instance 1 of each photo: one piece on one, two on the other
    for name in ("one.png", "two.png"):
        photo_writer(tmp_path / "photos" / name, (40, 50), [(20, 20, 5, 5)])
    whole, split = np.zeros((40, 50), bool), np.zeros((40, 50), bool)
    whole[2:6, 2:6] = True
    split[2:6, 2:6] = split[30:32, 40:45] = True
    session, app = make_app(tmp_path / "photos", tmp_path / "out", colour_sam)
    with TestClient(app) as client:
        session.add_instance("one.png", class_name="defect", mask=whole)
        session.add_instance("two.png", class_name="defect", mask=split)
        pieces = [
            client.get("/api/image", params={"image": name}).json()["instances"][0]["pieces"]
            for name in ("one.png", "two.png")
        ]
    assert pieces == [1, 2]
