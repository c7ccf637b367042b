"""A tiny SAM for CPU tests: stock segment_anything modules, 256-px input, a 2-block ViT."""

from __future__ import annotations

import json
import shutil
from functools import partial

import pytest
import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

TINY_IMG_SIZE = 256
TINY_EMBED_DIM = 32


def build_tiny_sam(img_size: int = TINY_IMG_SIZE, embed_dim: int = TINY_EMBED_DIM, seed: int = 0) -> Sam:
    """A randomly initialised ``segment_anything.modeling.Sam`` small enough for unit tests.

    Same module types as the real models (so ``SamPredictor`` and state-dict
    round trips behave the same), shrunk: 2 encoder blocks of width 64, a
    ``embed_dim``-wide prompt encoder and mask decoder.
    """
    torch.manual_seed(seed)
    patch = 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=img_size,
            patch_size=patch,
            embed_dim=64,
            depth=2,
            num_heads=2,
            mlp_ratio=2.0,
            out_chans=embed_dim,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=4,
            global_attn_indexes=(1,),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=embed_dim,
            image_embedding_size=(img_size // patch, img_size // patch),
            input_image_size=(img_size, img_size),
            mask_in_chans=8,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=embed_dim, mlp_dim=64, num_heads=2),
            transformer_dim=embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    return sam.eval()


@pytest.fixture
def tiny_sam() -> Sam:
    return build_tiny_sam()


@pytest.fixture
def tiny_sam_builder():
    """``build_tiny_sam`` as a fixture (tests import no helpers under importlib mode)."""
    return build_tiny_sam


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A converted synthetic data set (COCO + YOLO, 64-px images): 4 defect types x 5 images."""
    from converters.convert import ConvertConfig, convert
    from converters.synthetic import SyntheticConfig, generate

    root = tmp_path_factory.mktemp("tiny_mvtec")
    generate(
        root / "mvtec",
        SyntheticConfig(size=64, n_train_good=2, n_test_good=2, n_per_defect=5),
        progress=False,
    )
    out = root / "tiny_nut"
    convert(ConvertConfig(root=root / "mvtec", out=out, formats=("yolo", "coco"), progress=False))
    return out


@pytest.fixture
def wrong_size_dataset(tiny_dataset, tmp_path):
    """A copy of the tiny data set whose COCO file says its first val image is twice as tall (64x128)."""
    data = tmp_path / "wrong_size"
    shutil.copytree(tiny_dataset, data)
    coco_file = data / "annotations" / "instances_val.json"
    coco = json.loads(coco_file.read_text())
    coco["images"][0]["height"] *= 2
    coco_file.write_text(json.dumps(coco))
    return data


@pytest.fixture
def val_setup(tiny_dataset, tiny_sam, tmp_path):
    """The tiny data set's val split and its embeddings by the tiny SAM (a fresh cache per test)."""
    from segmentation.data import load_split
    from segmentation.embeddings import EmbeddingCache

    split = load_split(tiny_dataset, "val")
    embeddings = EmbeddingCache(tmp_path / "cache", tiny_sam, model_name="tiny").embed(
        [im.path for im in split.images], progress=False
    )
    return split, embeddings
