"""The deployment ONNX file: segment-anything's interface, PyTorch's logits, a sidecar naming its encoder."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything.utils.onnx import SamOnnxModel
from segment_anything.utils.transforms import ResizeLongestSide

from common.errors import UserError
from common.io import sha256_file
from segmentation import decoder_onnx
from segmentation.colour_prompt import ColourPrompt
from segmentation.decoder_onnx import INPUT_NAMES, OUTPUT_NAMES, export_decoder, missing_packages
from segmentation.embeddings import ImageEmbedding, encoder_fingerprint
from segmentation.export import (
    Export,
    Weights,
    build_parser,
    check_out,
    export_onnx,
    interface,
    load_weights,
    main,
    run,
    sidecar_path,
)
from segmentation.finetuned import save_decoder, save_full
from segmentation.onnx_check import CHECK_PROMPTS, Agreement, refuse_disagreement
from segmentation.predict import box_logits, decode, upscale_logits
from tests.conftest import assert_link_loop_line

pytestmark = pytest.mark.skipif(bool(missing_packages()), reason=f"not installed: {missing_packages()}")

BASE_SHA256 = "ab" * 32


def onnx_session(path):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def embedding_for(sam, original_size, seed=0) -> ImageEmbedding:
    generator = torch.Generator().manual_seed(seed)
    shape = (sam.prompt_encoder.embed_dim, *sam.prompt_encoder.image_embedding_size)
    input_size = ResizeLongestSide.get_preprocess_shape(*original_size, sam.image_encoder.img_size)
    return ImageEmbedding(torch.randn(shape, generator=generator), original_size, input_size)


def official_feeds(sam, emb, *, points, labels, box=None) -> dict[str, np.ndarray]:
    """Inputs built as segment-anything's ``onnx_model_example.ipynb`` builds them, by hand."""
    coords, labels = np.asarray(points, np.float32), np.asarray(labels, np.float32)
    if box is None:  # no box: a padding point
        coords, labels = np.concatenate([coords, [[0.0, 0.0]]]), np.concatenate([labels, [-1.0]])
    else:
        coords = np.concatenate([coords, np.asarray(box, np.float32).reshape(2, 2)])
        labels = np.concatenate([labels, [2.0, 3.0]])
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    mask_size = sam.prompt_encoder.mask_input_size
    return {
        "image_embeddings": emb.embedding.numpy()[None],
        "point_coords": transform.apply_coords(coords, emb.original_size)[None].astype(np.float32),
        "point_labels": labels[None].astype(np.float32),
        "mask_input": np.zeros((1, 1, *mask_size), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
        "orig_im_size": np.array(emb.original_size, np.float32),
    }


def perturbed(module: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """``module`` with "fine-tuned" weights: noise added in place."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return module


@pytest.mark.parametrize("return_single_mask", [False, True])
def test_onnx_runtime_matches_torch_on_every_prompt(tiny_sam, tmp_path, return_single_mask):
    done = export_onnx(
        Weights(tiny_sam, "tiny", BASE_SHA256),
        tmp_path / "decoder.onnx",
        return_single_mask=return_single_mask,
    )
    assert set(done.agreement) == {"point", "points", "box", "box+points", "mask input"} == set(CHECK_PROMPTS)
    for kind, result in done.agreement.items():
        assert result.logit_diff < 1e-3 and result.logit_diff <= 1e-4 * result.logit_scale, kind
        assert result.iou_diff < 1e-5, kind
    assert sorted(path.name for path in tmp_path.iterdir()) == ["decoder.onnx", "decoder.onnx.json"]


@pytest.mark.parametrize("opset", [17, 11, 20])
def test_inputs_and_outputs_are_segment_anythings(tiny_sam, opset):
    import onnx

    buffer = io.BytesIO()
    export_decoder(tiny_sam, buffer, opset=opset)
    graph = onnx.load_from_string(buffer.getvalue())
    assert [value.name for value in graph.graph.input] == list(INPUT_NAMES)
    assert [value.name for value in graph.graph.output] == list(OUTPUT_NAMES)
    assert INPUT_NAMES == (
        "image_embeddings",
        "point_coords",
        "point_labels",
        "mask_input",
        "has_mask_input",
        "orig_im_size",
    )
    assert OUTPUT_NAMES == ("masks", "iou_predictions", "low_res_masks")
    dims = {
        value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in graph.graph.input
    }
    assert dims["point_coords"] == [1, "num_points", 2] and dims["point_labels"] == [1, "num_points"]
    assert dims["image_embeddings"] == [1, 32, 16, 16] and dims["mask_input"] == [1, 1, 64, 64]
    assert {entry.domain: entry.version for entry in graph.opset_import}[""] == opset


def test_sidecar_interface_gives_the_graphs_input_shapes(tiny_sam):
    import onnx

    buffer = io.BytesIO()
    export_decoder(tiny_sam, buffer)
    graph = onnx.load_from_string(buffer.getvalue())
    dims = {
        value.name: [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in graph.graph.input
    }
    described = interface(tiny_sam, return_single_mask=False)["inputs"]
    for name in ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"):
        assert described[name]["shape"] == dims[name], name


def test_bad_opset_is_refused(tiny_sam):
    with pytest.raises(ValueError, match="opset must be in 11..20, got 9"):
        export_decoder(tiny_sam, io.BytesIO(), opset=9)


@pytest.mark.parametrize(
    ("original_size", "n_points"),
    [
        ((1500, 2250), 1),  # the size the graph is traced with
        ((480, 640), 3),  # another aspect ratio: the stock SamOnnxModel crops it as 1500 x 2250
        ((700, 200), 6),  # portrait, more points
        ((256, 256), 2),  # square: nothing to crop
    ],
)
def test_masks_follow_the_image_size_and_any_number_of_points(tiny_sam, tmp_path, original_size, n_points):
    export_decoder(tiny_sam, tmp_path / "decoder.onnx")
    emb = embedding_for(tiny_sam, original_size)
    h, w = original_size
    points = np.random.default_rng(0).uniform(0, 1, (n_points, 2)) * [w, h]
    feeds = official_feeds(tiny_sam, emb, points=points, labels=np.ones(n_points))
    masks, iou, low_res = onnx_session(tmp_path / "decoder.onnx").run(None, feeds)
    assert masks.shape == (1, 4, h, w) and iou.shape == (1, 4) and low_res.shape == (1, 4, 64, 64)
    expected = upscale_logits(tiny_sam, torch.from_numpy(low_res), emb).numpy()
    np.testing.assert_allclose(masks, expected, atol=1e-4, rtol=0)


def test_fed_the_notebook_way_it_gives_sam_predictors_masks(tiny_sam, tmp_path):
    perturbed(tiny_sam.mask_decoder)
    export_decoder(tiny_sam, tmp_path / "decoder.onnx", return_single_mask=True)
    emb = embedding_for(tiny_sam, (480, 640), seed=3)
    box, point = [100.0, 50.0, 400.0, 300.0], [[250.0, 180.0]]
    feeds = official_feeds(tiny_sam, emb, points=point, labels=[1], box=box)
    masks, iou, _ = onnx_session(tmp_path / "decoder.onnx").run(None, feeds)
    with torch.inference_mode():  # three points (a click and two corners): the single-mask token
        logits, expected_iou = decode(
            tiny_sam, emb, boxes=[box], point_coords=[point], point_labels=[[1]], multimask_output=False
        )
        expected = upscale_logits(tiny_sam, logits, emb)
    np.testing.assert_allclose(masks, expected.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(iou, expected_iou.numpy(), atol=1e-5, rtol=0)


def test_stock_crop_is_caught_and_nothing_is_written(tiny_sam, tmp_path, monkeypatch):
    # SamOnnxModel's own mask_postprocessing bakes the traced image size into the graph.
    monkeypatch.setattr(decoder_onnx, "_mask_postprocessing", SamOnnxModel.mask_postprocessing)
    with pytest.raises(UserError, match="differs from PyTorch's .* nothing written"):
        export_onnx(Weights(tiny_sam, "tiny", BASE_SHA256), tmp_path / "decoder.onnx")
    assert list(tmp_path.iterdir()) == []


def test_export_to_a_path_is_atomic_and_keeps_the_training_flag(tiny_sam, tmp_path):
    tiny_sam.train()
    export_decoder(tiny_sam, tmp_path / "sub" / "decoder.onnx")
    assert tiny_sam.training and tiny_sam.mask_decoder.training
    assert [path.name for path in (tmp_path / "sub").iterdir()] == ["decoder.onnx"]
    onnx_session(tmp_path / "sub" / "decoder.onnx")


@pytest.mark.parametrize("return_single_mask", [False, True])
def test_sidecar_and_metadata_name_the_encoder(tiny_sam, tmp_path, return_single_mask):
    out = tmp_path / "decoder.onnx"
    export_onnx(Weights(tiny_sam, "tiny", BASE_SHA256), out, return_single_mask=return_single_mask)
    record = json.loads((tmp_path / "decoder.onnx.json").read_text())
    identity = {
        "model": "tiny",
        "base_checkpoint_sha256": BASE_SHA256,
        "encoder_fingerprint": encoder_fingerprint(tiny_sam),
    }
    assert {key: record[key] for key in identity} == identity
    assert onnx_session(out).get_modelmeta().custom_metadata_map == identity
    assert record["onnx_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (record["img_size"], record["opset"], record["return_single_mask"]) == (
        256,
        17,
        return_single_mask,
    )
    assert list(record["inputs"]) == list(INPUT_NAMES) and list(record["outputs"]) == list(OUTPUT_NAMES)
    assert record["inputs"]["image_embeddings"]["shape"] == [1, 32, 16, 16]
    assert record["outputs"]["masks"]["shape"] == [1, 1 if return_single_mask else 4, "H", "W"]
    assert set(record["check"]["prompts"]) == set(CHECK_PROMPTS)


@pytest.mark.parametrize(
    ("make", "out", "fragment"),
    [
        (
            lambda root: (root / "file").write_text("x"),
            "file/decoder.onnx",
            "^cannot create file {root}/file/decoder.onnx: {root}/file is a file, not a folder$",
        ),
        (
            lambda root: (root / "file").write_text("x"),
            "file/sub/decoder.onnx",
            "^cannot create file {root}/file/sub/decoder.onnx: {root}/file is a file, not a folder$",
        ),
        (lambda root: (root / "dir").mkdir(), "dir", "it is a folder"),
        (lambda root: (root / "d.onnx.json").mkdir(), "d.onnx", "d.onnx.json: it is a folder"),
        (lambda root: (root / "decoder.pt").write_text("x"), "decoder.pt", "would overwrite the input"),
        (lambda root: (root / "notes.txt").write_text("x"), "notes.txt", "needs the .onnx suffix"),
    ],
    ids=[
        "parent is a file",
        "ancestor is a file",
        "out is a folder",
        "sidecar is a folder",
        "out is the input",
        "out is not an onnx file",  # was replaced without a word
    ],
)
def test_bad_out_is_refused(tmp_path, make, out, fragment):
    make(tmp_path)
    with pytest.raises(UserError, match=fragment.format(root=re.escape(str(tmp_path)))):
        check_out(tmp_path / out, inputs=[tmp_path / "decoder.pt", None])


def test_an_out_in_a_read_only_folder_is_refused(tmp_path, monkeypatch):
    # common.folders.check_creatable's rule and words (check_out said 'cannot write <out>: ...' of its own)
    import common.folders

    writable = os.access
    monkeypatch.setattr(  # os.access replaced: the tests may run as root
        common.folders.os, "access", lambda path, mode: Path(path) != tmp_path and writable(path, mode)
    )
    message = f"cannot create file {tmp_path / 'decoder.onnx'}: {tmp_path} is not writable"
    with pytest.raises(UserError, match=f"^{re.escape(message)}$"):
        check_out(tmp_path / "decoder.onnx")


def test_an_out_whose_path_is_not_utf8_is_refused(tmp_path, not_utf8_folder):
    # a Latin-1 folder name from an old Windows share: the closing line printing it stopped with a
    # UnicodeEncodeError on a UTF-8 terminal once the model was written
    message = f"--out has a name that is not UTF-8, b'bad\\xff' (in {tmp_path}): rename it"
    with pytest.raises(UserError, match="^" + re.escape(message)):
        check_out(not_utf8_folder / "decoder.onnx")
    assert check_out(tmp_path / "M\u00fcll" / "decoder.onnx")  # a UTF-8 name: taken


@pytest.mark.parametrize("inputs", [[], ["decoder.pt"]])
def test_an_out_through_a_link_loop_is_refused_before_loading(link_loop, inputs):
    # with no input it passed, and the weights were loaded next; with one, Path.resolve's
    # RuntimeError 'Symlink loop from ...' stopped it
    with pytest.raises(UserError) as error:
        check_out(link_loop / "decoder.onnx", inputs=[link_loop.parent / name for name in inputs])
    assert_link_loop_line(f"error: {error.value}\n", f"--out {link_loop / 'decoder.onnx'}: ", link_loop)


def _other_onnx_model(path: Path) -> None:
    """An ONNX model of one Relu and no metadata: a detector's export, say."""
    import onnx

    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])],
        "other",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph), str(path))


