"""The command lines of README.md and docs/*.md name only options and config keys their command takes.

A flag renamed or dropped in a parser leaves the README or a page of docs/ telling users to type what
the command refuses, and nothing else notices. Every command line of a page (a code block's line, its ``\\``
continuations joined, or a backtick span) that names a command (``python -m converters.mvtec2yolo``,
``inspection.evaluate``, the installed ``mvtec2yolo``) is read up to the next command it names: each
``--flag`` there must be an option of that command's ``--help``, and each ``key=value`` given to
``segmentation.train``, ``detection.train``, ``anomaly.train`` or ``segmentation.evaluate --set`` a key
of that command's config. The other way round, every option a command's ``--help`` prints must be named
on a page that names the command (``UNDOCUMENTED`` lists the few left out on purpose, each with its
reason), so an option added to a parser without a word on README.md or docs/ fails. Likewise every config
key of ``segmentation.train``, ``detection.train`` and ``anomaly.train`` (its schema's, and those its shipped
``configs/`` files set) must be named on the command's page (``CONFIG_PAGES``; ``UNNAMED_KEYS`` lists the
exceptions, each with its reason): a key users cannot find is as bad as an undocumented flag. What a page
says an option or key means is not checked.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
#: the fewest options a page must check: fewer means its command lines were not found (read wrong)
MIN_CHECKED = {
    "README.md": 20,
    "docs/annotate.md": 20,
    "docs/anomaly.md": 20,
    "docs/benchmarks.md": 15,
    "docs/converters.md": 30,
    "docs/detection.md": 15,
    "docs/inspection.md": 20,
    "docs/segmentation.md": 20,
}
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: options of a command's --help that no page needs to name: {module or "*" for all: {option: why}}
UNDOCUMENTED = {
    "*": {"--help": "argparse's own, printed by every command"},
}
#: the page that must name each config key of a command that takes ``key=value`` (the schema's and its shipped
#: configs' keys; ultralytics' own train arguments are ultralytics' to document)
CONFIG_PAGES = {
    "segmentation.train": "docs/segmentation.md",
    "detection.train": "docs/detection.md",
    "anomaly.train": "docs/anomaly.md",
}
#: config keys that their page need not name: {module: {key: why}}
UNNAMED_KEYS: dict[str, dict[str, str]] = {}
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")
KEY = re.compile(r"(?<![\w./=-])([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)=(?!=)")


def entry_points() -> dict[str, str]:
    """``pyproject.toml``'s console scripts: ``{"mvtec2yolo": "converters.mvtec2yolo:main", ...}``."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")  # tomllib is Python 3.11+
    section = text.split("[project.scripts]\n", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+) = "([\w.]+:\w+)"$', section, re.M))


def module_of(target: str) -> str:
    """The ``python -m`` name of a console script's target (``segmentation.annotate.__main__:main``)."""
    return target.split(":")[0].removesuffix(".__main__")


def help_options(target: str) -> set[str]:
    """The ``--flags`` that the command's ``--help`` prints."""
    module, function = target.split(":")
    main = getattr(importlib.import_module(module), function)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(["--help"])
    options = set(FLAG.findall(out.getvalue()))
    assert "--help" in options, f"{target} --help printed no options: {out.getvalue()[:300]!r}"
    return options


def flat_keys(schema: dict, prefix: str = "") -> set[str]:
    """``{"epochs", "loss", "loss.resolution", ...}``: a config schema's keys, sections dotted."""
    keys = set()
    for key, value in schema.items():
        keys.add(prefix + key)
        if isinstance(value, dict):
            keys |= flat_keys(value, f"{prefix}{key}.")
    return keys


def config_keys() -> dict[str, set[str]]:
    """The ``key=value`` keys of the commands that take them."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    from anomaly.config import SCHEMA as ANOMALY
    from detection.train_config import OWN_DEFAULTS
    from segmentation.train_config import SCHEMA as SAM

    sam = flat_keys(SAM)
    return {
        "segmentation.train": sam,
        "segmentation.evaluate": sam,  # --set, for the --folds rounds
        "detection.train": set(OWN_DEFAULTS) | set(DEFAULT_CFG_DICT),
        "anomaly.train": flat_keys(ANOMALY),
    }


def shipped_keys(pattern: str, *, leave_out: tuple[str, ...] = ()) -> set[str]:
    """The keys (sections dotted) that the YAML files ``configs/<pattern>`` set, less ``leave_out``."""
    keys = set()
    for path in sorted((REPO / "configs").glob(pattern)):
        if path.name not in leave_out:
            keys |= flat_keys(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return keys


def page_config_keys() -> dict[str, set[str]]:
    """The config keys each command's page (:data:`CONFIG_PAGES`) must name."""
    from anomaly.config import SCHEMA as ANOMALY
    from detection.train_config import OWN_DEFAULTS
    from segmentation.train_config import SCHEMA as SAM

    return {
        "segmentation.train": flat_keys(SAM) | shipped_keys("segmentation/*.yaml"),
        # augment.yaml is the augmentation policy, not a run config
        "detection.train": set(OWN_DEFAULTS) | shipped_keys("detection/*.yaml", leave_out=("augment.yaml",)),
        "anomaly.train": flat_keys(ANOMALY) | shipped_keys("anomaly/*.yaml"),
    }


