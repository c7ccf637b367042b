"""Takes ``docs/annotate.png``: the annotation page with MobileSAM: an instance, a proposal, a preview.

Serves four real hazelnut photos (``../shared/data/hazelnut_toy``; synthetic nuts where that
folder is absent) with ``python -m segmentation.annotate``'s app in a thread, drives Debian's
chromium headless with Playwright, boxes one colour defect and accepts it, gives a second one
to the page as a proposal (SAM's mask of its box, made on the app's decoder thread as
``--detector`` makes them), clicks a third so its mask preview shows (cycling to the candidate
that is that defect, as a user would), and saves the page.

Usage::

    python docs/annotate_screenshot.py --out docs/annotate.png [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
HAZELNUT = REPO.parent / "shared" / "data" / "hazelnut_toy"
CLASSES = ["colour", "crack", "cut", "hole", "print"]  # MVTec AD's hazelnut defect types


def photos_into(folder: Path) -> dict[str, np.ndarray]:
    """Copies the photos to annotate into ``folder``; returns their defect masks by name."""
    folder.mkdir(parents=True)
    truths: dict[str, np.ndarray] = {}
    sources = sorted((HAZELNUT / "test" / "colour").glob("*.jpg"))
    # A photo with two or more separate defects first: one to accept, one to preview.
    sources.sort(key=lambda p: -cv2.connectedComponents(_truth(p).view(np.uint8))[0])
    for source in sources[:4]:
        shutil.copy(source, folder / source.name)
        truths[source.name] = _truth(source)
    if not truths:
        from converters.synthetic import render_sample

        rng = np.random.default_rng(0)
        for index in range(4):
            image, mask = render_sample("color", rng, 512)
            name = f"nut_{index}.png"
            cv2.imwrite(str(folder / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            truths[name] = mask > 0
    return truths


def _truth(source: Path) -> np.ndarray:
    return cv2.imread(str(HAZELNUT / "ground_truth" / "colour" / f"{source.stem}_mask.png"), 0) > 0


def regions(truth: np.ndarray) -> list[tuple[np.ndarray, tuple[float, float], list[float]]]:
    """Each defect region's mask, a point well inside it and its box (xyxy), largest region first."""
    count, labels = cv2.connectedComponents(truth.view(np.uint8))
    found = []
    for label in range(1, count):
        region = labels == label
        distance = cv2.distanceTransform(region.view(np.uint8), cv2.DIST_L2, 3)
        y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
        ys, xs = np.nonzero(region)
        box = [float(xs.min()) - 6, float(ys.min()) - 6, float(xs.max()) + 7, float(ys.max()) + 7]
        found.append((region, (float(x) + 0.5, float(y) + 0.5), box))
    return sorted(found, key=lambda item: -int(item[0].sum()))


def closest_candidate(page, region: np.ndarray) -> int:
    """Index of the shown prediction's candidate with the highest IoU against ``region``."""
    from converters.masks import rle_to_mask

    prediction = page.evaluate("() => window.annotator.state.prediction")
    scores = []
    for candidate in prediction["candidates"]:
        mask = rle_to_mask(candidate["rle"])
        mask = cv2.resize(mask.view(np.uint8), region.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        scores.append((mask & region).sum() / max((mask | region).sum(), 1))
    return int(np.argmax(scores))


def propose(app, name: str, box: list[float]) -> None:
    """Gives photo ``name`` one proposal: SAM's mask of ``box`` on the app's decoder thread."""
    from functools import partial

    from segmentation.annotate.proposals import make_proposal

    session, predictor = app.state.session, app.state.predictor
    emb = app.state.prefetcher.get(session.image_path(name))
    ((mask, iou),) = predictor.worker.run(partial(predictor.box_masks, emb, np.array([box])))
    proposal = make_proposal(mask, class_name="colour", box=box, score=0.91, mask_score=iou, source="best.pt")
    session.add_proposals({name: [proposal]}, source="screenshot")


def to_page(page, x: float, y: float) -> dict:
    return page.evaluate("([x, y]) => window.annotator.imageToClient(x, y)", [x, y])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "annotate.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from segmentation.annotate.__main__ import LOOPBACK_HOSTS, url_for
    from segmentation.annotate.app import create_app
    from segmentation.annotate.session import AnnotationSession
    from segmentation.embeddings import EmbeddingCache
    from segmentation.models import load_sam

    with tempfile.TemporaryDirectory(prefix="annotate_screenshot_") as tmp:
        work = Path(tmp)
        truths = photos_into(work / "new_photos")
        session = AnnotationSession.open(work / "new_defects", work / "new_photos", classes=CLASSES)
        sam = load_sam("vit_t")
        cache = EmbeddingCache(work / "embeddings", sam, model_name="vit_t")
        app = create_app(session, sam, cache=cache, model_name="vit_t", allowed_hosts=LOOPBACK_HOSTS)
        name = session.current
        with serving(app) as sock, sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=args.chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 820})
            page.set_default_timeout(120_000)
            page.goto(url_for(sock))
            page.wait_for_function("() => document.body.dataset.embedding === 'ready'")
            annotate(page, app, name, regions(truths[name]))
            page.mouse.move(5, 5)  # no hover highlight in the picture
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            browser.close()
    print(f"wrote {args.out}")
    return 0


@contextmanager
def serving(app) -> Iterator[socket.socket]:
    """Serves ``app`` with uvicorn in a thread on a free loopback port; yields the bound socket."""
    import uvicorn

    from segmentation.annotate.__main__ import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield sock
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def annotate(page, app, name: str, found: list) -> None:
    """On photo ``name``'s page: the largest defect of ``found`` boxed and accepted, the next one given
    as a proposal, the third clicked so that its preview shows the candidate that is that defect."""
    (_, _, box), proposed, previewed = found[0], found[1:2], found[2:3]
    # The largest defect by a box drag, accepted; then a click on the next one, previewed.
    start, end = to_page(page, *box[:2]), to_page(page, *box[2:])
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(end["x"], end["y"], steps=8)
    page.mouse.up()
    page.wait_for_function("() => document.body.dataset.preview === '1'")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.body.dataset.instances === '1'")
    for _, _, proposal_box in proposed:  # shown as a detector's proposal once the page reloads
        propose(app, name, proposal_box)
        page.reload()
        page.wait_for_function("() => document.body.dataset.proposals === '1'")
        page.wait_for_function("() => document.body.dataset.embedding === 'ready'")
    for region, point, _ in previewed:
        click = to_page(page, *point)
        page.mouse.click(click["x"], click["y"])
        page.wait_for_function("() => document.body.dataset.preview === '1'")
        wanted = closest_candidate(page, region)
        while page.evaluate("() => window.annotator.state.candidate") != wanted:
            page.keyboard.press("Tab")  # SAM's three candidates: the one that is this defect


if __name__ == "__main__":
    sys.exit(main())