@pytest.mark.parametrize(
    ("make", "taken"),
    [
        (_other_onnx_model, "yolo11n.onnx"),
        (lambda path: path.write_bytes(b""), "yolo11n.onnx"),
        (
            lambda path: path.with_name("yolo11n.onnx.json").write_text('{"classes": ["nut"]}'),
            "yolo11n.onnx.json",
        ),
    ],
    ids=["another onnx model", "an empty file", "another json beside it"],
)
def test_an_out_taken_by_a_file_no_export_wrote_is_refused_before_loading(tmp_path, capsys, make, taken):
    # was replaced without a word once the decoder was exported (--out yolo11n.onnx for the detector's file)
    out = tmp_path / "yolo11n.onnx"
    make(out)
    before = {path: path.read_bytes() for path in tmp_path.iterdir()}
    assert main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2
    kind = "the sidecar of an ONNX decoder" if taken.endswith(".json") else "an ONNX decoder"
    assert capsys.readouterr().err == (
        f"error: --out {out}: {tmp_path / taken} exists and is not {kind} written by this command (it would "
        "be replaced); give another file name\n"
    )
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_an_earlier_export_is_replaced_even_without_its_sidecar(tiny_registry, tmp_path):
    # a run stopped between the two files leaves the model alone: its rerun must not be refused
    out = tmp_path / "zero.onnx"
    exported(["--model", "tiny", "--out", str(out)])
    assert check_out(out) == out
    sidecar_path(out).unlink()
    assert check_out(out) == out
    done, record = exported(["--model", "tiny", "--return-single-mask", "--out", str(out)])
    assert (
        record["return_single_mask"] and record["onnx_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    )


def test_out_suffix_is_matched_in_any_case(tmp_path):
    assert check_out(tmp_path / "decoder.ONNX") == tmp_path / "decoder.ONNX"


@pytest.fixture
def tiny_registry(tiny_sam_builder, tmp_path, monkeypatch):
    """A registry model "tiny" whose "official" weights sit in an isolated cache: no file is fetched."""
    from common.weights import CheckpointSpec, weights_dir
    from segmentation.models import SAM_MODELS, SamModel

    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    official = save_full(tiny_sam_builder(seed=3), weights_dir() / "tiny_sam.pth")
    spec = CheckpointSpec("tiny", "tiny_sam.pth", "file:///nowhere", sha256_file(official), size=None)

    def build(checkpoint=None):
        sam = tiny_sam_builder(seed=9)
        if checkpoint is not None:
            sam.load_state_dict(torch.load(checkpoint, weights_only=True))
        return sam

    monkeypatch.setitem(SAM_MODELS, "tiny", SamModel("tiny", build, spec, "test model"))
    return official


def exported(args: list[str]):
    """``python -m segmentation.export ARGS`` in-process: the Export and the sidecar."""
    done = run(build_parser().parse_args(args))
    return done, json.loads(done.sidecar.read_text())


def test_decoder_pt_is_exported_with_its_base(tiny_registry, tiny_sam_builder, tmp_path, monkeypatch):
    sam = tiny_sam_builder(seed=3)  # the base weights of tiny_registry, then "fine-tuned"
    perturbed(sam.mask_decoder)
    decoder = save_decoder(
        sam, tmp_path / "run" / "decoder.pt", model="tiny", base_checkpoint_sha256=sha256_file(tiny_registry)
    )
    done, record = exported(["--checkpoint", str(decoder), "--out", str(tmp_path / "out" / "d.onnx")])
    assert (record["model"], record["checkpoint"]) == ("tiny", str(decoder))
    assert record["base_checkpoint_sha256"] == sha256_file(tiny_registry)
    assert record["encoder_fingerprint"] == encoder_fingerprint(sam)
    assert done.max_logit_diff < 1e-3
    monkeypatch.chdir(tmp_path)  # a relative --checkpoint is recorded absolute (it was recorded as typed)
    _, relative = exported(["--checkpoint", "run/decoder.pt", "--out", str(tmp_path / "out" / "r.onnx")])
    assert relative["checkpoint"] == str(decoder)
    # The tuned decoder went out, not the base one.
    emb = embedding_for(sam, (480, 640))
    feeds = official_feeds(sam, emb, points=[[300.0, 200.0]], labels=[1])
    low_res = onnx_session(done.onnx).run(["low_res_masks"], feeds)[0]
    with torch.inference_mode():
        expected, _ = decode(sam, emb, point_coords=[[[300.0, 200.0]]], point_labels=[[1]])
    np.testing.assert_allclose(low_res[:, 1:], expected.numpy(), atol=1e-4, rtol=0)


def test_a_colour_head_goes_into_the_sidecar_not_the_graph(tiny_registry, tiny_sam_builder, tmp_path, capsys):
    from segmentation.colour_head import ColourHead

    head = ColourHead((1.0, -0.5, 0.25), val_iou=(0.5, 0.6))
    decoder = save_decoder(
        tiny_sam_builder(seed=3),
        tmp_path / "run" / "decoder.pt",
        model="tiny",
        base_checkpoint_sha256=sha256_file(tiny_registry),
        colour_head=head,
    )
    _, record = exported(["--checkpoint", str(decoder), "--out", str(tmp_path / "d.onnx")])
    assert record["colour_head"]["weights"] == [1.0, -0.5, 0.25]
    assert ColourHead.from_dict(record["colour_head"]) == head
    assert "CIE76" in record["colour_head"]["rule"]
    assert "carries a colour head" in capsys.readouterr().out
    _, plain = exported(["--model", "tiny", "--out", str(tmp_path / "zero.onnx")])
    assert plain["colour_head"] is None
    # it said 'wrote d.onnx (...) from decoder.pt and d.onnx.json': the sidecar read as a second source
    text = capsys.readouterr().out
    assert f"and its sidecar {tmp_path / 'zero.onnx.json'} from the zero-shot tiny weights;" in text
    # the printed difference is set against what the check holds it to: relative to the largest logit;
    # it read 'max |logit diff| 9.0e-04, 2.0e-05 of the largest logit (limit 0.001)', a near miss at a glance
    printed = re.search(
        r"on 5 prompts: max \|logit diff\| (\S+) absolute, (\S+) relative to the largest logit "
        r"\(relative limit 0.001\), ",
        text,
    )
    assert printed and float(printed[2]) <= float(printed[1])
    for check in plain["check"]["prompts"].values():
        assert check["logit_scale"] >= 1 and check["max_abs_logit_diff"] <= 1e-3 * check["logit_scale"]


def test_the_wrote_line_gives_the_iou_difference_the_sidecar_records(tiny_registry, tmp_path, capsys):
    # the sidecar recorded max_abs_iou_diff, held to the limit too, but the wrote line left it out
    _, record = exported(["--model", "tiny", "--out", str(tmp_path / "zero.onnx")])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    printed = re.search(r", max \|IoU diff\| (\S+) \(limit 0.001\)$", line)
    assert printed, line
    worst = max(check["max_abs_iou_diff"] for check in record["check"]["prompts"].values())
    assert printed[1] == f"{worst:.1e}"


def test_a_colour_prompt_goes_into_the_sidecar_and_its_map_into_mask_input(
    tiny_registry, tiny_sam_builder, tmp_path, capsys
):
    prompt = ColourPrompt(centre=18.0, scale=3.0, clip=9.0)
    sam = tiny_sam_builder(seed=3)
    perturbed(sam.prompt_encoder.mask_downscaling)  # trained with the prompt: the graph has the tuned one
    decoder = save_decoder(
        sam,
        tmp_path / "run" / "decoder.pt",
        model="tiny",
        prompt_encoder=True,
        base_checkpoint_sha256=sha256_file(tiny_registry),
        colour_prompt=prompt,
    )
    done, record = exported(["--checkpoint", str(decoder), "--out", str(tmp_path / "d.onnx")])
    entry = record["colour_prompt"]
    assert ColourPrompt.from_dict({key: entry[key] for key in ("centre", "scale", "clip")}) == prompt
    assert "CIE76" in entry["rule"] and "has_mask_input = 1" in entry["rule"]
    assert "carries a colour prompt" in capsys.readouterr().out
    # A deployment's mask_input, the box's map, gives the tuned model's mask with that map.
    emb = embedding_for(sam, (480, 640))
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    box = [100.0, 120.0, 300.0, 260.0]
    maps = prompt.maps(sam, emb, rgb, np.array([box]))
    feeds = official_feeds(sam, emb, points=np.zeros((0, 2)), labels=[], box=box)
    session = onnx_session(done.onnx)
    without = session.run(["masks"], feeds)[0][0, 0]
    feeds.update(mask_input=maps.numpy(), has_mask_input=np.ones(1, np.float32))
    masks = session.run(["masks"], feeds)[0][0, 0]
    expected, _ = box_logits(sam, emb, [box], mask_input=maps)
    np.testing.assert_allclose(masks, expected[0], atol=1e-3, rtol=0)
    assert np.abs(without - expected[0]).max() > 0.1
    _, plain = exported(["--model", "tiny", "--out", str(tmp_path / "zero.onnx")])
    assert plain["colour_prompt"] is None


def test_a_colour_prompt_for_a_graph_without_mask_input_is_refused(
    tiny_registry, tiny_sam_builder, tmp_path, capsys, monkeypatch
):
    decoder = save_decoder(
        tiny_sam_builder(seed=3), tmp_path / "decoder.pt", model="tiny", colour_prompt=ColourPrompt()
    )
    renamed = tuple("mask" if name == "mask_input" else name for name in INPUT_NAMES)
    monkeypatch.setattr(decoder_onnx, "INPUT_NAMES", renamed)  # a graph of another interface
    assert main(["--checkpoint", str(decoder), "--out", str(tmp_path / "d.onnx")]) == 2
    assert capsys.readouterr().err == (
        f"error: {decoder} carries a colour prompt, which SAM takes as mask_input, but the exported graph "
        f"has no mask_input input (it has {', '.join(renamed)}): nothing written\n"
    )
    assert not (tmp_path / "d.onnx").exists()


def test_full_state_dict_and_zero_shot(tiny_registry, tiny_sam_builder, tmp_path):
    full = save_full(perturbed(tiny_sam_builder(seed=4)), tmp_path / "sam_finetuned.pth")
    _, record = exported(["--checkpoint", str(full), "--model", "tiny", "--out", str(tmp_path / "full.onnx")])
    assert record["base_checkpoint_sha256"] == sha256_file(full) and record["checkpoint"] == str(full)
    _, record = exported(["--model", "tiny", "--return-single-mask", "--out", str(tmp_path / "zero.onnx")])
    assert record["base_checkpoint_sha256"] == sha256_file(tiny_registry) and record["checkpoint"] is None
    assert record["outputs"]["masks"]["shape"][1] == 1


def test_a_full_state_dict_beside_a_decoder_with_a_colour_head_is_noted_before_the_export(
    tiny_registry, tiny_sam_builder, tmp_path, capsys, monkeypatch
):
    # it exported sam_finetuned.pth with a sidecar whose colour_head is null, silently: a deployment
    # of the run's decoder went without the head its evaluation applied
    import segmentation.export as export_module
    from segmentation.colour_head import ColourHead

    sam = tiny_sam_builder(seed=3)
    head = ColourHead((1.0, -0.5, 0.25))
    decoder = save_decoder(sam, tmp_path / "run" / "decoder.pt", model="tiny", colour_head=head)
    full = save_full(sam, tmp_path / "run" / "sam_finetuned.pth")
    said = []
    export = export_module.export_onnx

    def recording_export(*args, **kwargs):
        said.append(capsys.readouterr().err)
        return export(*args, **kwargs)

    monkeypatch.setattr(export_module, "export_onnx", recording_export)
    _, record = exported(["--checkpoint", str(full), "--model", "tiny", "--out", str(tmp_path / "full.onnx")])
    assert record["colour_head"] is None and record["colour_prompt"] is None
    assert said[0] == (
        f"note: sam_finetuned.pth has no place for the colour head of its run, which {decoder} carries: "
        f"the masks are SAM's alone; pass --checkpoint {decoder} to apply it; the sidecar written here "
        "records no colour part\n"
    )
    assert "note:" not in capsys.readouterr().err  # said once
    _, record = exported(["--checkpoint", str(decoder), "--out", str(tmp_path / "d.onnx")])
    assert ColourHead.from_dict(record["colour_head"]) == head and said[1] == ""


def test_base_checkpoint_with_a_full_state_dict_is_refused(tiny_registry, tiny_sam_builder, tmp_path, capsys):
    full = save_full(tiny_sam_builder(), tmp_path / "sam_finetuned.pth")
    args = ["--checkpoint", str(full), "--model", "tiny", "--base-checkpoint", str(tiny_registry)]
    assert main([*args, "--out", str(tmp_path / "d.onnx")]) == 2
    assert "holds its own base weights: drop --base-checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "d.onnx").exists()


@pytest.mark.parametrize("holds_decoder", [True, False])
def test_a_run_folder_given_as_checkpoint_names_its_decoder_pt(tmp_path, capsys, holds_decoder: bool):
    # it said 'checkpoint not found: <run>' of a folder that was there, as evaluate and train do not
    run = tmp_path / "run"
    run.mkdir()
    if holds_decoder:
        (run / "decoder.pt").write_bytes(b"never read")
    assert main(["--checkpoint", str(run), "--out", str(tmp_path / "d.onnx")]) == 2
    wanted = f"pass {run / 'decoder.pt'}" if holds_decoder else "pass the checkpoint file itself"
    assert capsys.readouterr().err == f"error: checkpoint {run} is a folder, not a file: {wanted}\n"
    assert not (tmp_path / "d.onnx").exists()


@pytest.fixture
def mobile_sam_weights():
    from common.weights import weights_dir
    from segmentation.models import sam_model

    weights = weights_dir() / sam_model("vit_t").weights.filename
    if not weights.is_file():
        pytest.skip(f"MobileSAM weights not cached at {weights} (python -m segmentation.embed fetches them)")
    return weights


@pytest.mark.realdata
def test_mobilesam_decoder_pt_through_the_cli(mobile_sam_weights, tmp_path):
    from segmentation.models import load_sam, sam_model

    sam = load_sam("vit_t", mobile_sam_weights)
    perturbed(sam.mask_decoder)
    official = sam_model("vit_t").weights.sha256
    decoder = save_decoder(sam, tmp_path / "decoder.pt", model="vit_t", base_checkpoint_sha256=official)
    done, record = exported(["--checkpoint", str(decoder), "--out", str(tmp_path / "decoder.onnx")])
    for kind, result in done.agreement.items():
        assert result.logit_diff <= 1e-4 * result.logit_scale and result.iou_diff < 1e-5, kind
    assert (record["model"], record["base_checkpoint_sha256"]) == ("vit_t", official)
    assert record["inputs"]["image_embeddings"]["shape"] == [1, 256, 64, 64]
    emb = embedding_for(sam, (480, 640))
    box = [100.0, 50.0, 400.0, 300.0]
    feeds = official_feeds(sam, emb, points=np.zeros((0, 2)), labels=np.zeros(0), box=box)
    masks = onnx_session(done.onnx).run(["masks"], feeds)[0]
    with torch.inference_mode():
        logits, _ = decode(sam, emb, boxes=[box], multimask_output=True)
        expected = upscale_logits(sam, logits, emb)
    np.testing.assert_allclose(
        masks[:, 1:], expected.numpy(), atol=1e-4 * float(expected.abs().max()), rtol=0
    )


@pytest.mark.realdata
def test_mobilesam_zero_shot(mobile_sam_weights, tmp_path):
    done, record = exported(["--model", "vit_t", "--out", str(tmp_path / "vit_t.onnx")])
    for kind, result in done.agreement.items():
        assert result.logit_diff <= 1e-4 * result.logit_scale and result.iou_diff < 1e-5, kind
    assert record["base_checkpoint_sha256"] == sha256_file(mobile_sam_weights)


def test_a_run_stopped_between_the_two_files_leaves_no_sidecar_of_another_model(
    tiny_registry, tmp_path, monkeypatch
):
    import segmentation.export as export_module

    out = tmp_path / "zero.onnx"
    exported(["--model", "tiny", "--out", str(out)])
    real_write = export_module.atomic_write

    def stopped_at_the_sidecar(path, data):
        if str(path).endswith(".json"):
            raise KeyboardInterrupt
        return real_write(path, data)

    monkeypatch.setattr(export_module, "atomic_write", stopped_at_the_sidecar)
    with pytest.raises(KeyboardInterrupt):
        exported(["--model", "tiny", "--return-single-mask", "--out", str(out)])
    assert out.is_file() and not sidecar_path(out).exists()  # was the first export's sidecar


def test_help_names_no_none_default() -> None:
    assert "(default: None)" not in " ".join(build_parser().format_help().split())


def test_the_relative_difference_is_each_prompts_own_over_its_largest_logit(tmp_path):
    agreement = {"box": Agreement(4e-3, 0.0, 40.0), "point": Agreement(1e-3, 0.0, 2.0)}
    done = Export(tmp_path / "d.onnx", tmp_path / "d.onnx.json", agreement)
    assert done.max_logit_diff == 4e-3
    assert done.max_relative_diff == 5e-4  # the point's 1e-3 of 2, not 4e-3 over 40 or 1e-3 over 40


def test_a_refused_export_says_which_figure_each_limit_holds():
    # it read '(logits by 0.004 of 2, IoU by 1e-05; limit 0.001)': which figure the limit held was unsaid
    bad = {"box": Agreement(1e-3, 0.0, 40.0), "point": Agreement(4e-3, 1e-5, 2.0)}
    with pytest.raises(UserError) as refused:
        refuse_disagreement(bad)
    assert (
        "on a point prompt (max |logit diff| 0.004 absolute, 0.002 relative to the largest logit 2, "
        "relative limit 0.001; max |IoU diff| 1e-05, limit 0.001): nothing written"
    ) in str(refused.value)


def test_missing_official_weights_for_a_zero_shot_export_name_the_base_checkpoint_flag(tmp_path, monkeypatch):
    # the export's --checkpoint is the tuned decoder: the weights under it are --base-checkpoint
    import urllib.request

    monkeypatch.setenv("MVTEC_FINETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(UserError) as error:
        load_weights(None, model="vit_b")
    assert str(error.value).endswith(
        f"pass --base-checkpoint PATH or put it in {tmp_path / 'cache' / 'weights'}"
    )
