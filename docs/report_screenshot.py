"""Takes ``docs/inspection_report.png``: the top of an ``inspection.evaluate`` report page.

Opens the report (one self-contained HTML file, so no server is needed) in Debian's chromium
headless with Playwright and saves the first ``--height`` pixels of the page: the summary,
the per-class table and the figures.

Usage::

    python docs/report_screenshot.py --report runs/demo/inspect/test/report.html \\
        --out docs/inspection_report.png [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=Path("runs/demo/inspect/test/report.html"))
    parser.add_argument("--out", type=Path, default=Path("docs/inspection_report.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1150, help="viewport width, px")
    parser.add_argument("--height", type=int, default=1560, help="height of the saved top of the page, px")
    args = parser.parse_args()
    if not args.report.is_file():
        print(f"error: no report at {args.report} (run make demo first)", file=sys.stderr)
        return 2
    if shutil.which(args.chromium) is None:
        print(f"error: no chromium at {args.chromium} (--chromium PATH)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.report.resolve().as_uri())
        page.screenshot(path=str(args.out), clip={"x": 0, "y": 0, "width": args.width, "height": args.height})
        browser.close()
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
