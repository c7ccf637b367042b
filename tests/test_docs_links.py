"""Every relative link and image of the documentation points at a file of the repository and a heading.

README.md links its pages under docs/, which link back and to each other's sections; a page renamed,
a heading reworded or a file moved leaves a link that GitHub shows as a 404 or a jump to the top of
the page, and nothing else notices. For README.md, docs/*.md, bench/README.md and
bench/experiments/README.md, each ``[text](target)`` and ``![alt](target)`` outside code (fenced and
indented blocks, backtick spans) that names no URL scheme must name a file or folder that exists, and
its ``#anchor`` (on the same page or another ``.md``) a heading of that page as GitHub slugs it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    REPO / "bench" / "README.md",
    REPO / "bench" / "experiments" / "README.md",
]
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text: markup dropped, lowercase, punctuation but ``-`` and ``_`` gone.

    >>> slug("Segmentation: fine-tuning SAM's mask decoder")
    'segmentation-fine-tuning-sams-mask-decoder'
    """
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text stays, its target goes
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def prose(text: str, spans: bool = True) -> str:
    """``text`` with code blocks (and, if ``spans``, backtick spans) blanked out, line breaks kept."""
    lines, fenced, in_code = [], False, False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            lines.append("")
            continue
        after_blank = not lines or not lines[-1].strip() or in_code
        in_code = not fenced and line.startswith("    ") and after_blank and bool(line.strip())
        lines.append("" if fenced or in_code else line)
    joined = "\n".join(lines)
    if not spans:  # a heading's `code` is part of its anchor
        return joined
    return re.sub(r"(`+)(.+?)\1", lambda span: re.sub(r"[^\n]", " ", span.group(0)), joined, flags=re.S)


def anchors(page: Path) -> set[str]:
    """The ``#anchors`` of a Markdown page's headings, duplicates numbered ``-1``, ``-2`` as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(page.read_text(encoding="utf-8"), spans=False).split("\n"):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[tuple[int, str]]:
    """``(line number, target)`` of every inline link, image and reference definition outside code."""
    text = prose(text)
    found = sorted([*LINK.finditer(text), *REFERENCE.finditer(text)], key=lambda match: match.start())
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in found]


def broken_links(page: Path, repo: Path = REPO) -> list[str]:
    """One line per link of ``page`` whose file is not in ``repo`` or whose anchor is no heading of it."""
    wrong = []
    where = page.relative_to(repo).as_posix()
    for number, target in links(page.read_text(encoding="utf-8")):
        if SCHEME.match(target):  # https:, mailto:: not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_relative_to(repo.resolve()) or not file.exists():
            wrong.append(f"{where}:{number}: {target}: no such file in the repository")
        elif anchor and file.suffix != ".md":
            wrong.append(f"{where}:{number}: {target}: an anchor into a file that is no Markdown page")
        elif anchor and anchor not in anchors(file):
            wrong.append(f"{where}:{number}: {target}: no heading of {file.name} has the anchor #{anchor}")
    return wrong


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_every_relative_link_and_image_points_at_a_file_and_heading_that_exist(page: Path) -> None:
    assert page.exists(), f"{page} is gone: update PAGES"
    assert not (wrong := broken_links(page)), "\n".join(wrong)


def test_the_docs_pages_are_linked_from_the_readme() -> None:
    targets = {target.partition("#")[0] for _, target in links((REPO / "README.md").read_text("utf-8"))}
    missing = [
        page.name for page in PAGES if page.parent.name == "docs" and f"docs/{page.name}" not in targets
    ]
    assert not missing, f"README.md links no docs page {missing}"


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Two commands", "two-commands"),
        (
            "Inspecting new photos: `inspection.predict` and `inspection.evaluate`",
            "inspecting-new-photos-inspectionpredict-and-inspectionevaluate",
        ),
        (
            "Defects without labels: PatchCore anomaly detection (`anomaly.*`)",
            "defects-without-labels-patchcore-anomaly-detection-anomaly",
        ),
        (
            "Options (`mvtec2yolo` and `mvtec2coco` take the same)",
            "options-mvtec2yolo-and-mvtec2coco-take-the-same",
        ),
        ("snake_case and [a link](x.md)", "snake_case-and-a-link"),
    ],
)
def test_slug_is_githubs_anchor(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_a_broken_link_anchor_or_image_is_named_and_code_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.png").write_bytes(b"")
    other = "# Other\n\n## Same\n\n## Same\n\n## With `code.span`\n\n```\n# not a heading\n```\n"
    (tmp_path / "docs" / "other.md").write_text(other, encoding="utf-8")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](other.md#same-1) [ok](#page) ![ok](a.png) [web](https://example.com/x.md)\n"
        "[ok](other.md#with-codespan) [not a heading](other.md#not-a-heading)\n"
        "[gone](missing.md) ![gone](docs/a.png)\n"  # the path as README.md would write it, one level up
        "[bad anchor](other.md#same-2) [own](#nowhere)\n"
        "[outside](../../x.md)\n"
        "`[in a span](missing.md)`\n\n"
        "    [in a code block](missing.md)\n\n"
        "```\n[fenced](missing.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page, tmp_path) == [
        "docs/page.md:4: other.md#not-a-heading: no heading of other.md has the anchor #not-a-heading",
        "docs/page.md:5: missing.md: no such file in the repository",
        "docs/page.md:5: docs/a.png: no such file in the repository",
        "docs/page.md:6: other.md#same-2: no heading of other.md has the anchor #same-2",
        "docs/page.md:6: #nowhere: no heading of page.md has the anchor #nowhere",
        "docs/page.md:7: ../../x.md: no such file in the repository",
    ]
