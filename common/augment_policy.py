"""Per-category augmentation policy: which augmentations keep an MVTec category's labels.

Shared by detection (ultralytics' augmentation settings, ``detection.augmentation``) and segmentation
(the cached flips and rotations of ``segmentation.augment``).

Some augmentations change the label on some MVTec categories: a mirrored
``metal_nut`` *is* the ``flip`` defect, a mirrored ``cable`` swaps its wires
(``cable_swap``), a mirrored ``capsule`` or ``pill`` imprint looks faulty, an
upside-down ``transistor`` is ``misplaced``. Others are free: textures, bottles
and hazelnuts have no up or down. The policy file
(``configs/detection/augment.yaml``) says, per category, which ultralytics
augmentation values to use; ``default`` applies to categories it does not list.

Precedence, lowest first: ultralytics' defaults, the policy, the run's config
file, ``key=value`` on the command line. A data set of several categories gets,
for each key, the smallest value any of its categories asks for, so an
augmentation that changes one category's labels is off for the whole set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.config import read_yaml, unknown_key_text
from common.errors import UserError

#: The numeric ultralytics augmentation settings a policy may set (probabilities, gains, ranges).
AUGMENT_KEYS = frozenset(
    {
        "hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear", "perspective",
        "flipud", "fliplr", "bgr", "mosaic", "mixup", "cutmix", "copy_paste", "erasing",
    }
)  # fmt: skip


@dataclass(frozen=True)
class AugmentPolicy:
    """A parsed policy file.

    Attributes:
        default: settings for categories not listed (empty: ultralytics' defaults).
        categories: category name -> its settings (only the keys that differ from ``default``).
        path: the file it was read from.
    """

    default: Mapping[str, float] = field(default_factory=dict)
    categories: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    path: Path | None = None

    def settings(self, category: str) -> dict[str, float]:
        """The settings for one category: ``default`` updated by the category's own entries."""
        return {**self.default, **self.categories.get(category, {})}


def load_policy(path: str | Path) -> AugmentPolicy:
    """Reads a policy file (``default:`` and ``categories:`` mappings of :data:`AUGMENT_KEYS`).

    Raises:
        UserError: one line naming the file and the bad entry.
    """
    path = Path(path)
    data = read_yaml(path, what="augmentation policy")
    unknown = sorted(map(str, set(data) - {"default", "categories"}))
    if unknown:  # a typo (categorie:) is named with the key it is likely meant for
        known = {"default": None, "categories": None}
        raise UserError(f"augmentation policy {path}: {unknown_key_text(unknown[0], known)}")
    default = _settings(data.get("default") or {}, path, "default")
    categories = data.get("categories") or {}
    if not isinstance(categories, Mapping):
        raise UserError(f"augmentation policy {path}: 'categories' must map category names to settings")
    return AugmentPolicy(
        default=default,
        categories={str(c): _settings(s or {}, path, f"categories.{c}") for c, s in categories.items()},
        path=path,
    )


def _settings(entry: object, path: Path, where: str) -> dict[str, float]:
    if not isinstance(entry, Mapping):
        raise UserError(f"augmentation policy {path}: '{where}' must be a mapping of settings")
    unknown = sorted(map(str, set(entry) - AUGMENT_KEYS))
    if unknown:  # as a config key: flipd is named with flipud, the key it is likely meant for
        known = dict.fromkeys(AUGMENT_KEYS)
        raise UserError(f"augmentation policy {path}: {unknown_key_text(f'{where}.{unknown[0]}', known)}")
    for key, value in entry.items():
        number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not number or value < 0:  # flipud: .nan was a probability no draw is below, .inf one all are
            got = "null" if value is None else repr(value)  # flipud: lots, or flipud: with no value
            raise UserError(f"augmentation policy {path}: '{where}.{key}' must be a number >= 0, got {got}")
    return {k: float(v) for k, v in entry.items()}


def check_named_categories(
    policy: AugmentPolicy, named: Sequence[str], data_categories: Sequence[str], *, key: str
) -> None:
    """Refuses a category named in a config that neither the policy lists nor the data set holds.

    Such a name (a typo: ``hazlenut``) silently gets the policy's ``default`` entry, which may
    flip a chiral part into its own defect. Only checked when the data set's categories are
    known (its ``splits.json``).

    Raises:
        UserError: naming the config ``key``, the unknown names and what was known.
    """
    if not data_categories:
        return
    unknown = [name for name in named if name not in policy.categories and name not in data_categories]
    if unknown:
        listed = ", ".join(sorted(policy.categories)) or "none"
        raise UserError(
            f"{key} {', '.join(unknown)}: neither in the policy ({listed}) nor a category of the data set "
            f"({', '.join(data_categories)})"
        )


def policy_settings(
    policy: AugmentPolicy, categories: Sequence[str], base: Mapping[str, object]
) -> dict[str, float]:
    """The policy's settings for a data set of ``categories``, of the keys ``base`` holds.

    Args:
        policy: the parsed policy.
        categories: the data set's categories; empty means unknown (``default`` applies).
        base: current values of the keys asked for (ultralytics' defaults of every key, or
            :data:`GEOMETRY_DEFAULTS` alone), for keys a category leaves unset when categories
            are combined; the policy's other keys are left out (``cable``'s ``hsv_h`` for the
            geometry: a ``KeyError`` until 2026-12-07).

    Returns:
        Only the keys the policy sets; for several categories, each key's smallest value.

    >>> nut = AugmentPolicy(categories={"metal_nut": {"fliplr": 0.0}, "wood": {"flipud": 0.5}})
    >>> policy_settings(nut, ["metal_nut", "wood"], {"fliplr": 0.5, "flipud": 0.0})
    {'fliplr': 0.0, 'flipud': 0.0}
    """
    per_category = [policy.settings(c) for c in categories] or [dict(policy.default)]
    keys = sorted({k for settings in per_category for k in settings if k in base})
    return {k: min(float(s[k] if k in s else base[k]) for s in per_category) for k in keys}


#: ultralytics' defaults of the geometric keys (what a category the policy does not list gets).
GEOMETRY_DEFAULTS: dict[str, float] = {"fliplr": 0.5, "flipud": 0.0, "degrees": 0.0}


def geometry_settings(policy: AugmentPolicy, categories: Sequence[str]) -> dict[str, float]:
    """``fliplr``, ``flipud`` and ``degrees`` for a data set of ``categories``, defaults filled in."""
    return {
        **GEOMETRY_DEFAULTS,
        **{
            k: v
            for k, v in policy_settings(policy, categories, GEOMETRY_DEFAULTS).items()
            if k in GEOMETRY_DEFAULTS
        },
    }
