"""The page in a real browser: Debian's chromium, headless, driven by Playwright for Python.

The server is uvicorn in a thread with the colour SAM of conftest.py (stock ``Sam``
with stand-in modules that segment by colour), so clicks go through the real
prompt scaling, decoder call and mask upscaling and land on the drawn defect.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import numpy as np
import pytest

from converters.masks import read_mask

pytestmark = pytest.mark.slow

BROWSER_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]


def browser_binary() -> str | None:
    """``$CHROMIUM``, else Debian's ``/usr/bin/chromium``, else a chromium/chrome on the PATH."""
    for candidate in (os.environ.get("CHROMIUM"), *BROWSER_CANDIDATES):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture
def served(photos, tmp_path, colour_sam):
    """``(url, session, truths)`` of a live server on a free loopback port."""
    import uvicorn

    from segmentation.annotate.__main__ import LOOPBACK_HOSTS, bind, url_for
    from segmentation.annotate.app import create_app
    from segmentation.annotate.session import AnnotationSession
    from segmentation.embeddings import EmbeddingCache

    folder, truths = photos
    session = AnnotationSession.open(tmp_path / "new_defects", folder, classes=["scratch", "dent"])
    cache = EmbeddingCache(tmp_path / "embeddings", colour_sam, model_name="colour")
    app = create_app(session, colour_sam, cache=cache, model_name="colour", allowed_hosts=LOOPBACK_HOSTS)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield url_for(sock), session, truths
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


@pytest.fixture
def page():
    binary = browser_binary()
    if binary is None:
        pytest.skip("no chromium binary (apt-get install chromium, or set $CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.set_default_timeout(30_000)
        yield page
        browser.close()
    assert errors == [], f"JavaScript errors: {errors}"


def click_image(page, x: float, y: float, **options) -> None:
    point = page.evaluate("([x, y]) => window.annotator.imageToClient(x, y)", [x, y])
    page.mouse.click(point["x"], point["y"], **options)


def wait_body(page, condition: str) -> None:
    page.wait_for_function(f"() => {{ const d = document.body.dataset; return {condition}; }}")


def test_click_accept_and_the_saved_mask_covers_the_defect(served, page, defect_centre, tmp_path):
    url, session, truths = served
    page.goto(url)
    wait_body(page, "d.embedding === 'ready'")
    assert page.inner_text("#image-name").endswith("a.png")

    click_image(page, *defect_centre(truths["a.png"]))
    wait_body(page, "d.preview === '1'")
    assert page.inner_text("#cycle").startswith("mask 2/3")  # SAM's (here: the stand-in's) best
    page.keyboard.press("Tab")
    assert page.inner_text("#cycle").startswith("mask 3/3")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("2")  # class dent
    page.screenshot(path=str(tmp_path / "preview.png"))
    page.keyboard.press("Enter")
    wait_body(page, "d.instances === '1' && d.status === 'in_progress'")

    mask = read_mask(session.category_dir / "ground_truth" / "dent" / "a_mask.png") > 0
    truth = truths["a.png"]
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8
    assert page.locator("#image-list li.current .dot.in_progress").count() == 1

    # Next image by key; a box prompt by dragging; Esc clears it; G marks the image good; Ctrl+Z undoes that.
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('#image-name').textContent.endsWith('b.jpg')")
    wait_body(page, "d.embedding === 'ready'")
    start = page.evaluate("() => window.annotator.imageToClient(40, 65)")
    end = page.evaluate("() => window.annotator.imageToClient(80, 115)")
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(end["x"], end["y"], steps=5)
    page.mouse.up()
    wait_body(page, "d.preview === '1'")
    page.keyboard.press("Escape")
    wait_body(page, "d.preview === '0'")
    page.keyboard.press("g")
    wait_body(page, "d.status === 'good'")
    assert (session.category_dir / "test" / "good" / "b.jpg").is_file()
    page.keyboard.press("Control+z")
    wait_body(page, "d.status === 'unlabelled'")
    assert not (session.category_dir / "test" / "good" / "b.jpg").exists()
    page.keyboard.press("Control+y")
    wait_body(page, "d.status === 'good'")
    page.keyboard.press("Control+z")
    wait_body(page, "d.status === 'unlabelled'")

    # A right click adds a background point: the prompt goes out again with it; nothing is saved.
    click_image(page, *defect_centre(truths["b.jpg"]))
    wait_body(page, "d.preview === '1'")
    predictions = int(page.evaluate("() => document.body.dataset.predictions"))
    click_image(page, 5, 5, button="right")
    page.wait_for_function(f"() => Number(document.body.dataset.predictions) > {predictions}")
    assert session.entry("b.jpg").instances == []

    # Back to the first photo: Delete removes its instance, Ctrl+Z brings it back, D marks it done,
    # N goes to the next photo that is neither done nor good; ] raises the opacity.
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => document.querySelector('#image-name').textContent.endsWith('a.png')")
    wait_body(page, "d.instances === '1'")
    page.keyboard.press("Delete")
    wait_body(page, "d.instances === '0'")
    assert not (session.category_dir / "ground_truth" / "dent" / "a_mask.png").exists()
    page.keyboard.press("Control+z")
    wait_body(page, "d.instances === '1'")
    page.keyboard.press("d")
    wait_body(page, "d.status === 'done'")
    page.keyboard.press("n")
    page.wait_for_function("() => document.querySelector('#image-name').textContent.endsWith('b.jpg')")
    page.keyboard.press("]")
    assert page.eval_on_selector("#opacity", "e => e.value") == "60"


def test_the_page_resumes_on_the_image_the_user_left(served, page):
    url, session, _ = served
    session.set_current("lot_2/c.png")
    page.goto(url)
    wait_body(page, "d.embedding === 'ready'")
    assert page.inner_text("#image-name").endswith("lot_2/c.png")
    assert np.isclose(float(page.eval_on_selector("#opacity", "e => e.value")), 50)
