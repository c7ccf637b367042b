"""Cached flips and rotations: masks and boxes move with the image; the policy decides which."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.augment_policy import geometry_settings, load_policy
from segmentation.augment import (
    TRANSFORMS,
    allowed_transforms,
    transform_boxes,
    transform_image,
    transformed_size,
)
from segmentation.crops import CropRule, Window
from segmentation.data import SegmentationImage, SegmentationSplit, load_split
from segmentation.instances import InstanceSet, training_samples
from segmentation.prompts import mask_to_box
from segmentation.views import View

POLICY = "configs/detection/augment.yaml"


def l_shape(size: tuple[int, int]) -> np.ndarray:
    """An asymmetric blob (an L off the centre), so every transform moves it somewhere else."""
    mask = np.zeros(size, bool)
    mask[5:20, 7:11] = True
    mask[16:20, 7:25] = True
    return mask


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_boxes_follow_the_transformed_mask(name):
    size = (30, 50)  # non-square: rotations swap the sides
    mask = l_shape(size)
    moved = transform_image(mask, name)
    assert moved.shape == transformed_size(size, name)
    np.testing.assert_allclose(transform_boxes(mask_to_box(mask), name, size), mask_to_box(moved))


def test_transforms_are_the_expected_numpy_flips():
    image = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(transform_image(image, "fliplr"), image[:, ::-1])
    np.testing.assert_array_equal(transform_image(image, "flipud"), image[::-1])
    np.testing.assert_array_equal(transform_image(image, "rot180"), image[::-1, ::-1])
    np.testing.assert_array_equal(transform_image(image, "rot90"), np.rot90(image))
    np.testing.assert_array_equal(transform_image(image, "rot270"), np.rot90(image, 3))
    with pytest.raises(ValueError, match="unknown transform"):
        transform_image(image, "shear")


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("metal_nut", ()),  # a mirrored nut is the flip defect
        ("synthetic_nut", ("rot90", "rot270")),  # rotations keep its handedness
        ("hazelnut", ("fliplr", "flipud", "rot180")),
        ("transistor", ("fliplr",)),  # upside down is `misplaced`
        ("my_own_parts", ("fliplr",)),  # not listed: ultralytics' defaults
    ],
)
def test_policy_decides_the_transforms(category, expected):
    settings = geometry_settings(load_policy(POLICY), [category])
    assert allowed_transforms(settings) == expected


def test_rotations_need_degrees():
    assert allowed_transforms({"fliplr": 0.0, "flipud": 0.0, "degrees": 90.0}) == ("rot90", "rot270")


def test_flipped_samples_get_flipped_masks_and_boxes(tiny_dataset):
    split = load_split(tiny_dataset, "train")
    samples = training_samples(split, transforms=("fliplr", "rot90"))
    instances = InstanceSet(split, samples)
    n = split.n_instances
    assert len(instances) == 3 * n
    assert len(instances.views()) == 3 * len({s.image_index for s in samples})
    for index, sample in enumerate(samples):
        image = split.images[sample.image_index]
        plain = instances.mask(sample.image_index, sample.instance_index)
        target = instances.target(index)
        np.testing.assert_array_equal(target, transform_image(plain, sample.view.transform))
        box = image.boxes()[sample.instance_index]
        np.testing.assert_allclose(
            sample.view.boxes(box, (image.height, image.width)),
            transform_boxes(box, sample.view.transform, (image.height, image.width)),
        )
    # the box of a flipped instance is the box of its flipped mask (COCO boxes are the tight boxes)
    flipped = [i for i, s in enumerate(samples) if s.view.transform == "fliplr"]
    for index in flipped[:5]:
        sample = samples[index]
        image = split.images[sample.image_index]
        box = sample.view.boxes(image.boxes()[sample.instance_index], (image.height, image.width))
        np.testing.assert_allclose(box, mask_to_box(instances.target(index)), atol=1.0)


def test_small_instances_train_in_their_crop(tiny_dataset):
    split = load_split(tiny_dataset, "train")
    rule = CropRule(max_fraction=0.5, margin=0.5, min_side=16)  # 64-px images: boxes < 32 px crop
    samples = training_samples(split, crops=rule)
    instances = InstanceSet(split, samples)
    cropped = [i for i, s in enumerate(samples) if s.view.window is not None]
    assert cropped, "the tiny data set has small defects"
    for index in cropped:
        sample = samples[index]
        window = sample.view.window
        target = instances.target(index)
        assert target.shape == (window.side, window.side)
        assert target.sum() == instances.mask(sample.image_index, sample.instance_index).sum()  # all inside
    assert all(s.view == View() for i, s in enumerate(samples) if i not in cropped)


def test_rotated_views_place_crops_in_the_rotated_frame():
    image = SegmentationImage(
        1, Path("wide.png"), width=100, height=40, annotations=({"bbox": [2, 25, 10, 10]},)
    )
    split = SegmentationSplit("train", [image], {1: "x"}, Path("instances_train.json"))
    rule = CropRule(max_fraction=0.5, margin=0.5, min_side=16)
    samples = training_samples(split, transforms=("rot90",), crops=rule)
    # turned a quarter, the 40 x 100 photo is 100 rows high: the box sits at rows 88..98, near the bottom
    assert [s.view for s in samples] == [
        View("identity", Window(0, 20, 20)),
        View("rot90", Window(20, 80, 20)),
    ]
