"""Per-category augmentation policy for detection.train: the reader lives in :mod:`common.augment_policy`.

Segmentation reads the same policy file for its cached flips and rotations, so the reader is shared
infrastructure; this module keeps detection's import path.
"""

from __future__ import annotations

from common.augment_policy import AUGMENT_KEYS, AugmentPolicy, load_policy, policy_settings

__all__ = ["AUGMENT_KEYS", "AugmentPolicy", "load_policy", "policy_settings"]
