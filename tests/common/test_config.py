"""Tests for common.config: YAML defaults, key=value overrides, and the checks of a Schema."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from common.config import (
    PROJECT_ROOT,
    Option,
    Schema,
    UniqueKeyLoader,
    load_config,
    override_keys,
    parse_overrides,
    project_path,
    read_yaml,
    save_config,
    with_source,
    yaml_text,
)
from common.errors import UserError

#: A small entry point's declaration: one key of every kind, a section, and nullable keys.
SCHEMA = Schema(
    data=Option(None, str, "data set folder", nullable=True),
    model=Option("small", str, "model name", choices=("small", "large")),
    device=Option("auto", str, "where to run", pattern=r"auto|cpu|cuda(:[0-9]+)?"),
    epochs=Option(20, int, "passes", low=1),
    lr=Option(1.0e-4, float, "learning rate", low=0),
    ratio=Option(0.5, float, "a fraction", low=0, high=1),
    temperature=Option(1.0, float, "strictly positive", low=0, low_open=True),
    max_steps=Option(None, int, "null: off", low=1, nullable=True),
    verbose=Option(True, bool, "progress bars"),
    tags=Option([], list, "labels"),
    loss=Schema(
        weight=Option(20.0, float, "focal weight", low=0),
        kind=Option("focal", str, "loss", choices=("focal", "bce")),
    ),
)


def test_overrides_nest_and_parse_as_yaml():
    assert parse_overrides(["epochs=5", "loss.weight=1.0", "data=null", "lr=1e-3", "data=runs/x"]) == {
        "epochs": 5,
        "loss": {"weight": 1.0},
        "data": "runs/x",
        "lr": "1e-3",  # as PyYAML reads a file's: load_config reads it as a number for a number key
    }
    assert load_config(SCHEMA, None, ["lr=1e-3"])["lr"] == 0.001


def test_file_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nloss:\n  kind: bce\nlr: 1e-3\n")
    config = load_config(SCHEMA, path, ["epochs=4", "loss.weight=0"])
    assert config["epochs"] == 4 and config["loss"] == {"weight": 0, "kind": "bce"}
    assert config["lr"] == 0.001, "YAML 1.1 reads 1e-3 as a string; the declared number wins"
    assert config["ratio"] == 0.5
    assert SCHEMA.defaults()["epochs"] == 20, "defaults must not be mutated"


def test_defaults_are_fresh_copies():
    first = SCHEMA.defaults()
    first["tags"].append("x")
    assert SCHEMA.defaults()["tags"] == []


def test_a_plain_dict_of_defaults_merges_without_checks():
    assert load_config({"epochs": 1}, None, ["epochs=true"]) == {"epochs": True}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epochs=abc", "config key 'epochs' needs an integer, got 'abc'"),  # was 'needs a number'
        ("lr=fast", "config key 'lr' needs a number, got 'fast'"),
    ],
)
def test_a_word_for_a_number_without_a_schema_says_what_its_default_is(override, message):
    with pytest.raises(UserError) as error:
        load_config({"epochs": 20, "lr": 1.0e-4}, None, [override])
    assert str(error.value) == f"override '{override}': {message}"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["epoch=3"], "unknown config key 'epoch'"),
        (["loss.wieght=1"], "unknown config key 'loss.wieght'"),
        (["loss=3"], "'loss' needs a mapping"),
        (["lr=fast"], "'lr' needs a number >= 0, got 'fast'"),
        (["epochs=abc"], "'epochs' needs an integer >= 1, got 'abc'"),  # was 'needs a number'
        (["loss.weight=heavy"], "'loss.weight' needs a number >= 0, got 'heavy'"),
        (["epochs"], "not key=value"),
        # a YAML boolean is not a number: lr=true must not train at lr 1.0
        (["lr=true"], "'lr' needs a number >= 0, got True"),
        (["lr=-1"], "'lr' needs a number >= 0, got -1"),
        (["lr=.nan"], "'lr' needs a finite number"),
        (["lr=nan"], "'lr' needs a finite number"),
        (["lr=.inf"], "'lr' needs a finite number"),
        (["lr=[1]"], "'lr' needs a number >= 0, got [1]"),
        (["lr=null"], "'lr' needs a number >= 0, got null"),
        (["epochs=0"], "'epochs' needs an integer >= 1, got 0"),
        (["epochs=1.5"], "'epochs' needs an integer >= 1, got 1.5"),
        (["epochs=-3"], "'epochs' needs an integer >= 1, got -3"),
        (["max_steps=abc"], "'max_steps' needs an integer >= 1 or null, got 'abc'"),
        (["ratio=2"], "'ratio' needs a number in [0, 1], got 2"),
        (["temperature=0"], "'temperature' needs a number > 0, got 0"),
        (["verbose=1"], "'verbose' needs true or false, got 1"),
        (["model=medium"], "'model' must be one of small, large, got 'medium'"),
        (["device=gpu"], "'device' needs a string matching 'auto|cpu|cuda(:[0-9]+)?', got 'gpu'"),
        (["device=cuda:x"], "'device' needs a string matching"),
        (["loss.weight=-1"], "'loss.weight' needs a number >= 0, got -1"),
        (["loss.kind=dice"], "'loss.kind' must be one of focal, bce"),
        (["tags=3"], "'tags' needs a list, got 3"),
    ],
)
def test_bad_values_are_named(overrides, message):
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, None, overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["lr=0", "epochs=1", "ratio=1", "max_steps=null", "max_steps=3"], {"lr": 0.0, "max_steps": 3}),
        (["device=cpu", "device=cuda", "device=cuda:1"], {"device": "cuda:1"}),  # the last one wins
        (["data=null", "lr=1", "temperature=1e-9", "tags=[a, b]"], {"temperature": 1e-9, "tags": ["a", "b"]}),
    ],
)
def test_good_values_pass(overrides, expected):
    config = load_config(SCHEMA, None, overrides)
    assert {key: config[key] for key in expected} == expected


def test_bad_values_in_a_file_are_named_too(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("loss:\n  weight: -2\n")
    with pytest.raises(UserError, match="'loss.weight' needs a number >= 0, got -2"):
        load_config(SCHEMA, path)


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        (["epoch=3"], "(did you mean 'epochs'?; known here: "),  # a typo: the near key is named first
        (["loss.wieght=1"], "(did you mean 'loss.weight'?; known here: "),
        (["path=3"], "unknown config key 'path' (known here: "),  # nothing near: no guess
    ],
)
def test_an_unknown_key_names_the_nearest_known_one(overrides, hint):
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, None, overrides)
    assert hint in str(error.value)


def test_the_unknown_key_text_names_the_known_keys_sorted_and_keeps_a_deep_prefix():
    from common.config import unknown_key_text

    with pytest.raises(UserError) as error:
        load_config(SCHEMA, None, ["loss.wieght=1"])
    assert str(error.value) == (
        "override 'loss.wieght=1': unknown config key 'loss.wieght' (did you mean 'loss.weight'?; "
        "known here: kind, weight)"
    )
    # the last part is matched, the rest kept: a section inside a section
    assert unknown_key_text("a.b.epoch", {"epochs": 1, "lr": 0}).startswith(
        "unknown config key 'a.b.epoch' (did you mean 'a.b.epochs'?; known here: epochs, lr)"
    )


def test_an_unknown_key_in_a_file_names_the_file(tmp_path):
    # a data set's data.yaml passed as --config: "unknown config key 'path'" alone did not say which file
    path = tmp_path / "data.yaml"
    path.write_text("path: /data\nnames: {0: crack}\n")
    with pytest.raises(UserError, match=f"^config file {re.escape(str(path))}: unknown config key 'path' "):
        load_config(SCHEMA, path)


@pytest.mark.parametrize(
    ("text", "message"),
    [("epochs: [1\n", "cannot read config {path}: "), ("- 1\n", "config {path} must be a YAML mapping")],
    ids=["bad-yaml", "not-a-mapping"],
)
def test_a_config_file_error_that_names_the_file_names_it_once(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, path)
    assert str(error.value).startswith(message.format(path=path))  # no "config file run.yaml: " before it


@pytest.mark.parametrize(
    ("text", "hint", "value"),
    [
        ("epochs: 3\ndevice: cuda:\n", "device: 'cuda:'", "cuda:"),  # cuda:0 with the 0 left off
        ("name: run: 1  # the first\n", "name: 'run: 1'", "run: 1"),  # a comment is no part of the value
        ("loss:\n  - kind: it's: bce\n", "kind: 'it''s: bce'", "it's: bce"),  # in a list, in a section
        ('note: say "a": b\n', "note: 'say \"a\": b'", 'say "a": b'),
        # double quotes read \n as a line break: the hint "runs\new: 1" loaded as another path
        ("out: runs\\new: 1\n", "out: 'runs\\new: 1'", "runs\\new: 1"),
    ],
)
def test_a_value_holding_a_colon_is_told_to_be_quoted(tmp_path, text, hint, value):
    # PyYAML's 'mapping values are not allowed here in "<unicode string>", line 2, column 13' alone
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        read_yaml(path)
    message = str(error.value)
    assert message.startswith(f"cannot read config {path}: mapping values are not allowed here, line ")
    assert message.endswith(f" (a value ending in ':' or holding ': ' must be quoted: {hint})")
    assert "<unicode string>" not in message and "\n" not in message
    key = hint.partition(": ")[0]
    assert yaml.safe_load(hint) == {key: value}  # the hint's line reads back the text typed


@pytest.mark.parametrize("text", ["a: [1\n", "a: b\nc\n: d\n", 'a: "x": y\n'])
def test_other_yaml_errors_get_no_quoting_hint(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        read_yaml(path)
    assert "must be quoted" not in str(error.value) and "<unicode string>" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("epochs: 3\nlr: 0.1\nepochs: 5\n", "epochs", (1, 3)),  # top level: 5 won, silently
        ("loss:\n  weight: 1\n  kind: bce\n  weight: 2\n", "weight", (2, 4)),  # inside a section
        ("tags:\n  - {a: 1, a: 2}\n", "a", (2, 2)),  # in a flow mapping inside a list
    ],
    ids=["top-level", "nested", "flow-in-list"],
)
def test_a_key_given_twice_in_a_file_is_refused_naming_the_file_key_and_lines(tmp_path, text, key, lines):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, path)
    first, second = lines
    assert str(error.value) == (
        f"config {path}: key '{key}' is given twice, on lines {first} and {second}: keep one"
    )


def test_read_yaml_refuses_a_class_id_given_twice_under_names(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("names:\n  0: crack\n  1: scratch\n  0: hole\n")  # 'crack' was lost
    with pytest.raises(
        UserError, match=f"^data file {re.escape(str(path))}: key '0' is given twice, on lines 2"
    ):
        read_yaml(path, what="data file")


def test_keys_a_merge_brings_in_may_be_overridden(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("base: &base\n  weight: 1\n  kind: bce\nloss:\n  <<: *base\n  weight: 2\n")
    assert read_yaml(path) == {"base": {"weight": 1, "kind": "bce"}, "loss": {"weight": 2, "kind": "bce"}}


@pytest.mark.parametrize(
    "text",
    [
        "a: &a {x: 1, y: 1}\nb: &b\n  <<: *a\n  x: 2\nc:\n  <<: *b\n  z: 3\n",  # b, flattened, merged again
        "a: &a {x: 1}\nb: &b {y: 1}\nc:\n  <<: [*a, *b]\n  x: 2\n",  # a list of merges
    ],
    ids=["chained", "list"],
)
def test_merges_read_as_pyyaml_reads_them(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert read_yaml(path) == yaml.safe_load(text)


def test_a_key_spelt_two_ways_is_one_key_but_a_quoted_number_is_another(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("names:\n  1: crack\n  1.0: hole\n")  # both the number 1: 'crack' was lost
    with pytest.raises(UserError, match="key '1.0' is given twice, on lines 2 and 3"):
        read_yaml(path, what="data file")
    path.write_text("names:\n  0: crack\n  '0': hole\n")  # the number 0 and the text '0'
    assert read_yaml(path, what="data file") == {"names": {0: "crack", "0": "hole"}}


def test_a_list_as_a_key_is_one_line_not_a_traceback(tmp_path):
    # PyYAML refuses it (unhashable); the duplicate check must not trip over it first with a TypeError
    path = tmp_path / "run.yaml"
    path.write_text("loss:\n  ? [a, b]\n  : 1\n")
    with pytest.raises(
        UserError, match=f"^cannot read config {re.escape(str(path))}: .*found unhashable key"
    ):
        read_yaml(path)


def test_check_names_missing_and_unknown_keys():
    config = SCHEMA.defaults()
    del config["loss"]
    with pytest.raises(UserError, match=r"'loss' needs a mapping of its keys \(kind, weight\), got null$"):
        SCHEMA.check(config)
    with pytest.raises(UserError, match="unknown config key 'loss.extra'"):
        SCHEMA.check({**SCHEMA.defaults(), "loss": {"weight": 1.0, "kind": "bce", "extra": 1}})
    with pytest.raises(
        UserError, match=r"unknown config key 'epoch' \(did you mean 'epochs'\?; known here: "
    ):
        SCHEMA.check({**SCHEMA.defaults(), "epoch": 3})  # a config checked without a merge names a typo too


def test_describe_prints_integer_bounds_in_full():
    assert Option(0, int, low=0, high=2**31 - 1).describe() == "an integer in [0, 2147483647]"
    assert Option(0.1, float, low=0.0, high=1.0).describe() == "a number in [0, 1]"
    assert Option(1e-4, float, low=1e-8, high=1.0, low_open=True).describe() == "a number > 1e-08 and <= 1"
    assert Option(None, (str, list), nullable=True).describe() == "a string or a list or null"


@pytest.mark.parametrize(
    ("name", "reason"), [("configs", "Is a directory"), ("missing.yaml", "No such file")]
)
def test_a_config_that_cannot_be_opened_is_one_line_naming_it_once(tmp_path, name, reason):
    (tmp_path / "configs").mkdir()
    path = tmp_path / name
    with pytest.raises(UserError) as error:
        read_yaml(path)
    # it read "cannot read config <path>: [Errno 21] Is a directory: '<path>'"
    assert str(error.value).startswith(f"cannot read config {path}: {reason}") and "Errno" not in str(
        error.value
    )
    with pytest.raises(UserError, match=f"^cannot read config .*: {reason}"):
        load_config(SCHEMA, path)


def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="cannot read config"):
        load_config(SCHEMA, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="must be a YAML mapping"):
        load_config(SCHEMA, tmp_path / "list.yaml")


@pytest.mark.parametrize(
    ("text", "held"),
    [
        ("- epochs: 3\n", "a list"),
        ("epochs 3\n", "the text 'epochs 3'"),
        ("3\n", "the number 3"),
        ("true\n", "the value True"),
        ("false\n", "the value False"),
        ("no\n", "the value False"),
        ("0\n", "the number 0"),
        ("[]\n", "a list"),
        ("''\n", "the text ''"),
    ],
    ids=["list", "text", "number", "bool", "false", "no", "zero", "empty-list", "empty-text"],
)
def test_a_config_that_is_no_mapping_says_what_it_holds_and_how_keys_are_written(tmp_path, text, held):
    # "- epochs: 3" (a list item) or "epochs 3" (no colon) was only "must be a YAML mapping"
    path = tmp_path / "run.yaml"
    path.write_text(text)
    message = f"config {path} must be a YAML mapping (key: value lines), not {held}"
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        load_config(SCHEMA, path)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("data=no", "got False (YAML reads no, off and false as False: quote the word to mean text)"),
        ("data=on", "got True (YAML reads yes, on and true as True: quote the word to mean text)"),
        ("data=2024", "got 2024 (quote it to mean text)"),
        ("data=[a]", "got ['a']"),
    ],
    ids=["no", "on", "number", "list"],
)
def test_a_word_yaml_reads_as_no_text_says_to_quote_it(item, message):
    # name=no was "needs a string or null, got False": the word typed was not named, nor how to keep it
    with pytest.raises(
        UserError, match=f"^override '{re.escape(item)}': .*{re.escape(message.removesuffix(')'))}"
    ):
        load_config(SCHEMA, None, [item])
    assert load_config(SCHEMA, None, ["data='no'"])["data"] == "no"


@pytest.mark.parametrize(
    ("text", "got"), [("loss: null\n", "null"), ("loss: 3\n", "3"), ("loss: [kind]\n", "['kind']")]
)
def test_a_section_given_a_value_names_its_keys_and_yaml_null(tmp_path, text, got):
    # "loss: null" said "needs a mapping, got None": not YAML's word, nor the keys that go under loss
    path = tmp_path / "run.yaml"
    path.write_text(text)
    message = f"config file {path}: config key 'loss' needs a mapping of its keys (kind, weight), got {got}"
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        load_config(SCHEMA, path)


def test_a_config_that_is_not_utf8_says_to_save_it_as_utf8(tmp_path):
    # a Latin-1 file (an editor's default) named only the codec's byte: not what to do about it
    path = tmp_path / "run.yaml"
    path.write_bytes("data: /lots/caf\u00e9\n".encode("latin-1"))
    with pytest.raises(
        UserError, match=r"^cannot read config .*run\.yaml: 'utf-8' codec .*\(not UTF-8 text: save it"
    ):
        load_config(SCHEMA, path)


def test_saved_config_round_trips(tmp_path):
    config = load_config(SCHEMA, None, ["epochs=3", "loss.kind=bce", "tags=[a]"])
    save_config({**config, "data": Path("runs/x")}, tmp_path / "args.yaml")
    assert load_config(SCHEMA, tmp_path / "args.yaml") == {**config, "data": "runs/x"}
    assert list(yaml.safe_load((tmp_path / "args.yaml").read_text())) == list(SCHEMA), "key order kept"


def test_anchors_aliases_and_merges_read_as_yaml_says_and_the_saved_config_reads_back_alike(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "data: &d runs/x\nepochs: &n 3\nmax_steps: *n\ntags: &t [*d, b]\n"
        "loss:\n  <<: {weight: 2, kind: focal}\n  kind: bce\n"
    )
    config = load_config(SCHEMA, path)
    assert (config["max_steps"], config["tags"], config["loss"]) == (
        3,
        ["runs/x", "b"],
        {"weight": 2, "kind": "bce"},
    )
    save_config(config, tmp_path / "args.yaml")
    saved = (tmp_path / "args.yaml").read_text()
    assert "&" not in saved and "*" not in saved and "<<" not in saved, "every value written out"
    assert load_config(SCHEMA, tmp_path / "args.yaml") == config


@pytest.mark.parametrize("digits", [400, 5000])
def test_an_integer_over_any_float_is_one_line_in_a_file_and_an_override(tmp_path, digits):
    # 400 digits stopped with an OverflowError in the key's check (math.isnan), 5000 with a ValueError
    # over Python's 4300 digits for int()
    number = "9" * digits
    problem = f"'999999999999...' ({digits} characters) reads as a number larger than any a config takes"
    path = tmp_path / "run.yaml"
    path.write_text(f"epochs: {number}\n")
    with pytest.raises(UserError, match=f"^cannot read config {re.escape(str(path))}: {re.escape(problem)}"):
        load_config(SCHEMA, path)
    for key in ("epochs", "lr", "data"):
        with pytest.raises(UserError, match=f"^override '{key}={number}': {re.escape(problem)}"):
            load_config(SCHEMA, None, [f"{key}={number}"])
    assert load_config(SCHEMA, None, [f"data='{number}'"])["data"] == number


def test_a_key_that_takes_a_number_refuses_an_integer_over_any_float() -> None:
    with pytest.raises(UserError, match="^config key 'lr' needs a finite number, got an integer over 1e308$"):
        SCHEMA["lr"].check("lr", 10**400)


@pytest.mark.parametrize("text", ["loss:\n\tweight: 2\n", "epochs:\t3\n", "data: a\tb\n"])
def test_a_tab_where_yaml_takes_spaces_says_to_write_spaces(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(
        UserError, match=r"cannot start any token.*\(a tab: YAML indents and separates with spaces"
    ):
        load_config(SCHEMA, path)
    path.write_text(text.replace("\t", "  ") if "data" not in text else "data: 'a\tb'\n")
    load_config(SCHEMA, path)


@pytest.mark.parametrize(
    "text",
    [
        "tags: &a [*a]\n",
        "tags: &a [[*a]]\n",
        "loss: &a {weight: *a}\n",
        "loss: &a\n  kind: bce\n  x:\n    <<: *a\n",
    ],
    ids=["list", "nested list", "mapping", "merge"],
)
def test_an_alias_inside_the_value_its_anchor_names_is_refused(tmp_path, text):
    # tags: &a [*a] was a list holding itself: load_config took it, save_config stopped with a
    # RecursionError traceback; loss: &a {weight: *a} stopped with one as it was read
    path = tmp_path / "run.yaml"
    path.write_text(text)
    problem = "an alias stands inside the value its anchor names, which YAML reads as endless"
    with pytest.raises(UserError, match=f"^cannot read config {re.escape(str(path))}: {problem}, line 1"):
        load_config(SCHEMA, path)
    with pytest.raises(UserError, match=f"^override 'tags=&a \\[\\*a\\]': {problem}$"):
        load_config(SCHEMA, None, ["tags=&a [*a]"])
    path.write_text("data: &d x\ntags: [*d, *d, [*d]]\n")  # an alias of a value written before: no loop
    assert load_config(SCHEMA, path)["tags"] == ["x", "x", ["x"]]


def _nested_aliases(levels: int, kind: str = "list") -> str:
    """A config whose ``tags`` (or ``loss``) holds ``levels`` values, each holding ten aliases of the one
    before: a "billion laughs" of 10 ** levels values in a few lines."""
    if kind == "list":
        lines = ["  - &a0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"  - &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
        return "tags:\n" + "\n".join(lines) + "\n"
    lines = ["  a0: &a0 {" + ", ".join(f"k{j}: x" for j in range(10)) + "}"]
    lines += [
        f"  a{i}: &a{i} {{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(10)) + "}" for i in range(1, levels)
    ]
    return "loss:\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize(("levels", "kind"), [(6, "list"), (9, "list"), (30, "list"), (6, "mapping")])
def test_nested_aliases_that_expand_past_any_config_are_refused_in_one_line(tmp_path, levels, kind):
    # tags of six levels (a million values from six lines) loaded as shared lists, and save_config wrote
    # each out in full: seconds for 10 ** 5, never done for a billion; a plain mapping's were walked
    # node by node, unmemoised, as the file was read
    path = tmp_path / "run.yaml"
    path.write_text(_nested_aliases(levels, kind))
    problem = (
        "its aliases expand it to over 100000 more values than are written (aliases nested "
        "in aliases): write the values out, or alias fewer times"
    )
    with pytest.raises(UserError) as error:
        read_yaml(path)
    assert str(error.value) == f"cannot read config {path}: {problem}"


def test_nested_aliases_are_counted_once_each(tmp_path, monkeypatch):
    # the count of what the aliases expand to visits each node once, however often it is aliased: a text
    # of 10 ** 30 values is refused after counting its few hundred nodes, not its values
    import common.config as config_module

    visits = []
    count = config_module._expanded_count
    monkeypatch.setattr(
        config_module, "_expanded_count", lambda node, counts: visits.append(1) or count(node, counts)
    )
    path = tmp_path / "run.yaml"
    path.write_text(_nested_aliases(30))
    with pytest.raises(UserError, match="its aliases expand it to over"):
        read_yaml(path)
    # 43 nodes (the document, 'tags', its list, the first level's list and ten x's, 29 lists of aliases),
    # each looked up from each place it stands: 1 + 2 + 30 + 10 + 29 * 10 = 333 calls, not 10 ** 30
    assert len(visits) == 333


def test_aliases_short_of_the_bound_still_read_and_save(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(_nested_aliases(4))  # 10 ** 4 values: reused more than any config does, and taken
    config = load_config(SCHEMA, path)
    assert len(config["tags"]) == 4 and len(config["tags"][3]) == 10
    save_config(config, tmp_path / "args.yaml")
    assert load_config(SCHEMA, tmp_path / "args.yaml") == config


def test_a_dotted_key_in_a_file_says_to_nest_it(tmp_path):
    # "loss.weight: 2" was an unknown key, with loss among the known keys
    path = tmp_path / "run.yaml"
    path.write_text("loss.weight: 2\n")
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, path)
    assert str(error.value) == (
        f"config file {path}: unknown config key 'loss.weight': a config file nests a section's keys, "
        "'loss:' with '  weight: ...' on the line below (a dotted key is an override's, loss.weight=...)"
    )
    path.write_text("lr.x: 2\n")  # lr is no section: a plain unknown key
    with pytest.raises(UserError, match=r"unknown config key 'lr\.x' \(known here: "):
        load_config(SCHEMA, path)


def test_open_bounds_exclude_their_end() -> None:
    option = Option(0.2, float, low=0, high=1, high_open=True)
    option.check("overlap", 0.0)
    option.check("overlap", 0.99)
    with pytest.raises(UserError, match=r"config key 'overlap' needs a number in \[0, 1\), got 1"):
        option.check("overlap", 1)
    fraction = Option(0.5, float, low=0, low_open=True, high=1, high_open=True)
    assert fraction.describe() == "a number > 0 and < 1"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (100, "needs an integer in [32, 2048], a multiple of 16, got 100 (96 or 112 are)"),
        (40, "got 40 (32 or 48 are)"),
        (2040, "got 2040 (2032 or 2048 are)"),
        (20, "needs an integer in [32, 2048], a multiple of 16, got 20"),  # below the range: no nearest
    ],
)
def test_a_multiple_of_key_names_the_nearest_values_it_takes(value: int, message: str) -> None:
    # anomaly's image_size=100 was refused by PatchCore itself, once every fit photo had been hashed
    option = Option(256, int, low=32, high=2048, multiple=16)
    option.check("image_size", 256)
    with pytest.raises(UserError) as refused:
        option.check("image_size", value)
    assert str(refused.value).startswith("config key 'image_size' ") and str(refused.value).endswith(message)


def test_an_integer_key_refuses_a_boolean():
    with pytest.raises(UserError, match="'epochs' needs an integer >= 1, got True"):
        load_config(SCHEMA, None, ["epochs=true"])


def test_a_list_key_takes_a_tuple():
    SCHEMA.check({**SCHEMA.defaults(), "tags": ("a", "b")})


def test_quoted_numbers_in_a_file_keep_the_declared_kind(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: '3'\nlr: '2'\n")
    config = load_config(SCHEMA, path)
    assert config["epochs"] == 3 and isinstance(config["epochs"], int)
    assert config["lr"] == 2


@pytest.mark.parametrize("item", ["loss..weight=1", ".epochs=1", "loss.=1", "=1", "epochs"])
def test_overrides_without_a_whole_key_are_refused(item):
    with pytest.raises(UserError, match="is not key=value"):
        parse_overrides([item])


def test_an_override_giving_a_key_twice_is_refused():
    with pytest.raises(UserError, match=r"^override 'loss=\{a: 1, a: 2\}': key 'a' is given twice$"):
        parse_overrides(["loss={a: 1, a: 2}"])
    assert parse_overrides(["loss={a: 1, b: 2}"]) == {"loss": {"a": 1, "b": 2}}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "010",
            "'010' reads as octal 8 in YAML 1.1: write 8 or 10 without the leading zero, or quote it",
        ),
        ("-010", "'-010' reads as octal -8 in YAML 1.1: write -8 or -10 without the leading zero"),
        ("1:30", "'1:30' reads as the base-60 number 90 in YAML 1.1: write 90 for that number, or quote it"),
        ("[2, 1:30.5]", "'1:30.5' reads as the base-60 number 90.5 in YAML 1.1"),
    ],
    ids=["octal", "negative-octal", "base-60", "base-60-float-in-a-list"],
)
def test_a_yaml_11_octal_or_base_60_number_is_refused_in_a_file_and_an_override(tmp_path, text, problem):
    # "epochs: 010" trained 8 epochs and seed=1:30 seeded 90, without a word
    with pytest.raises(UserError, match=f"^override 'epochs={re.escape(text)}': {re.escape(problem)}"):
        load_config(SCHEMA, None, [f"epochs={text}"])
    path = tmp_path / "run.yaml"
    path.write_text(f"lr: 0.1\nepochs: {text}\n")
    with pytest.raises(
        UserError, match=f"^cannot read config {re.escape(str(path))}: {re.escape(problem)}.*line 2"
    ):
        load_config(SCHEMA, path)


def test_numbers_that_read_alike_in_yaml_11_and_12_are_read():
    path_text = "a: 07\nb: 00\nc: 010.5\nd: '010'\ne: 0x10\nf: 1_000\ng: .nan\nh: -.inf\ni: '1:30'\n"
    read = yaml.load(path_text, Loader=UniqueKeyLoader)
    assert {key: read[key] for key in "abcdefhi"} == {
        "a": 7,
        "b": 0,
        "c": 10.5,
        "d": "010",
        "e": 16,
        "f": 1000,
        "h": -math.inf,
        "i": "1:30",
    }
    assert math.isnan(read["g"])
    assert parse_overrides(["epochs=07", "name='010'", "time='1:30'"]) == {
        "epochs": 7,
        "name": "010",
        "time": "1:30",
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("model=no", "config key 'model' must be one of small, large, got False"),
        ("model=2024", "config key 'model' must be one of small, large, got 2024"),
        ("part=off", "config key 'part' must be one of neck, last or null, got False"),
        ("part=first", "config key 'part' must be one of neck, last or null, got 'first'"),
    ],
)
def test_a_key_of_fixed_choices_names_them_not_quoting_for_a_word_yaml_reads_as_no_text(item, message):
    # train_encoder=no was told to quote the word, and quoted it was "must be one of neck, last"
    schema = Schema(model=SCHEMA["model"], part=Option(None, str, choices=("neck", "last"), nullable=True))
    with pytest.raises(UserError) as error:
        load_config(schema, None, [item])
    assert str(error.value) == f"override '{item}': {message}"
    assert load_config(schema, None, ["part=null"])["part"] is None


def test_the_quote_it_advice_for_an_override_gives_the_form_a_shell_keeps(tmp_path):
    # name='12:30' typed in a shell reaches the program as name=12:30: the advice, followed as typed,
    # gave the same error; a file's line needs no shell form
    shell = "(\"data='12:30'\" in a shell)"
    with pytest.raises(
        UserError, match=f"write 750 for that number, or quote it for text {re.escape(shell)}$"
    ):
        load_config(SCHEMA, None, ["data=12:30"])
    with pytest.raises(UserError, match=re.escape("quote the word to mean text: \"data='no'\" in a shell)")):
        load_config(SCHEMA, None, ["data=no"])
    with pytest.raises(
        UserError, match=re.escape("got 2024 (quote it to mean text: \"data='2024'\" in a shell)")
    ):
        load_config(SCHEMA, None, ["data=2024"])
    path = tmp_path / "run.yaml"
    path.write_text("data: no\n")
    with pytest.raises(UserError, match=r"quote the word to mean text\)$"):
        load_config(SCHEMA, path)
    with pytest.raises(UserError, match="quote it for text$"):  # the number in a list: no whole-value form
        load_config(SCHEMA, None, ["tags=[1:30]"])


@pytest.mark.parametrize(
    ("item", "comment"),
    [("data=lot #7", "#7"), ("data=#7", "#7"), ("tags=[a, b] # two", "# two")],
    ids=["after-a-word", "alone", "after-a-list"],
)
def test_an_override_whose_comment_yaml_would_drop_is_refused(item, comment):
    # data=lot #7 (quoted whole in a shell) was the data 'lot', data=#7 null: the default, without a word
    message = f"^override '{re.escape(item)}': YAML reads '{comment}' as a comment"
    with pytest.raises(UserError, match=message):
        parse_overrides([item])
    assert parse_overrides(["data='lot #7'", "name=lot#7"]) == {"data": "lot #7", "name": "lot#7"}


@pytest.mark.parametrize("item", ["data=", "loss.weight=", "data= "])
def test_an_override_without_a_value_is_refused_naming_the_key(item):
    # `cache_dir=$CACHE` with CACHE unset arrives as `cache_dir=`: YAML read it as null, and the run
    # went on with the default without a word
    key = item.partition("=")[0]
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, None, ["epochs=3", item])
    assert str(error.value) == (
        f"override '{item}' has no value (an unset shell variable?): "
        f"write {key}=null to unset '{key}' explicitly"
    )


def test_null_unsets_and_a_quoted_empty_value_is_the_empty_string():
    # `key=''` reaches the program only when the shell was told to keep the quotes ("data=''")
    assert parse_overrides(["data=null", "max_steps=~"]) == {"data": None, "max_steps": None}
    assert (
        parse_overrides(["data=''"]) == parse_overrides(['data=""']) == {"data": ""}
    )  # refused by data's Option
    assert load_config(SCHEMA, None, ["data=~", "max_steps=null"])["data"] is None
    with pytest.raises(
        UserError, match=r"^override 'epochs=''': config key 'epochs' needs an integer >= 1, got ''$"
    ):
        load_config(SCHEMA, None, ["epochs=''"])


def test_a_quoted_number_in_an_override_stays_text():
    # "name='2024'" (quotes kept by the shell) became the number 2024, "device='0'" the number 0: quoted,
    # YAML says text, as a config file's '0' is; a key whose default is a number still reads it as one
    assert parse_overrides(["name='2024'", 'device="0"', "tags=['1']", "epochs=5"]) == {
        "name": "2024",
        "device": "0",
        "tags": ["1"],
        "epochs": 5,
    }
    config = load_config(SCHEMA, None, ["data='2024'", "epochs='3'", "lr=' 1e-3'"])
    assert config["data"] == "2024" and config["epochs"] == 3 and config["lr"] == 0.001


def test_an_override_reads_text_as_a_config_file_does_but_for_an_exponent(tmp_path):
    # name=08 named detection's run folder '8' and name=nan a float, while a file's "name: 08" is the
    # text '08': Python's int() and float() took what YAML reads as text (08, nan, inf, Arabic digits)
    texts = ["08", "nan", "inf", "\u0661\u0662"]
    assert parse_overrides(["name=08"]) == {"name": "08"}
    for text in texts:
        path = tmp_path / "run.yaml"
        path.write_text(f"data: {text}\n", encoding="utf-8")
        from_file = load_config(SCHEMA, path)["data"]
        assert load_config(SCHEMA, None, [f"data={text}"])["data"] == from_file == text
        assert load_config({"name": None}, None, [f"name={text}"]) == {"name": text}
    # YAML 1.2's exponent without a dot, which YAML 1.1 reads as text, is a number for a number key
    config = load_config(SCHEMA, None, ["lr=1e-3", "temperature=1.5E3", "ratio=.5e-1"])
    assert (config["lr"], config["temperature"], config["ratio"]) == (0.001, 1500.0, 0.05)
    assert load_config(SCHEMA, None, ["epochs=08"])["epochs"] == 8  # a number key reads it as a number


def test_a_number_key_null_by_default_reads_a_zero_padded_number_as_one(tmp_path):
    # max_steps=08 was refused "needs an integer >= 1 or null, got '08'" where epochs=08 is 8: only a key
    # whose default is a number read YAML 1.1's text '08' as the number
    assert load_config(SCHEMA, None, ["max_steps=08"])["max_steps"] == 8
    assert load_config(SCHEMA, None, ["max_steps='09'"])["max_steps"] == 9
    path = tmp_path / "run.yaml"
    path.write_text("max_steps: 08\n")
    assert load_config(SCHEMA, path)["max_steps"] == 8
    with pytest.raises(UserError, match=r"config key 'max_steps' needs an integer >= 1 or null, got 'abc'$"):
        load_config(SCHEMA, None, ["max_steps=abc"])
    assert load_config(SCHEMA, None, ["data=08"])["data"] == "08"  # a text key keeps it


def test_an_exponent_override_for_a_key_that_takes_text_stays_text():
    # name=1e3 was the number 1000.0 for any key: detection's run folder '1000.0' (project: runs/detect),
    # and a declared text key refused what a file's "data: 1e3" gives as text
    assert load_config(SCHEMA, None, ["data=1e3", "lr=1e-3", "max_steps=null"])["data"] == "1e3"
    with pytest.raises(UserError, match=r"config key 'loss.kind' must be one of focal, bce, got '1e3'$"):
        load_config(SCHEMA, None, ["loss.kind=1e3"])  # a section's key, named as typed
    defaults = {"project": "runs/detect", "lr0": 0.01, "time": None}
    config = load_config(defaults, None, ["project=1e3", "lr0=1e-3", "time=1e1"])
    assert config == {"project": "1e3", "lr0": 0.001, "time": "1e1"}  # time: no known kind, as a file


def test_an_exponent_override_for_a_key_of_no_known_kind_is_read_as_a_config_file_reads_it(tmp_path):
    # name=1e3 (null by default, no kind to go by) was 1000.0, where a file's "name: 1e3" is the text '1e3':
    # detection's run folder '1000.0'; a key that needs(key) says takes a number still reads a number
    defaults = {"name": None, "time": None}
    path = tmp_path / "run.yaml"
    path.write_text("name: 1e3\n")
    assert load_config(defaults, path)["name"] == "1e3"
    config = load_config(defaults, None, ["name=1e3", "time=1e1"], needs={"time": "a number or null"}.get)
    assert config == {"name": "1e3", "time": 10.0}
    assert load_config(defaults, None, ["name=null"]) == defaults


def test_override_keys_are_read_as_the_overrides_are_parsed():
    # segmentation.train/.evaluate stripped " data=x" to refuse keys while parse_overrides kept ' data',
    # an unknown key: now both read the key data
    assert parse_overrides([" data=x", "loss.weight =2"]) == {"data": "x", "loss": {"weight": 2}}
    assert override_keys(["prompts.p_box=1", " data=x"]) == {"prompts", "data"}
    with pytest.raises(UserError, match="has no value"):
        override_keys(["data="])


@pytest.mark.parametrize(
    ("blank", "got"), [("data=''", "an empty string"), ("data=' '", "a blank string ' '")]
)
def test_a_blank_string_value_is_refused_naming_the_key(tmp_path, blank, got):
    # Path('') is the working folder: cache_dir='' filled it with cache entries, out='' wrote runs there
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, None, [blank])
    assert str(error.value) == (
        f"override '{blank}': config key 'data' needs a string or null, got {got}; null gives the default"
    )
    (tmp_path / "run.yaml").write_text('device: ""\n')  # in a file too
    with pytest.raises(
        UserError, match=r"^config file .*run\.yaml: config key 'device' needs .*, got an empty string$"
    ):
        load_config(SCHEMA, tmp_path / "run.yaml")
    assert Option("", str).check("key", "") is None  # where empty is the default, it is a value


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], "config file {file}: config key 'epochs' needs an integer >= 1, got 0"),
        # the override wins over the file's value, and is named; of several, the one that set the key
        (
            ["ratio=0.5", "epochs=-1"],
            "override 'epochs=-1': config key 'epochs' needs an integer >= 1, got -1",
        ),
        (  # a section set whole
            ["epochs=2", "loss={weight: -2}"],
            "override 'loss={{weight: -2}}': config key 'loss.weight' needs a number >= 0, got -2",
        ),
    ],
)
def test_a_bad_value_names_where_it_was_set(tmp_path, overrides, expected):
    # "config key 'epochs' needs an integer >= 1, got 0" alone: in the file, or on the command line?
    file = tmp_path / "run.yaml"
    file.write_text("epochs: 0\nloss:\n  weight: 1\n")
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, file, overrides)
    assert str(error.value) == expected.format(file=file)


@pytest.mark.parametrize(
    "later",
    [
        "epochs: [\n",  # broken since: its read error stood in for the real one
        None,  # gone since
        "ratio: 0.5\n",  # no longer holds the key
    ],
)
def test_a_bad_value_is_named_from_the_file_as_it_was_loaded(tmp_path, later):
    # detection.train names errors raised after a weights download: the file could change meanwhile
    file = tmp_path / "run.yaml"
    file.write_text("epochs: 0\n")
    load_config({"epochs": 1, "ratio": 1.0}, file)  # no schema: checked later, by the caller
    if later is None:
        file.unlink()
    else:
        file.write_text(later)
    error = UserError("config key 'epochs' needs an integer >= 1, got 0")
    assert str(with_source(error, file, [])) == f"config file {file}: {error}"


def test_a_key_a_file_gained_after_loading_is_not_named_as_its(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text("ratio: 0.5\n")
    load_config({"epochs": 0, "ratio": 1.0}, file)
    file.write_text("epochs: 0\n")  # the 0 is the default the run got, not this file's
    error = UserError("config key 'epochs' needs an integer >= 1, got 0")
    assert with_source(error, file, []) is error


def test_an_override_a_command_made_of_a_flag_is_named_by_the_flag(tmp_path):
    with pytest.raises(UserError, match=r"^--epochs 0: config key 'epochs' needs an integer >= 1, got 0$"):
        load_config(SCHEMA, None, ["ratio=1", "epochs=0"], flags={"epochs=0": "--epochs 0"})


def test_a_bad_value_nobody_set_is_named_without_a_source(tmp_path):
    # a caller's defaults (detection.train's augmentation policy) are neither file nor override
    file = tmp_path / "run.yaml"
    file.write_text("ratio: 0.5\n")
    with pytest.raises(UserError, match=r"^config key 'epochs' needs an integer >= 1, got 0$"):
        load_config(Schema(epochs=Option(0, int, "passes", low=1), ratio=SCHEMA["ratio"]), file, ["ratio=1"])


@pytest.mark.parametrize("text", ["", "# epochs: 5\n\n", "{}\n"])
def test_a_config_file_that_sets_no_key_gives_the_defaults_and_says_so(tmp_path, capsys, text):
    # a truncated copy or the wrong file ran on the defaults without a word
    file = tmp_path / "empty.yaml"
    file.write_text(text)
    assert load_config(SCHEMA, file) == SCHEMA.defaults()
    note = f"note: config file {file} sets no keys (it is empty or only comments): the defaults"
    assert capsys.readouterr().err == f"{note} are used\n"
    assert load_config(SCHEMA, file, ["epochs=3"])["epochs"] == 3
    assert capsys.readouterr().err == f"{note} and the overrides are used\n"
    load_config(SCHEMA, file, note_empty=False)  # a second read of the same file
    (tmp_path / "set.yaml").write_text("epochs: 3\n")
    load_config(SCHEMA, tmp_path / "set.yaml")
    assert capsys.readouterr().err == ""


def test_saved_config_writes_paths_inside_lists_as_strings(tmp_path):
    save_config({"sources": [Path("a"), (Path("b"), "c")]}, tmp_path / "args.yaml")
    assert yaml.safe_load((tmp_path / "args.yaml").read_text()) == {"sources": ["a", ["b", "c"]]}


def test_saved_config_writes_non_ascii_paths_as_utf8_and_reads_them_back(tmp_path):
    # args.yaml said data: "/data/caf\u00e9/x": the run folder's record of itself, unreadable by eye
    config = load_config(SCHEMA, None, ["data=/data/café/x", "tags=[ø, 部品]"])
    save_config({**config, "model": "large"}, tmp_path / "args.yaml")
    text = (tmp_path / "args.yaml").read_bytes().decode("utf-8")
    assert "data: /data/café/x\n" in text and "- 部品\n" in text
    assert read_yaml(tmp_path / "args.yaml") == {**config, "model": "large"}


@pytest.mark.parametrize("name", ["lot\x857", "a\u2028b", "a\u2029b", "café\x85"])
def test_saved_config_text_reads_back_as_written(tmp_path, name):
    # a NEL (U+0085) was written raw in quotes and read back as a space: 'lot 7', another folder
    config = {"data": f"/data/{name}", name: [name]}
    save_config(config, tmp_path / "args.yaml")
    assert read_yaml(tmp_path / "args.yaml") == config
    assert yaml_text({"data": "/data/café"}) == "data: /data/café\n"  # UTF-8 where it reads back


def test_a_nan_in_a_saved_config_leaves_its_text_as_utf8(tmp_path):
    # a NaN read back differs from itself by ==: the whole file was written escaped, é as \\xE9
    config = {"data": "/data/café", "loss": {"weights": [1.0, float("nan")]}, "tags": ["部品"]}
    save_config(config, tmp_path / "args.yaml")
    text = (tmp_path / "args.yaml").read_bytes().decode("utf-8")
    assert text == "data: /data/café\nloss:\n  weights:\n  - 1.0\n  - .nan\ntags:\n- 部品\n"
    assert math.isnan(read_yaml(tmp_path / "args.yaml")["loss"]["weights"][1])
    assert yaml_text({"data": "lot\x857", "x": float("nan")}) == 'data: "lot\\N7"\nx: .nan\n'  # escaped still


def test_a_section_in_a_file_merges_key_by_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("loss:\n  weight: 1e-3\n")
    assert load_config(SCHEMA, path)["loss"] == {"weight": 0.001, "kind": "focal"}
    with pytest.raises(UserError, match="unknown config key 'a.c'"):
        load_config({"a": {"b": 1}}, None, ["a.c=2"])


def test_the_project_root_holds_the_shipped_configs() -> None:
    assert (PROJECT_ROOT / "configs" / "detection" / "augment.yaml").is_file()
    assert (PROJECT_ROOT / "common" / "config.py").is_file()


def test_a_relative_path_in_the_working_folder_wins_over_the_project_one(tmp_path: Path, monkeypatch) -> None:
    relative = Path("configs") / "detection" / "augment.yaml"
    monkeypatch.chdir(tmp_path)
    assert project_path(relative) == PROJECT_ROOT / relative  # not here: the project's
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_text("default: {}\n")
    assert project_path(relative) == relative  # here: as given


def test_a_relative_path_here_that_cannot_be_looked_for_is_not_taken_for_the_projects_on_python_3_13(
    tmp_path: Path, monkeypatch, unsearchable
) -> None:
    # 3.13's Path.exists is False there: the project's configs/detection/augment.yaml was read instead
    relative = Path("configs") / "detection" / "augment.yaml"
    monkeypatch.chdir(tmp_path)
    (tmp_path / relative).parent.mkdir(parents=True)
    (tmp_path / relative).write_text("default: {}\n")
    unsearchable(tmp_path / "configs" / "detection")
    with pytest.raises(PermissionError) as raised:  # the commands' line: 'Permission denied: <path>'
        project_path(relative)
    assert raised.value.filename == str(relative)
    assert project_path(tmp_path / relative) == tmp_path / relative  # absolute: for its reader to name


def test_every_commands_config_path_as_the_readme_gives_it_is_read_from_any_folder(
    tmp_path: Path, monkeypatch
):
    # anomaly.train and detection.train --config configs/... said "cannot read config" outside the checkout
    from anomaly.config import SCHEMA
    from detection.train_config import build_config

    monkeypatch.chdir(tmp_path)
    assert load_config(SCHEMA, "configs/anomaly/patchcore.yaml", ["image_size=320"])["image_size"] == 320
    (tmp_path / "data.yaml").write_text("path: .\ntrain: a\nval: a\nnames: {0: cut}\n")
    assert build_config("configs/detection/yolo11n.yaml", ["data=data.yaml", "epochs=3"])["epochs"] == 3
    with pytest.raises(UserError, match="no_such.yaml"):  # found nowhere: the path as typed
        load_config(SCHEMA, "configs/no_such.yaml")


def test_a_path_found_nowhere_is_returned_as_given(tmp_path: Path, monkeypatch) -> None:
    # the error that follows then names the path the user typed, not one inside the project
    monkeypatch.chdir(tmp_path)
    assert project_path("configs/detection/no_such.yaml") == Path("configs/detection/no_such.yaml")
    assert project_path(tmp_path / "absent.yaml") == tmp_path / "absent.yaml"


def test_a_path_under_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "policy.yaml").write_text("default: {}\n")
    assert project_path("~/policy.yaml") == tmp_path / "policy.yaml"


#: Keys of no declared kind (a plain mapping's, as detection's ultralytics keys): the run ``name`` (null by
#: default), ``project`` (text) and a number key, for what YAML reads otherwise than it is written.
PLAIN = {"name": None, "project": "runs/detect", "epochs": 100, "tracker": "botsort.yaml"}


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0x10", 16),
        ("1.0e+3", 1000.0),
        ("1_000", 1000),
        (".5", 0.5),
        ("+5", 5),
        ("0b101", 5),
        (".inf", math.inf),
    ],
)
@pytest.mark.parametrize("key", ["name", "project"])
def test_a_number_written_otherwise_for_a_key_of_no_declared_kind_is_refused_in_a_file_and_an_override(
    tmp_path, key, text, number
):
    # name: 1.0e+3 made detection's run folder '1000.0', name=0x10 the folder '16', project=1_000 '1000'
    got = f"config key '{key}' got '{text}', which YAML reads as the number {number}"
    advice = f"(write {number} for that number, or quote it to mean text"
    with pytest.raises(UserError) as error:
        load_config(PLAIN, None, [f"{key}={text}"])
    assert str(error.value) == f"override '{key}={text}': {got} {advice}: \"{key}='{text}'\" in a shell)"
    path = tmp_path / "run.yaml"
    path.write_text(f"{key}: {text}\n")
    with pytest.raises(UserError) as error:
        load_config(PLAIN, path)
    assert str(error.value) == f"config file {path}: {got} {advice})"
    path.write_text(f"{key}: '{text}'\n")  # quoted, the text as written
    assert load_config(PLAIN, path)[key] == load_config(PLAIN, None, [f"{key}='{text}'"])[key] == text


def test_a_number_written_as_python_writes_it_or_for_a_number_key_is_read_as_in_a_file(tmp_path):
    # epochs=0x10 is 16 as a config file's "epochs: 0x10" (and YAML 1.2's) is; name=2024 is left to the
    # command (detection: the run '2024'); a number nested in a list is the list's
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 0x10\nname: 2024\n")
    assert load_config(PLAIN, path) == {**PLAIN, "epochs": 16, "name": 2024}
    config = load_config(PLAIN, None, ["epochs=0x10", "name=2024", "project=[0x10]", "tracker=1.5"])
    assert config == {"name": 2024, "project": [16], "epochs": 16, "tracker": 1.5}
    assert (
        load_config(SCHEMA, None, ["epochs=1_0", "max_steps=0x10", "loss.weight=1.0e+1"])["max_steps"] == 16
    )
    # a declared text key refuses any number by its own check, quoting advice and all
    with pytest.raises(
        UserError, match=r"needs a string or null, got 16 \(quote it to mean text: \"data='0x10'\""
    ):
        load_config(SCHEMA, None, ["data=0x10"])


@pytest.mark.parametrize("text", ["2026-12-07", "2026-12-07 10:00:00", "2026-12-07T10:00:00Z"])
def test_a_date_is_text_in_a_file_and_an_override(tmp_path, text):
    # name=2026-12-07 was a datetime.date: a run folder of no text the command checks; YAML 1.2 reads text
    path, other = tmp_path / "run.yaml", tmp_path / "other.yaml"
    path.write_text(f"name: {text}\n")
    other.write_text(f"data: {text}\n")
    assert load_config(PLAIN, path)["name"] == load_config(PLAIN, None, [f"name={text}"])["name"] == text
    assert load_config(SCHEMA, other)["data"] == load_config(SCHEMA, None, [f"data={text}"])["data"] == text
    with pytest.raises(UserError, match=f"config key 'epochs' needs an integer >= 1, got '{text}'$"):
        load_config(SCHEMA, None, [f"epochs={text}"])
    save_config({"name": text}, tmp_path / "args.yaml")
    assert read_yaml(tmp_path / "args.yaml") == {"name": text}


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!!binary aGk=", "!!binary"),
        ("!!set {a}", "!!set"),
        ("!!timestamp 2026-12-07", "!!timestamp"),
        ("!lot 7", "!lot"),
    ],
)
def test_a_tag_is_refused_in_an_override_and_a_file(tmp_path, value, tag):
    # name=!!python/name:os.system was that text, name=!!binary aGk= the bytes b'hi', a file's !!set a set
    problem = f"YAML reads '{tag}' as a tag, which a config does not take: quote the value to mean text"
    with pytest.raises(UserError) as error:
        load_config(PLAIN, None, [f"name={value}"])
    assert str(error.value) == f"override 'name={value}': {problem} (\"name='{value}'\" in a shell)"
    path = tmp_path / "run.yaml"
    path.write_text(f"name: {value}\n")
    with pytest.raises(
        UserError, match=f"^cannot read config {re.escape(str(path))}: {re.escape(problem)}, line 1"
    ):
        load_config(PLAIN, path)
    assert parse_overrides(["name=!!str 010", "data='!lot 7'"]) == {"name": "010", "data": "!lot 7"}


def test_yaml_11s_merge_and_value_keys_given_as_a_value_are_text_and_a_tagged_number_is_meant(tmp_path):
    # name: << was refused as "could not determine a constructor for the tag 'tag:yaml.org,2002:merge'"
    path = tmp_path / "run.yaml"
    path.write_text("name: <<\nproject: '='\ntracker: =\nepochs: !!int 0x10\n")
    assert load_config(PLAIN, path) == {"name": "<<", "project": "=", "epochs": 16, "tracker": "="}
    config = load_config(PLAIN, None, ["name=<<", "tracker==", "project=!!float 1"])
    assert config == {**PLAIN, "name": "<<", "tracker": "=", "project": 1.0}


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("&x", "'&x' as an anchor, a name for the value after it"),
        ("&lot 7", "'&lot' as an anchor, a name for the value after it"),
        ("[&a 1, *a]", "'&a' as an anchor, a name for the value after it"),
        ("|", "'|' as the start of a block of text on the lines below, which an override has none of"),
        (">-", "'>-' as the start of a block of text on the lines below, which an override has none of"),
        ("---", "'---' as the start of a document, not as text"),
        ("--- 7", "'---' as the start of a document, not as text"),
        ("! 7", "'!' as a tag, which a config does not take"),  # '7' (a file's "name: ! 7" is YAML's too)
        ("!", "'!' as a tag, which a config does not take"),  # null
    ],
)
def test_yaml_syntax_that_reads_as_no_text_in_an_override_is_refused(value, read):
    # name=&x and name=--- were null (the default, without a word), name=| the empty string, name=&lot 7 '7'
    with pytest.raises(UserError) as error:
        parse_overrides([f"name={value}"])
    quoted = "" if "'" in value else f" (\"name='{value}'\" in a shell)"
    assert (
        str(error.value)
        == f"override 'name={value}': YAML reads {read}: quote the value to mean text{quoted}"
    )
    assert parse_overrides([f"name='{value}'", "data=lot & co", "tags=...", "out=a---b"]) == {
        "name": value,
        "data": "lot & co",
        "tags": "...",
        "out": "a---b",
    }


@pytest.mark.parametrize(
    ("value", "read"),
    [("a:", "a mapping, {'a': None}"), ("lot: 7", "a mapping, {'lot': 7}"), ("- a", "a list, ['a']")],
)
def test_a_mapping_or_list_without_brackets_for_a_key_of_no_declared_kind_is_refused(value, read):
    # name=a: was {'a': None} (a file's "name: a:" is refused as needing quotes), name=- a the list ['a']
    with pytest.raises(UserError) as error:
        load_config(PLAIN, None, [f"name={value}"])
    assert str(error.value) == (
        f"override 'name={value}': config key 'name' got '{value}', which YAML reads as {read} "
        f"(quote it to mean text: \"name='{value}'\" in a shell)"
    )
    # brackets say a mapping or a list is meant; a section takes its keys either way
    assert load_config(PLAIN, None, ["name={a: 1}", "tracker=[a]"]) == {
        **PLAIN,
        "name": {"a": 1},
        "tracker": ["a"],
    }
    assert load_config(SCHEMA, None, ["loss=weight: 2"])["loss"] == {"weight": 2, "kind": "focal"}


@pytest.mark.parametrize(
    ("item", "got"),
    [
        ("data=x: y", "{'x': 'y'} (YAML reads it as a mapping"),
        ("data=a:", "{'a': None} (YAML reads it as a mapping"),
    ]
    + [("data=- a", "['a'] (YAML reads it as a list"), ("data=[a]", "['a'] (YAML reads it as a list")],
)
def test_a_mapping_or_list_for_a_key_that_takes_text_says_to_quote_it(tmp_path, item, got):
    # "config key 'data' needs a string or null, got {'x': 'y'}" did not say that quoting gives the text
    value = item.partition("=")[2]
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, None, [item])
    assert str(error.value) == (
        f"override '{item}': config key 'data' needs a string or null, got {got}: quote it to mean text: "
        f"\"data='{value}'\" in a shell)"
    )
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  x: y\n")
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, path)
    assert str(error.value) == (
        f"config file {path}: config key 'data' needs a string or null, got {{'x': 'y'}} (YAML reads it as a "
        "mapping: quote it to mean text)"
    )


def test_a_colon_with_no_space_is_text_and_a_list_key_takes_a_list_without_brackets(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: a:b\n")
    assert load_config(SCHEMA, path)["data"] == "a:b"
    config = load_config(SCHEMA, None, ["data=a:b", "tags=- a", "device=cuda:0"])
    assert (config["data"], config["tags"], config["device"]) == ("a:b", ["a"], "cuda:0")


@pytest.mark.parametrize("value", ["*_good", "*.png", "*x*", "*"])
def test_an_alias_yaml_cannot_resolve_is_its_text(value):
    # an override is one value: no anchor stands before it, and a glob is what such text means
    assert parse_overrides([f"name={value}"]) == {"name": value}


@pytest.mark.parametrize("text", ["[" * 3000 + "]" * 3000, "{a: " * 1500 + "1" + "}" * 1500])
def test_yaml_nested_too_deeply_is_one_line_naming_the_file_or_override(tmp_path, text):
    # PyYAML composes by recursion: a RecursionError traceback, in a file or an override
    (tmp_path / "run.yaml").write_text(f"data: {text}\n")
    too_deep = "nested too deeply (lists or mappings inside one another, past what the YAML reader takes)"
    with pytest.raises(UserError) as error:
        read_yaml(tmp_path / "run.yaml")
    assert str(error.value) == f"cannot read config {tmp_path / 'run.yaml'}: {too_deep}"
    with pytest.raises(UserError) as error:
        load_config(SCHEMA, None, [f"data={text}"])
    assert str(error.value) == f"override 'data={text[:35]}...' ({len(text) + 5} characters): {too_deep}"
    shallow: list = []
    for _ in range(49):
        shallow = [shallow]
    assert parse_overrides(["data=" + "[" * 50 + "]" * 50]) == {"data": shallow}  # read as before