BRACES = re.compile(r"([\w.]+)\.\{([^}]*)\}")


def unnamed_keys(keys: set[str], text: str, allowed: Mapping[str, str]) -> list[str]:
    """The keys (less ``allowed``) that no code line or backtick span of ``text`` names as a key: a word of
    its own, alone or before ``=``, ``: `` or ``.`` (a section named by its keys); ``loss.{a, b}`` names
    ``loss.a`` and ``loss.b``. A word inside a message (``(seed 0)``) or a flag (``--seed``) is no key."""
    texts = [
        BRACES.sub(lambda m: " ".join(f"{m[1]}.{k.strip()}" for k in m[2].split(",")), found)
        for _, found in command_texts(text)
    ]
    return [
        key
        for key in sorted(keys - set(allowed))
        if not any(re.search(rf"(?<!\S){re.escape(key)}(?=$|\s|=|:\s|:$|\.)", found) for found in texts)
    ]


def command_texts(text: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of every code block line (continuations joined) and backtick span."""
    found, prose = [], []
    lines = text.splitlines()
    fenced = False
    number = 0
    while number < len(lines):
        start, line = number + 1, lines[number]
        fenced ^= line.startswith("```")
        if line.startswith("    ") and not fenced:
            while line.endswith("\\") and number + 1 < len(lines):
                number += 1
                line = line[:-1] + " " + lines[number].strip()
                prose.append("")
            found.append((start, line.split("  #")[0]))
            line = ""
        prose.append("" if fenced or line.startswith("```") else line)
        number += 1
    joined = "\n".join(prose)  # a span may run on over a line break
    for span in re.finditer(r"`([^`]+)`", joined):
        found.append((joined.count("\n", 0, span.start()) + 1, " ".join(span.group(1).split())))
    return found


def commands_in(text: str, names: dict[str, str]) -> list[tuple[str, str]]:
    """``(module, what follows it up to the next command named)`` for each command named in ``text``."""
    alternatives = "|".join(map(re.escape, sorted(names, key=len, reverse=True)))  # longest first
    pattern = re.compile(rf"(?<![\w./-])({alternatives})\b")
    pieces = pattern.split(text)
    return [(names[pieces[i]], pieces[i + 1]) for i in range(1, len(pieces) - 1, 2)]


@cache
def commands_known() -> tuple[dict[str, str], dict[str, set[str]], dict[str, set[str]]]:
    """Command names -> modules, each module's ``--help`` options and the config keys, read once."""
    scripts = entry_points()
    names = {name: module_of(target) for name, target in scripts.items()}
    names |= {module: module for module in names.values()}
    options = {module_of(target): help_options(target) for target in scripts.values()}
    return names, options, config_keys()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_readme_commands_name_only_options_and_keys_they_take(page: Path) -> None:
    names, options, keys = commands_known()
    where = page.relative_to(REPO).as_posix()
    wrong, checked = [], 0
    for number, text in command_texts(page.read_text(encoding="utf-8")):
        for module, rest in commands_in(text, names):
            for flag in FLAG.findall(rest):
                checked += 1
                if flag not in options[module]:
                    wrong.append(f"{where}:{number}: {module} has no {flag}")
            if module in keys:
                for key in KEY.findall(rest):
                    checked += 1
                    if key != "key" and key not in keys[module]:  # `--set [KEY=VALUE ...]`, written out
                        wrong.append(f"{where}:{number}: {module} has no config key {key}")
    assert checked >= MIN_CHECKED.get(where, 0), (
        f"only {checked} options found next to commands: is {where} read right?"
    )
    assert not wrong, "\n".join(wrong)


def undocumented(
    options: dict[str, set[str]], names: dict[str, str], texts: dict[str, str], allowed: dict
) -> list[str]:
    """``"module --flag"`` for each option named on no page (of ``texts``) that names its module."""
    missing = []
    for module, flags in sorted(options.items()):
        spelled = sorted((name for name, target in names.items() if target == module), key=len, reverse=True)
        command = re.compile(rf"(?<![\w./-])({'|'.join(map(re.escape, spelled))})\b")
        pages = [text for text in texts.values() if command.search(text)]
        left_out = set(allowed.get("*", {})) | set(allowed.get(module, {}))
        for flag in sorted(flags - left_out):
            named = re.compile(rf"(?<![\w-]){re.escape(flag)}(?![\w-])")
            if not any(named.search(text) for text in pages):
                missing.append(f"{module} {flag}")
    return missing


def test_every_option_of_every_command_is_named_on_a_page_naming_the_command() -> None:
    names, options, _ = commands_known()
    texts = {page.relative_to(REPO).as_posix(): page.read_text(encoding="utf-8") for page in PAGES}
    missing = undocumented(options, names, texts, UNDOCUMENTED)
    assert not missing, (
        "options that --help prints but no page of README.md or docs/ naming the command names (document "
        "each where the command's options are described, or list it in UNDOCUMENTED with a reason):\n"
        + "\n".join(missing)
    )


def test_undocumented_lists_only_options_the_commands_take() -> None:
    _, options, _ = commands_known()
    stale = [
        f"{module} {flag}"
        for module, flags in UNDOCUMENTED.items()
        for flag in flags
        if not (module == "*" and all(flag in taken for taken in options.values()))
        and flag not in options.get(module, set())
    ]
    assert not stale, f"UNDOCUMENTED names options no command takes: {stale}"


def test_undocumented_names_an_option_on_no_page_or_on_a_page_without_its_command() -> None:
    names = {
        "mvtec2yolo": "converters.mvtec2yolo",
        "converters.mvtec2yolo": "converters.mvtec2yolo",
        "inspection.predict": "inspection.predict",
    }
    options = {
        "converters.mvtec2yolo": {"--help", "--root", "--new"},
        "inspection.predict": {"--help", "--source", "--new"},
    }
    texts = {
        "README.md": "    mvtec2yolo --root datasets/x\n",
        "docs/other.md": "`--new` and `--source` (of no command this page names)\n",
    }
    assert undocumented(options, names, texts, UNDOCUMENTED) == [
        "converters.mvtec2yolo --new",
        "inspection.predict --new",
        "inspection.predict --source",
    ]
    texts["docs/inspection.md"] = "`inspection.predict --source DIR`\n"
    allowed = {**UNDOCUMENTED, "inspection.predict": {"--new": "internal"}}
    assert undocumented(options, names, texts, allowed) == ["converters.mvtec2yolo --new"]


@pytest.mark.parametrize("module", sorted(CONFIG_PAGES))
def test_every_config_key_is_named_on_its_page(module: str) -> None:
    page = CONFIG_PAGES[module]
    keys = page_config_keys()[module]
    missing = unnamed_keys(keys, (REPO / page).read_text(encoding="utf-8"), UNNAMED_KEYS.get(module, {}))
    assert not missing, (
        f"config keys of {module} that {page} names nowhere (name each in a backtick span where the "
        f"command's keys are described, or list it in UNNAMED_KEYS with a reason): {missing}"
    )


def test_unnamed_keys_lists_only_keys_the_commands_take() -> None:
    keys = page_config_keys()
    stale = [f"{module} {key}" for module, allowed in UNNAMED_KEYS.items() for key in allowed]
    stale = [entry for entry in stale if entry.split()[1] not in keys.get(entry.split()[0], set())]
    assert not stale, f"UNNAMED_KEYS names keys no command takes: {stale}"


def test_unnamed_keys_reads_keys_not_words() -> None:
    keys = {"seed", "loss", "loss.focal_weight", "loss.dice_weight", "batch_size", "epochs", "lr"}
    text = (
        "The run's seed, `(seed 0)`, `--seed 1` and `config key 'lr'` name no key; `loss.{focal_weight,\n"
        "dice_weight}` names both and the section.\n\n    python -m anomaly.train batch_size=2\n"
    )
    assert unnamed_keys(keys, text, {}) == ["epochs", "lr", "seed"]
    assert unnamed_keys(keys, text + "`epochs: 10`, `lr`\n", {"seed": "internal"}) == []
