"""common.errors: message helpers."""

from __future__ import annotations

import errno

import pytest

from common.errors import close_match, few, message_line, one_line, write_advice


@pytest.mark.parametrize(
    ("items", "limit", "sep", "expected"),
    [
        pytest.param([], 3, ", ", "", id="none"),
        pytest.param(["a", "b", "c"], 3, ", ", "a, b, c", id="exactly the limit: no 'and 0 more'"),
        pytest.param(["a", "b", "c", "d"], 3, ", ", "a, b, c and 1 more", id="one over"),
        pytest.param(["a", "b", "c", "d"], 2, " ", "a b and 2 more", id="the separator of a command line"),
        pytest.param([1, 2], 8, ", ", "1, 2", id="not strings"),
    ],
)
def test_few_names_the_first_and_counts_the_rest(items: list, limit: int, sep: str, expected: str) -> None:
    assert few(items, limit, sep=sep) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [("scrach", "scratch"), ("epoch", "epochs"), ("dent", None), ("scratch", "scratch"), ("", None)],
)
def test_close_match_names_the_likely_typo_only(word: str, expected: str | None) -> None:
    # one helper for config keys (unknown_key_text) and converters.synthetic's defect types
    assert close_match(word, ["bent", "epochs", "scratch"]) == expected


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "free space on its disk"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), "free space on its disk"),
        (PermissionError(errno.EACCES, "Permission denied"), "make out writable"),
        (OSError(errno.EROFS, "Read-only file system"), "make out writable"),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory"), "a file stands where a folder of that path"),
        (FileExistsError(errno.EEXIST, "File exists"), "a file stands where a folder of that path"),
        (IsADirectoryError(errno.EISDIR, "Is a directory"), "a folder stands where that file should be"),
        (OSError("no errno"), "free space on its disk or make out writable"),  # the two usual causes
    ],
)
def test_write_advice_follows_the_errno(error: OSError, advice: str) -> None:
    assert write_advice(error, "out").startswith(advice)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(OSError("disk\n  full"), "disk full", id="a line break and its indent: one space"),
        pytest.param(
            ValueError("cannot open 'lot  7/a.png':\r\n\tno such file  "),
            "cannot open 'lot  7/a.png': no such file",
            id="a quoted value keeps its two spaces (it read 'lot 7', not the name given)",
        ),
        pytest.param(RuntimeError(" \n "), "RuntimeError", id="blank: the type's name"),
        pytest.param("x" * 400, "x" * 297 + "...", id="cut at the limit"),
    ],
)
def test_one_line_folds_line_breaks_only(error: BaseException | str, expected: str) -> None:
    assert one_line(error) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("no photos in /data/lot 7 ", "no photos in /data/lot 7 ", id="a path's trailing space"),
        pytest.param(
            "cannot read a\u2028b\x0c.png",
            "cannot read a\\u2028b\\x0c.png",
            id="a path's other breaks: escaped",
        ),
        pytest.param(
            "no folder /data/mvtec\r", "no folder /data/mvtec\\r", id="a path's trailing CR: escaped"
        ),
        pytest.param("cannot read a\r\r\nb", "cannot read a\\r b", id="a CR before a CRLF: escaped"),
        pytest.param(
            "rejects x: error\n  images\n\n   not found", "rejects x: error images not found", id="wrap"
        ),
        pytest.param("\r\n  rejects x:\nlot \r\n", "rejects x: lot ", id="line feeds at the ends go"),
        pytest.param("\n  rejects x:\rlot\n\r", "rejects x:\\rlot \\r", id="a lone CR is a value's"),
        pytest.param("no class 'lot  7'", "no class 'lot  7'", id="a quoted value's spaces"),
    ],
)
def test_message_line_folds_line_feeds_and_escapes_other_line_breaks(text: str, expected: str) -> None:
    assert message_line(text) == expected
