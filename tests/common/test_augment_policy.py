"""The shared augmentation-policy reader: one file, read by detection and segmentation alike."""

from __future__ import annotations

import pytest

import detection.augmentation as detection_policy
from common.augment_policy import (
    GEOMETRY_DEFAULTS,
    AugmentPolicy,
    check_named_categories,
    geometry_settings,
    load_policy,
)
from common.errors import UserError


def test_detection_reads_the_same_reader():
    assert detection_policy.load_policy is load_policy
    assert detection_policy.AugmentPolicy is AugmentPolicy


@pytest.mark.parametrize(
    ("categories", "expected"),
    [
        ([], GEOMETRY_DEFAULTS),  # unknown category: ultralytics' defaults
        (["hazelnut"], {"fliplr": 0.5, "flipud": 0.5, "degrees": 0.0}),
        (["metal_nut"], {"fliplr": 0.0, "flipud": 0.0, "degrees": 0.0}),
        (["hazelnut", "metal_nut"], {"fliplr": 0.0, "flipud": 0.0, "degrees": 0.0}),  # the smallest wins
        # an entry setting a colour key too (cable's hsv_h: 0) was a KeyError: 'hsv_h' traceback from
        # segmentation.train augment.enabled=true, alone or beside a category that leaves it unset
        (["cable"], {"fliplr": 0.0, "flipud": 0.0, "degrees": 0.0}),
        (["cable", "hazelnut"], {"fliplr": 0.0, "flipud": 0.0, "degrees": 0.0}),
    ],
)
def test_geometry_settings_of_the_shipped_policy(categories, expected):
    assert geometry_settings(load_policy("configs/detection/augment.yaml"), categories) == expected


def test_a_bad_policy_is_one_error_line(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("categories:\n  hazelnut:\n    spin: 1\n")
    with pytest.raises(UserError, match="unknown config key 'categories.hazelnut.spin'"):
        load_policy(path)


@pytest.mark.parametrize(
    ("named", "in_data", "refused"),
    [
        (["metal_nut"], ["my_nut"], False),  # borrowing a listed category's policy
        (["my_nut"], ["my_nut"], False),  # the data set's own category, not listed: default entry
        (["metal_nt"], [], False),  # no splits.json: nothing to tell a typo from a new category
        (["metal_nt"], ["my_nut"], True),  # a typo would silently get the default (mirroring a chiral nut)
        (["my_nut", "metal_nt"], ["my_nut"], True),
    ],
)
def test_a_named_category_known_to_neither_the_policy_nor_the_data_is_refused(named, in_data, refused):
    policy = AugmentPolicy(categories={"metal_nut": {"fliplr": 0.0}})
    if not refused:
        check_named_categories(policy, named, in_data, key="augment.category")
        return
    with pytest.raises(UserError) as error:
        check_named_categories(policy, named, in_data, key="augment.category")
    assert str(error.value) == (
        "augment.category metal_nt: neither in the policy (metal_nut) nor a category of the data set (my_nut)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a typo under a category is named with the key it is likely meant for, as a config key is
        (
            "categories:\n  wood:\n    flipd: 0.5\n",
            "unknown config key 'categories.wood.flipd' (did you mean 'categories.wood.flipud'?; known here",
        ),
        # the value is named: 'must be a number >= 0' alone did not say what was read
        (
            "categories:\n  wood:\n    flipud: lots\n",
            "'categories.wood.flipud' must be a number >= 0, got 'lots'",
        ),
        ("default:\n  fliplr:\n", "'default.fliplr' must be a number >= 0, got null"),
        # a typo at the top named neither the key nor the right one ("must be a mapping with ...")
        (
            "categorie:\n  wood:\n    flipud: 0.5\n",
            "unknown config key 'categorie' (did you mean 'categories'?; known here: categories, default)",
        ),
    ],
)
def test_a_bad_policy_entry_names_the_key_or_value_and_a_likely_typo(tmp_path, text, expected):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        load_policy(path)
    assert str(error.value).startswith(f"augmentation policy {path}: ")
    assert expected in str(error.value)


@pytest.mark.parametrize(("value", "got"), [(".nan", "nan"), (".inf", "inf"), (".NaN", "nan")])
def test_a_policy_value_of_nan_or_infinity_is_refused(tmp_path, value, got):
    # YAML's .nan and .inf were taken: flipud: .nan a probability no draw is below (off without a word)
    path = tmp_path / "policy.yaml"
    path.write_text(f"categories:\n  wood:\n    flipud: {value}\n")
    with pytest.raises(UserError) as error:
        load_policy(path)
    assert str(error.value) == (
        f"augmentation policy {path}: 'categories.wood.flipud' must be a number >= 0, got {got}"
    )
