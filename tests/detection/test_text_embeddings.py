"""Class-name embeddings: fixed vectors, table files and their errors, local CLIP, the choice, the CLI."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
import types
from pathlib import Path

import pytest
import torch

import common.io
from common.cli import exit_code
from detection import clip_text
from detection.text_embeddings import (
    CLOSED_SET_NOTE,
    EMBEDDING_DIM,
    TextEmbeddingError,
    TextEmbeddings,
    class_texts,
    fixed_embeddings,
    fixed_vector,
    load_table,
    main,
    prompt_texts,
    resolve_text_embeddings,
    save_table,
)
from tests.conftest import assert_link_loop_line, without_home
from tests.detection.conftest import copy_with_names

NAMES = ["bent", "color", "flip", "scratch"]


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def write_table(path: Path, table: dict) -> Path:
    torch.save(table, path)
    return path


@pytest.fixture
def no_clip(monkeypatch: pytest.MonkeyPatch) -> None:
    """``clip`` is not importable, whatever this machine has installed."""
    monkeypatch.setitem(sys.modules, "clip", None)


class FakeClipModel(torch.nn.Module):
    """Stands in for CLIP: ``encode_text`` maps each token row to a fixed, unnormalised 512-d vector."""

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        rows = [torch.Generator().manual_seed(int(t.sum())) for t in tokens]
        return torch.stack([3.0 * torch.randn(EMBEDDING_DIM, generator=g) for g in rows])


@pytest.fixture
def fake_clip(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """A fake ``clip`` package; returns the ``load`` calls it saw."""
    calls: list[tuple] = []
    module = types.ModuleType("clip")

    def load(name, device="cpu", jit=True, download_root=None):
        calls.append((name, str(device), jit))
        return FakeClipModel(), None

    def tokenize(texts, truncate=False):
        return torch.tensor([[sum(map(ord, t)), len(t)] + [0] * 75 for t in texts])

    module.load, module.tokenize = load, tokenize
    monkeypatch.setitem(sys.modules, "clip", module)
    monkeypatch.setattr(clip_text.importlib.util, "find_spec", lambda name: object())
    return calls


# --- names and fixed vectors ---------------------------------------------------------------------


def test_prompt_texts_split_synonyms_and_drop_repeats() -> None:
    assert prompt_texts(["scratch", "bent lead/bent pin", " scratch"]) == ["scratch", "bent lead", "bent pin"]


def test_fixed_vectors_are_unit_seeded_and_independent_of_other_names() -> None:
    a = fixed_embeddings(["scratch", "bent"], seed=0)
    b = fixed_embeddings(["bent", "hole", "scratch"], seed=0)
    assert torch.equal(a.vectors["scratch"], b.vectors["scratch"])  # adding a class moves no other
    assert not torch.equal(fixed_vector("scratch", seed=0), fixed_vector("scratch", seed=1))
    for vector in b.vectors.values():
        assert vector.shape == (EMBEDDING_DIM,) and abs(float(vector.norm()) - 1.0) < 1e-6
    cosine = float(b.vectors["bent"] @ b.vectors["hole"])
    assert abs(cosine) < 0.25  # near-orthogonal: distinct classes
    assert not a.open_vocabulary and "closed-set" in a.describe()


def test_table_round_trip_keeps_vectors_and_provenance(tmp_path: Path) -> None:
    path = save_table(fixed_embeddings(NAMES, seed=3), tmp_path / "table.pt")
    sidecar = json.loads((tmp_path / "table.json").read_text())
    assert sidecar["open_vocabulary"] is False and sidecar["seed"] == 3 and sidecar["names"] == NAMES
    loaded = load_table(path, NAMES)
    assert not loaded.open_vocabulary and "seed 3" in loaded.source and str(path) in loaded.source
    for name in NAMES:
        assert torch.allclose(loaded.vectors[name], fixed_vector(name, seed=3))
    assert loaded.matrix(["flip", "bent"]).shape == (1, 2, EMBEDDING_DIM)


def test_table_vectors_are_normalised_and_extra_entries_allowed(tmp_path: Path) -> None:
    table = {
        "scratch": torch.full((EMBEDDING_DIM,), 2.0),
        "bent": torch.ones(1, EMBEDDING_DIM),  # (1, D), as ultralytics' own cache may hold
        "unused": torch.ones(EMBEDDING_DIM),
    }
    loaded = load_table(write_table(tmp_path / "t.pt", table), ["scratch", "bent"])
    assert set(loaded.vectors) == {"scratch", "bent"}
    assert torch.allclose(loaded.vectors["scratch"], torch.full((EMBEDDING_DIM,), EMBEDDING_DIM**-0.5))
    assert loaded.open_vocabulary and "origin not recorded" in loaded.source  # no sidecar


# --- table errors --------------------------------------------------------------------------------


def _vectors(*names: str, dim: int = EMBEDDING_DIM) -> dict:
    return {n: torch.randn(dim) for n in names}


@pytest.mark.parametrize(
    ("content", "names", "expected"),
    [
        (None, NAMES, "text-embedding table not found"),  # no file
        (b"not a torch file", NAMES, "cannot read text-embedding table"),
        (torch.randn(4, EMBEDDING_DIM), NAMES, "is not a text-embedding table"),  # a bare tensor
        ({}, NAMES, "is not a text-embedding table"),  # empty dict
        ({0: torch.randn(EMBEDDING_DIM)}, NAMES, "are not class name -> tensor"),  # int keys
        ({"bent": [0.1] * EMBEDDING_DIM}, ["bent"], "are not class name -> tensor"),  # list values
        (_vectors("bent", "color"), NAMES, "has no vector for 2 class name(s): 'flip', 'scratch'"),
        (_vectors("bent lead"), ["bent lead/bent pin"], "has no vector for 1 class name(s): 'bent pin'"),
        ({**_vectors("bent"), **_vectors("flip", dim=256)}, ["bent"], "different sizes: 512 ('bent'), 256"),
        (_vectors("bent", dim=256), ["bent"], "vectors are 256-d, YOLO-World's text head takes 512-d"),
        ({"bent": torch.randn(2, EMBEDDING_DIM)}, ["bent"], "has shape (2, 512)"),
        ({"bent": torch.zeros(EMBEDDING_DIM)}, ["bent"], "zero or not finite"),
        ({"bent": torch.full((EMBEDDING_DIM,), float("nan"))}, ["bent"], "zero or not finite"),
    ],
)
def test_bad_tables_fail_with_one_line_naming_the_file(tmp_path: Path, content, names, expected) -> None:
    path = tmp_path / "table.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(TextEmbeddingError) as error:
        load_table(path, names)
    message = one_line(error)
    assert expected in message and str(path) in message


def test_another_torch_file_given_as_a_table_is_named_for_what_it_is(tmp_path: Path) -> None:
    # a detector's best.pt gave torch's weights_only advice (ANSI codes and all), a SAM state dict the list
    # of its 'texts' ('image_encoder.patch_embed...') as if a table lacked the class names
    from ultralytics import YOLO

    best = tmp_path / "best.pt"
    YOLO("yolo11n.yaml").save(str(best))
    sam = tmp_path / "sam_finetuned.pth"
    torch.save({"mask_decoder.iou_token.weight": torch.randn(EMBEDDING_DIM)}, sam)
    advice = (
        "pass a table file {class name: tensor} (python -m detection.text_embeddings --out FILE.pt, or a "
    )
    for path, kind in (
        (best, "an ultralytics model (detection weights)"),
        (sam, "a SAM state dict, such as sam_finetuned.pth"),
    ):
        with pytest.raises(TextEmbeddingError) as error:
            load_table(path, NAMES)
        assert str(error.value) == (
            f"{path} is not a text-embedding table: it is {kind}; {advice}run's text_embeddings.pt)"
        )


# --- CLIP ----------------------------------------------------------------------------------------


def test_local_clip_is_used_with_its_file_path(tmp_path: Path, fake_clip, network_attempts) -> None:
    weights = tmp_path / "my-clip.pt"  # another name: the user's own file, taken unchecked
    weights.write_bytes(b"weights")
    embeddings = resolve_text_embeddings(NAMES, clip_weights=weights)
    assert fake_clip == [(str(weights), "cpu", False)]  # a path: the clip package downloads nothing
    assert embeddings.open_vocabulary and "CLIP ViT-B/32" in embeddings.source
    for vector in embeddings.vectors.values():
        assert abs(float(vector.norm()) - 1.0) < 1e-5
    assert network_attempts == []


def test_the_clip_weights_are_recorded_as_records_write_a_path(tmp_path, monkeypatch, fake_clip) -> None:
    # the table's sidecar (a detection run's text_embeddings.json) kept clip_weights as typed: relative
    (tmp_path / "my-clip.pt").write_bytes(b"weights")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    embeddings = resolve_text_embeddings(NAMES, clip_weights=Path("sub/../my-clip.pt"))
    assert embeddings.info["weights"] == str(tmp_path / "my-clip.pt")
    assert embeddings.source.endswith(f"({tmp_path / 'my-clip.pt'})")


def test_clip_weights_in_a_cache_folder_are_found_and_verified(tmp_path, monkeypatch, fake_clip) -> None:
    cached = tmp_path / "clip" / "ViT-B-32.pt"
    cached.parent.mkdir()
    cached.write_bytes(b"not the official bytes")
    monkeypatch.setattr(clip_text, "clip_weight_candidates", lambda: [tmp_path / "none.pt", cached])
    with pytest.raises(TextEmbeddingError) as error:
        resolve_text_embeddings(NAMES)
    assert "sha256" in one_line(error) and fake_clip == []  # a corrupt official-named file is refused
    spec = clip_text.CLIP_WEIGHTS
    official = type(spec)(**{**spec.__dict__, "sha256": hashlib.sha256(cached.read_bytes()).hexdigest()})
    monkeypatch.setattr(clip_text, "CLIP_WEIGHTS", official)
    assert "CLIP" in resolve_text_embeddings(NAMES).source and fake_clip[0][0] == str(cached)


def test_an_explicit_table_wins_over_clip(tmp_path: Path, fake_clip) -> None:
    path = save_table(fixed_embeddings(NAMES), tmp_path / "table.pt")
    assert "table file" in resolve_text_embeddings(NAMES, table=path).source and fake_clip == []


def test_clip_without_weights_and_no_table_says_what_was_tried(tmp_path, monkeypatch, fake_clip) -> None:
    monkeypatch.setattr(clip_text, "clip_weight_candidates", lambda: [tmp_path / "a" / "ViT-B-32.pt"])
    with pytest.raises(TextEmbeddingError) as error:
        resolve_text_embeddings(NAMES)
    message = one_line(error)
    assert "no CLIP ViT-B/32 weights on disk" in message and str(tmp_path / "a") in message
    assert "no table given (text_embeddings=FILE)" in message


def test_neither_clip_nor_table_fails_before_anything_is_loaded(no_clip, network_attempts) -> None:
    with pytest.raises(TextEmbeddingError) as error:
        resolve_text_embeddings(NAMES)
    message = one_line(error)
    assert "'clip' package is not installed" in message and "no table given" in message
    assert "'bent', 'color', 'flip', 'scratch'" in message and "--fixed" in message
    assert network_attempts == []


def test_without_clip_the_missing_weights_are_named_too(no_clip, tmp_path, monkeypatch) -> None:
    # it named the pip install alone: a user installed clip, ran again, and only then heard of the weights
    monkeypatch.setattr(clip_text, "clip_weight_candidates", lambda: [tmp_path / "a" / "ViT-B-32.pt"])
    with pytest.raises(TextEmbeddingError) as error:
        resolve_text_embeddings(NAMES)
    message = one_line(error)
    assert "'clip' package is not installed (pip install git+" in message
    assert (
        f", and no CLIP ViT-B/32 weights on disk (looked for ViT-B-32.pt in {tmp_path / 'a'}; get it "
        in message
    )
    assert f"from {clip_text.CLIP_WEIGHTS.url} or pass clip_weights=PATH)" in message
    missing = rf"installed \(.*\), and CLIP weights not found: {tmp_path}/b.pt\); no table"
    with pytest.raises(TextEmbeddingError, match=missing):
        resolve_text_embeddings(NAMES, clip_weights=tmp_path / "b.pt")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ViT-B-32.pt").write_bytes(b"w")  # there: not hashed, and not named
    with pytest.raises(TextEmbeddingError) as error:
        resolve_text_embeddings(NAMES)
    assert "weights" not in one_line(error).split("; no table given")[0]


def test_without_clip_the_missing_mobileclip_file_is_named_too(no_clip, tmp_path, monkeypatch) -> None:
    from detection import mobileclip

    monkeypatch.setattr(mobileclip, "mobileclip_candidates", lambda filename: [tmp_path / filename])
    with pytest.raises(TextEmbeddingError) as error:
        resolve_text_embeddings(NAMES, encoder="mobileclip:blt", family="YOLOE")
    message = one_line(error)
    assert "'clip' package is not installed (pip install git+" in message
    assert (
        f", and no MobileCLIP mobileclip:blt weights on disk (looked for mobileclip_blt.ts in {tmp_path};"
        in message
    )
    (tmp_path / "mobileclip_blt.ts").write_bytes(b"w")
    with pytest.raises(TextEmbeddingError) as error:
        resolve_text_embeddings(NAMES, encoder="mobileclip:blt", family="YOLOE")
    assert "weights" not in one_line(error).split("; no table given")[0]


# --- command line --------------------------------------------------------------------------------


def test_cli_fixed_table_says_closed_set(tmp_path: Path, capsys, tiny_dataset: Path) -> None:
    out = tmp_path / "t.pt"
    assert main(["--data", str(tiny_dataset / "data.yaml"), "--fixed", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert CLOSED_SET_NOTE in printed and "wrote 4 512-d vectors" in printed
    assert set(load_table(out, NAMES).vectors) == set(NAMES)


def test_cli_data_may_name_the_data_set_folder(tmp_path: Path, capsys, tiny_dataset: Path) -> None:
    # --data <folder> said 'data file ... is a folder: pass .../data.yaml', as detection.evaluate did
    out = tmp_path / "t.pt"
    assert main(["--data", str(tiny_dataset), "--fixed", "--out", str(out)]) == 0
    assert f"data={tiny_dataset} " in capsys.readouterr().out  # the train line: data= takes it too
    assert set(load_table(out, NAMES).vectors) == set(NAMES)


def test_cli_data_with_a_class_named_good_is_refused_as_training_refuses_it(
    tmp_path: Path, capsys, tiny_dataset: Path
) -> None:
    data = copy_with_names(tiny_dataset, tmp_path / "copy", {0: "good", 1: "color", 2: "flip", 3: "scratch"})
    assert main(["--data", str(data), "--fixed", "--out", str(tmp_path / "t.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: data file {data} has a class named 'good', ") and err.count("\n") == 1
    assert not (tmp_path / "t.pt").exists()


@pytest.mark.parametrize("given", ["folder", "data.yaml"])
def test_cli_an_out_inside_the_data_set_read_is_refused(
    tmp_path: Path, capsys, tiny_dataset: Path, given
) -> None:
    # --data DS --out DS/t.pt wrote t.pt and t.json into the data set, which every other command refuses
    data = copy_with_names(tiny_dataset, tmp_path / "ds", dict(enumerate(NAMES)))
    out = data.parent / "t.pt"
    before = sorted(data.parent.iterdir())
    assert (
        main(["--data", str(data.parent if given == "folder" else data), "--fixed", "--out", str(out)]) == 2
    )
    assert capsys.readouterr().err == (
        f"error: --out {out} is inside the data set {data.parent} whose class names it reads (files written "
        "into a data set are in the way of its next conversion); write the table outside it, e.g. "
        f"--out {tmp_path / 't.pt'}\n"
    )
    assert sorted(data.parent.iterdir()) == before


def test_cli_names_given_twice_are_all_in_the_table(tmp_path: Path, capsys) -> None:
    # --names scratch --names bent wrote bent alone (argparse kept the last flag), silently
    out = tmp_path / "t.pt"
    assert main(["--names", "scratch", "--names", "bent", "--fixed", "--out", str(out)]) == 0
    assert "wrote 2 512-d vectors" in capsys.readouterr().out
    assert set(load_table(out, ["scratch", "bent"]).vectors) == {"scratch", "bent"}


def test_cli_with_clip_writes_an_open_vocabulary_table(tmp_path: Path, capsys, fake_clip) -> None:
    weights = tmp_path / "own.pt"
    weights.write_bytes(b"w")
    out = tmp_path / "t.pt"
    assert main(["--names", "scratch", "bent", "--clip-weights", str(weights), "--out", str(out)]) == 0
    assert "closed-set" not in capsys.readouterr().out
    assert load_table(out, ["scratch", "bent"]).open_vocabulary


def test_cli_without_clip_is_one_error_line(tmp_path: Path, capsys, no_clip, monkeypatch) -> None:
    monkeypatch.setattr(clip_text, "clip_weight_candidates", lambda: [tmp_path / "a" / "ViT-B-32.pt"])
    assert main(["--names", "scratch", "--out", str(tmp_path / "t.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the 'clip' package is not installed") and err.count("\n") == 1
    assert "or pass --clip-weights PATH (or --download)); without CLIP" in err  # the weights named too
    assert err.endswith(
        "; without CLIP, --fixed writes seeded random unit vectors instead (a closed-set detector)\n"
    )
    assert not (tmp_path / "t.pt").exists()


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ("", "error: --out {tmp} is a folder; give the table's file name"),  # was IsADirectoryError
        # it said 'cannot create folder .../t.pt', the table file
        ("notes.txt/t.pt", "error: cannot create file {tmp}/notes.txt/t.pt: {tmp}/notes.txt is a file"),
    ],
)
def test_cli_out_that_cannot_be_written_is_one_line(tmp_path: Path, capsys, out: str, expected: str) -> None:
    (tmp_path / "notes.txt").write_text("kept\n")
    assert main(["--names", "scratch", "--fixed", "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected.format(tmp=tmp_path)) and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_cli_out_through_a_link_loop_is_refused_before_the_table(link_loop: Path, capsys) -> None:
    # it made the table, then said 'cannot write loop/t.pt: [Errno 17] File exists: 'loop''
    assert main(["--names", "scratch", "--fixed", "--out", str(link_loop / "t.pt")]) == 2
    assert_link_loop_line(capsys.readouterr().err, f"error: --out {link_loop / 't.pt'}: ", link_loop)
    assert sorted(p.name for p in link_loop.parent.iterdir()) == ["loop"]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([""], "error: --names: '' is an empty class name"),  # was a class called ''
        (["scratch", " "], "error: --names: ' ' is an empty class name"),
        (["bent lead/"], "error: --names: 'bent lead/' has an empty '/'-separated synonym"),
        (["scratch", "bent", "scratch"], "error: --names lists 'scratch' twice"),  # was one entry
        # MVTec's defect-free folder, the call of every image without a box: was written to the table
        (
            ["scratch", "good"],
            "error: --names has a class named 'good', the call of an image without defects, so no image "
            "could be told defective: name the class otherwise\n",  # not sent to the converters' options
        ),
    ],
)
def test_cli_bad_names_are_one_line(tmp_path: Path, capsys, names: list[str], expected: str) -> None:
    assert main(["--names", *names, "--fixed", "--out", str(tmp_path / "t.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(expected) and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_negative_seed_is_a_seed_like_any_other(tmp_path: Path) -> None:
    # the seed only salts a sha256 of each name, so -1 is as good a seed as 1
    assert main(["--names", "scratch", "--fixed", "--seed", "-1", "--out", str(tmp_path / "t.pt")]) == 0
    vectors = load_table(tmp_path / "t.pt", ["scratch"]).vectors
    assert torch.equal(vectors["scratch"], fixed_vector("scratch", seed=-1))
    assert not torch.equal(vectors["scratch"], fixed_vector("scratch", seed=1))


@pytest.mark.parametrize("name", ["te.txt", "table", "names.pth"])
def test_cli_out_without_the_pt_suffix_is_refused(tmp_path: Path, capsys, name: str) -> None:
    # te.txt was written as a torch file, with te.json beside it
    out = tmp_path / name
    assert main(["--names", "scratch", "--fixed", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: --out {out} needs the .pt suffix (e.g. names.pt)\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # each was taken without a word: --fixed --device cuda read as if the vectors were made on the GPU
        (["--fixed", "--device", "cuda"], "--device is CLIP's: --fixed makes its vectors without CLIP"),
        (["--fixed", "--device", "cpu"], "--device is CLIP's: --fixed makes its vectors without CLIP"),
        (["--fixed", "--clip-weights", "ViT-B-32.pt"], "--clip-weights is CLIP's: --fixed makes its vectors"),
        (["--fixed", "--download"], "--download is CLIP's: --fixed makes its vectors without CLIP"),
        (
            ["--seed", "3"],
            "--seed is the seed of --fixed vectors: it needs --fixed (CLIP's vectors take none)",
        ),
    ],
)
def test_cli_options_the_source_of_vectors_ignores_are_refused(
    tmp_path: Path, capsys, flags: list[str], expected: str
) -> None:
    assert main(["--names", "scratch", *flags, "--out", str(tmp_path / "t.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {expected}") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_out_whose_path_is_not_utf8_is_one_line(tmp_path: Path, capsys, not_utf8_folder: Path) -> None:
    # a Latin-1 folder name from an old Windows share: the table was written, then the closing line
    # printing its path stopped with a UnicodeEncodeError on a UTF-8 terminal
    assert main(["--names", "scratch", "--fixed", "--out", str(not_utf8_folder / "t.pt")]) == 2
    assert capsys.readouterr().err == (
        f"error: --out has a name that is not UTF-8, b'bad\\xff' (in {tmp_path}): rename it, or pass another "
        "folder (the commands' files record the path, and JSON and YAML readers refuse such names)\n"
    )
    assert list(not_utf8_folder.iterdir()) == []


def test_cli_out_named_like_its_sidecar_is_refused(tmp_path: Path, capsys) -> None:
    # t.json was written as the table, then replaced by its own sidecar: a table file that is JSON
    assert main(["--names", "scratch", "--fixed", "--out", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {tmp_path}/t.json is the name of the table's .json sidecar")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("taken", ["best.pt", "best.json"])
def test_cli_out_taken_by_another_file_is_refused(tmp_path: Path, capsys, taken: str) -> None:
    # before, a model's best.pt (or a data.json beside the name) was replaced by the table
    (tmp_path / taken).write_bytes(b"a model's weights\n")
    assert main(["--names", "scratch", "--fixed", "--out", str(tmp_path / "best.pt")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: --out {tmp_path}/best.pt: {tmp_path}/{taken} exists and is not a text-embedding table "
        "written by this command (it would be replaced); give another file name\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == [taken]
    assert (tmp_path / taken).read_bytes() == b"a model's weights\n"


def test_cli_rewrites_its_own_earlier_table(tmp_path: Path) -> None:
    out = tmp_path / "t.pt"
    assert main(["--names", "scratch", "--fixed", "--out", str(out)]) == 0
    assert main(["--names", "scratch", "bent", "--fixed", "--out", str(out)]) == 0
    assert set(load_table(out, ["scratch", "bent"]).vectors) == {"scratch", "bent"}
    assert json.loads((tmp_path / "t.json").read_text())["names"] == ["scratch", "bent"]


def test_each_class_is_set_by_its_first_synonym() -> None:
    assert class_texts(["scratch", "bent lead / bent pin", "hole/"]) == ["scratch", "bent lead", "hole"]


def test_only_a_closed_set_table_carries_the_closed_set_note(tmp_path: Path) -> None:
    fixed = fixed_embeddings(NAMES)
    save_table(fixed, tmp_path / "fixed.pt")
    assert json.loads((tmp_path / "fixed.json").read_text())["note"] == CLOSED_SET_NOTE
    text_model = TextEmbeddings(fixed.vectors, source="CLIP ViT-B/32", open_vocabulary=True)
    save_table(text_model, tmp_path / "clip.pt")
    sidecar = json.loads((tmp_path / "clip.json").read_text())
    assert "note" not in sidecar and sidecar["open_vocabulary"] is True


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("failing", [1, 2], ids=["first-file", "second-file"])
def test_a_table_whose_writing_fails_is_never_described_by_another_tables_sidecar(
    tmp_path: Path, monkeypatch, capsys, failing: int
) -> None:
    # the table was replaced, its sidecar not: --fixed random vectors read back as "CLIP, open vocabulary"
    out = tmp_path / "names.pt"
    clip = TextEmbeddings(
        fixed_embeddings(NAMES).vectors, source="CLIP ViT-B/32 (clip.pt)", open_vocabulary=True
    )
    save_table(clip, out)
    fixed = fixed_embeddings(NAMES, seed=7)
    real_open, opened = open, []

    def open_on_full_disk(path, mode="r", *args, **kwargs):  # the failing-th file written goes to a full disk
        opened.append(path)
        return (
            real_open("/dev/full", "wb") if len(opened) == failing else real_open(path, mode, *args, **kwargs)
        )

    monkeypatch.setattr(common.io, "open", open_on_full_disk, raising=False)
    assert exit_code(lambda: save_table(fixed, out)) == 1
    assert capsys.readouterr().err.startswith("error: No space left on device: ")
    monkeypatch.undo()
    loaded = load_table(out, NAMES)
    written_with = clip if torch.equal(loaded.vectors["bent"], clip.vectors["bent"]) else fixed
    origin = loaded.source.removeprefix(f"table file {out} (").removesuffix(")")
    assert origin == written_with.source or origin.startswith(
        "origin not recorded: names.json describes another table"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["names.json", "names.pt"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_first_table_whose_writing_fails_leaves_no_sidecar_alone(tmp_path: Path, monkeypatch) -> None:
    real_open = open

    def open_on_full_disk(path, mode="r", *args, **kwargs):  # the table's bytes go to a full disk
        if Path(path).name.startswith(".names.pt."):
            return real_open("/dev/full", "wb")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(common.io, "open", open_on_full_disk, raising=False)
    with pytest.raises(OSError, match="No space left on device"):
        save_table(fixed_embeddings(NAMES), tmp_path / "names.pt")
    assert list(tmp_path.iterdir()) == []


def test_cli_train_line_can_be_pasted_when_the_table_path_has_a_space(tmp_path, capsys, tiny_dataset) -> None:
    out = tmp_path / "my tables" / "t.pt"
    assert main(["--data", str(tiny_dataset / "data.yaml"), "--fixed", "--out", str(out)]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("train with: ")]
    assert shlex.split(line)[-1] == f"text_embeddings={out}"
    # the data set it was made for, on the benchmarks' head (was yolo_world.yaml: random weights, no data=)
    config, data = shlex.split(line)[6:8]
    assert (config, data) == ("configs/detection/yolo11n_world.yaml", f"data={tiny_dataset / 'data.yaml'}")


def test_help_names_the_defaults_and_both_open_vocabulary_families(capsys) -> None:
    # --device and --seed showed no default (docs/detection.md: --device defaults to cpu, --seed 0), and the
    # table was said to be for YOLO-World alone: YOLOE trains with it too
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "device for CLIP (default: cpu)" in text and "seed of --fixed vectors (default: 0)" in text
    assert "for YOLO-World or YOLOE training" in text


def test_clip_candidates_without_a_home_folder_are_the_cache_and_ultralytics_folders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a container run with an arbitrary user id and no HOME: ~/.cache/clip raised RuntimeError (a traceback)
    # though MVTEC_FINETUNE_CACHE named the cache; no home folder holds no file
    without_home(monkeypatch)
    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "c"))
    candidates = clip_text.clip_weight_candidates()
    assert len(candidates) == 2 and candidates[0] == tmp_path / "c" / "weights" / "ViT-B-32.pt"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_names_the_table_once(tmp_path: Path, monkeypatch, capsys, tiny_dataset) -> None:
    # was "cannot write T/names.pt: [Errno 28] No space left on device: 'T/names.pt'"
    out, real_open = tmp_path / "names.pt", open

    def open_on_full_disk(path, mode="r", *args, **kwargs):  # the table's bytes go to a full disk
        if Path(path).name.startswith(".names.pt."):
            return real_open("/dev/full", "wb")
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(common.io, "open", open_on_full_disk, raising=False)
    assert main(["--data", str(tiny_dataset / "data.yaml"), "--fixed", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"error: cannot write {out}: No space left on device"
