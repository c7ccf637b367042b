"""Deterministic synthetic data set in MVTec AD layout: the offline default for the demo and tests.

Real MVTec AD cannot be downloaded offline, so this module draws a small stand-in modelled on
MVTec's ``metal_nut``: a machined, chiral four-tab nut with a central hole on a dark background,
in varied pose and lighting, with four defect types:

- ``bent``: one stretch of the outline pushed out or in (a tab bent out of plane), with the
  bent part re-shaded; one mask region.
- ``color``: 1-3 stains of a foreign hue on the surface; one mask region per stain (they may merge).
- ``flip``: the nut mirrored, visible from the direction of its sawtooth tabs; the mask is the
  whole silhouette, central hole excluded (so the mask has a hole).
- ``scratch``: 1-2 thin curved lines, brighter or darker than the metal; the mask is the drawn
  line, dilated so it covers the antialiased stroke.

Layout written by :func:`generate`::

    <out>/<category>/train/good/000.png
    <out>/<category>/test/good/000.png
    <out>/<category>/test/<defect>/000.png
    <out>/<category>/ground_truth/<defect>/000_mask.png    # uint8, 0 background / 255 defect
    <out>/<category>/synthetic.json                         # the settings it was drawn with

``synthetic.json`` (:data:`SETTINGS_FILE`) records the :class:`SyntheticConfig` (seed, counts, size,
defect types, category), so the folder says how to draw it again; the layout readers go by folders
and leave it alone.

Every image comes from its own generator seeded with ``(seed, split, defect, index)``, so the
same seed gives byte-identical PNGs and changing one count leaves all other images unchanged.

Usage::

    python -m converters.synthetic --out datasets/synthetic
"""

from __future__ import annotations

import argparse
import zlib
from dataclasses import asdict, dataclass
from functools import lru_cache, partial
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from common.cli import OneLineParser, command_name, exit_code, user_path
from common.errors import UserError, close_match, few
from common.folders import (
    build_folder,
    check_folder_name,
    check_output_folder,
    earlier_run_note,
    foreign_names,
)
from common.io import atomic_write, json_text

DEFECT_TYPES: tuple[str, ...] = ("bent", "color", "flip", "scratch")

#: Smallest accepted image side: below it the tabs, stains and scratches are a few pixels wide.
MIN_SIZE = 64
#: Largest accepted image side: drawing one image takes about 2 GB of memory there (4x that at twice
#: the side); 100000 ran out of memory with a traceback.
MAX_SIZE = 4096
#: The record of the settings a set was drawn with, in its category folder.
SETTINGS_FILE = "synthetic.json"
#: What a category folder holds; ``--overwrite`` replaces no folder holding anything else.
CATEGORY_NAMES = ("train", "test", "ground_truth", SETTINGS_FILE)
#: A defect mask smaller than this (pixels) is redrawn: it would be invisible or a single blob of
#: antialiasing, useless as a training target.
MIN_MASK_AREA = 20
#: Redraws of one defect before giving up (never reached in practice: a draw fails a few % of the time).
_MAX_TRIES = 100

# --- Object design (object units: 1.0 = tip radius of a tab). Fixed, not drawn: every sample is the
# same product, so a "good" image differs from another only by pose, lighting and texture.
_N_TABS = 4
_R_BODY = 0.78  # radius of the disc between the tabs
_R_HOLE = 0.27  # central hole
_R_HUB = 0.47  # raised hub ring around the hole
_N_OUTLINE = 1024  # samples of the outline profile r(theta) over one turn

_SPLIT_CODES = {"train": 1, "test": 2}


@dataclass(frozen=True)
class SyntheticConfig:
    """What :func:`generate` writes.

    Attributes:
        category: name of the category folder.
        size: image side in pixels (images are square), >= 64.
        n_train_good: defect-free training images.
        n_test_good: defect-free test images.
        n_per_defect: test images (and masks) per defect type.
        defects: defect types to write, a subset of :data:`DEFECT_TYPES`.
        seed: non-negative base seed; the same seed gives byte-identical files.
    """

    category: str = "synthetic_nut"
    size: int = 256
    n_train_good: int = 40
    n_test_good: int = 10
    n_per_defect: int = 12
    defects: tuple[str, ...] = DEFECT_TYPES
    seed: int = 0


# ----------------------------------------------------------------------------------------------
# Geometry


@lru_cache(maxsize=1)
def _outline_profile() -> np.ndarray:
    """The nut's outline as a polar profile, ``(_N_OUTLINE,)`` float64 radius per angle.

    Each tab rises slowly on one side and drops steeply, with a small notch after the drop: a
    sawtooth, so the shape is chiral (its mirror image has the teeth pointing the other way and
    cannot be rotated back onto it), like MVTec's metal nut.
    """
    theta = np.arange(_N_OUTLINE) * (2 * np.pi / _N_OUTLINE)
    u = (theta * _N_TABS / (2 * np.pi)) % 1.0  # phase within one tab
    rise = np.clip(u / 0.5, 0.0, 1.0)
    rise = np.sin(rise * np.pi / 2) ** 0.8  # convex slow rise to the tip
    r = _R_BODY + (1.0 - _R_BODY) * rise
    r = np.where(u > 0.62, _R_BODY + (1.0 - _R_BODY) * np.clip(1 - (u - 0.62) / 0.05, 0, 1), r)
    notch = np.clip(1 - np.abs(u - 0.74) / 0.04, 0, 1)  # small V notch after the drop
    r = r - 0.06 * notch
    # Circular smoothing rounds the corners (a machined part has no infinitely sharp corners).
    k = 9
    kernel = np.hanning(k + 2)[1:-1]
    kernel /= kernel.sum()
    padded = np.concatenate([r[-k:], r, r[:k]])
    return np.convolve(padded, kernel, mode="same")[k:-k]


@dataclass(frozen=True)
class _Pose:
    """Object-to-image transform: centre ``(cx, cy)`` px, radius px, rotation rad, mirror flag."""

    cx: float
    cy: float
    radius: float
    angle: float
    mirror: bool = False

    def to_image(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Object units ``(u, v)`` to image pixels ``(x, y)``, same shapes."""
        if self.mirror:
            v = -v
        c, s = np.cos(self.angle), np.sin(self.angle)
        return self.cx + self.radius * (c * u - s * v), self.cy + self.radius * (s * u + c * v)

    def to_object(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image pixels ``(x, y)`` to object units ``(u, v)``, same shapes (inverse of to_image)."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        dx, dy = (x - self.cx) / self.radius, (y - self.cy) / self.radius
        u, v = c * dx + s * dy, -s * dx + c * dy
        return u, (-v if self.mirror else v)


def _outline_points(profile: np.ndarray, pose: _Pose) -> np.ndarray:
    """Closed outline ``(N, 1, 2)`` int32 in 1/16 px (for ``cv2`` drawing with ``shift=4``)."""
    theta = np.arange(profile.size) * (2 * np.pi / profile.size)
    x, y = pose.to_image(profile * np.cos(theta), profile * np.sin(theta))
    return np.round(np.stack([x, y], axis=-1) * 16).astype(np.int32).reshape(-1, 1, 2)


def _fill(points: np.ndarray, size: int, antialias: bool) -> np.ndarray:
    """Rasterises a ``_outline_points``-style polygon.

    Returns:
        ``(size, size)`` float32 coverage in [0, 1] when ``antialias`` (for the image), else
        bool (the exact geometry the mask is made of).
    """
    canvas = np.zeros((size, size), np.uint8)
    cv2.fillPoly(canvas, [points], 255, lineType=cv2.LINE_AA if antialias else cv2.LINE_8, shift=4)
    return canvas.astype(np.float32) / 255.0 if antialias else canvas > 0


def _sample_profile(profile: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Linear interpolation of a periodic polar profile at angles ``theta`` (rad), any shape."""
    pos = (theta % (2 * np.pi)) * (profile.size / (2 * np.pi))
    i0 = np.floor(pos).astype(np.int64) % profile.size
    frac = pos - np.floor(pos)
    return profile[i0] * (1 - frac) + profile[(i0 + 1) % profile.size] * frac


# ----------------------------------------------------------------------------------------------
# Base scene: everything a defect-free image needs, drawn before any defect parameter so that
# render_sample(None, rng) and render_sample(defect, rng) from equal generators share the scene.


@dataclass
class _Scene:
    size: int
    pose: _Pose
    metal: np.ndarray  # (3,) float RGB of the bare metal
    background: np.ndarray  # (3,) float RGB of the backdrop
    light: np.ndarray  # (2,) unit vector, direction the light comes from (image x, y)
    gradient: tuple[float, float]  # brightness gradient: strength, direction (rad)
    waves: np.ndarray  # (n, 4) low-frequency mottling: ku, kv, phase, amplitude (object units)
    rings: np.ndarray  # (m,) machining-ring brightness profile over object radius [0, 1.1]
    highlight: tuple[float, float, float, float]  # specular spot: x px, y px, sigma px, strength
    blur_sigma: float  # px
    noise: np.ndarray  # (size, size, 3) float32 sensor noise, grey levels


def _draw_scene(rng: np.random.Generator, size: int) -> _Scene:
    radius = size * 0.36 * rng.uniform(0.93, 1.05)
    shift = size * 0.045
    pose = _Pose(
        cx=size / 2 + rng.uniform(-shift, shift),
        cy=size / 2 + rng.uniform(-shift, shift),
        radius=radius,
        angle=rng.uniform(0, 2 * np.pi),
    )
    grey = rng.uniform(125, 155)
    metal = grey * (1 + rng.normal(0, 0.015, 3))  # slight warm/cool cast per photo
    background = rng.uniform(14, 34) * np.array([0.95, 1.0, 1.08]) * (1 + rng.normal(0, 0.03, 3))
    light_angle = rng.uniform(-np.pi, np.pi)
    n_waves = 5
    waves = np.column_stack(
        [
            rng.normal(0, 4.0, n_waves),
            rng.normal(0, 4.0, n_waves),
            rng.uniform(0, 2 * np.pi, n_waves),
            rng.uniform(2.0, 6.0, n_waves),
        ]
    )
    # Machined rings: white noise over radius, lightly smoothed; ~1.5 samples per pixel of radius.
    n_rings = max(64, int(radius * 1.1 * 1.5))
    rings = cv2.GaussianBlur(rng.normal(0, 1, (1, n_rings)), (0, 0), 1.2).ravel()
    rings = rings / (rings.std() + 1e-9) * rng.uniform(2.0, 5.0)
    hx, hy = pose.to_image(*rng.uniform(-0.6, 0.6, 2))
    highlight = (float(hx), float(hy), radius * rng.uniform(0.35, 0.7), rng.uniform(15, 45))
    return _Scene(
        size=size,
        pose=pose,
        metal=metal,
        background=background,
        light=np.array([np.cos(light_angle), np.sin(light_angle)]),
        gradient=(rng.uniform(0.1, 0.35), rng.uniform(0, 2 * np.pi)),
        waves=waves,
        rings=rings,
        highlight=highlight,
        blur_sigma=rng.uniform(0.45, 0.9) * max(1.0, size / 256),
        noise=rng.standard_normal((size, size, 3), dtype=np.float32) * np.float32(rng.uniform(1.5, 3.5)),
    )


@dataclass
class _Frame:
    """Per-pixel object-frame coordinates and the nut's coverage for one pose."""

    u: np.ndarray  # (H, W) float32 object units
    v: np.ndarray
    rho: np.ndarray  # (H, W) float32 object radius
    theta: np.ndarray  # (H, W) float32 object angle, rad
    outer_aa: np.ndarray  # (H, W) float32 coverage of the outline (hole not removed)
    outer: np.ndarray  # (H, W) bool raster of the outline
    hole_aa: np.ndarray  # (H, W) float32 coverage of the hole
    hub_aa: np.ndarray  # (H, W) float32 coverage of the hub disc (radius _R_HUB)


def _frame(scene: _Scene, pose: _Pose, profile: np.ndarray) -> _Frame:
    size = scene.size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    # Pixel centres sit at integer coordinates here and in cv2's drawing, so both agree.
    u, v = pose.to_object(xx, yy)
    u, v = u.astype(np.float32), v.astype(np.float32)
    rho = np.hypot(u, v)
    rho_px = rho * np.float32(pose.radius)
    points = _outline_points(profile, pose)
    return _Frame(
        u=u,
        v=v,
        rho=rho,
        theta=np.arctan2(v, u),
        outer_aa=_fill(points, size, antialias=True),
        outer=_fill(points, size, antialias=False),
        # Circles are exact analytically: coverage is the signed radial distance clipped to a pixel.
        hole_aa=np.clip(np.float32(_R_HOLE * pose.radius) - rho_px + 0.5, 0, 1),
        hub_aa=np.clip(np.float32(_R_HUB * pose.radius) - rho_px + 0.5, 0, 1),
    )


def _object_alpha(frame: _Frame) -> np.ndarray:
    """``(H, W)`` float32 coverage of the nut, hole removed."""
    return frame.outer_aa * (1 - frame.hole_aa)


def _object_raster(frame: _Frame, pose: _Pose) -> np.ndarray:
    """``(H, W)`` bool exact silhouette of the nut, hole removed."""
    return frame.outer & (frame.rho * pose.radius >= _R_HOLE * pose.radius)


def _surface(scene: _Scene, frame: _Frame) -> np.ndarray:
    """Lit metal colour of the nut everywhere, ``(H, W, 3)`` float32 grey levels (not yet masked)."""
    u, v = frame.u, frame.v
    tone = np.zeros_like(u)
    for ku, kv, phase, amp in scene.waves:
        tone += np.float32(amp) * np.cos(np.float32(ku) * u + np.float32(kv) * v + np.float32(phase))
    ring_pos = np.clip(frame.rho / 1.1, 0, 1) * (scene.rings.size - 1)
    tone += (
        np.interp(ring_pos.ravel(), np.arange(scene.rings.size), scene.rings)
        .reshape(u.shape)
        .astype(np.float32)
    )
    tone += 10.0 * frame.hub_aa  # the hub face is turned, a little brighter than the flat face

    # Height map (flat face 1, hub 1.4) turned into bevel shading: the gradient of the blurred
    # height along the light direction lights edges facing the light and darkens the others.
    height = _object_alpha(frame) * (1 + 0.4 * frame.hub_aa)
    sigma = 1.3 * max(1.0, scene.size / 256)
    smooth = cv2.GaussianBlur(height, (0, 0), sigma)
    gy, gx = np.gradient(smooth)
    # sigma * sqrt(2 pi) normalises a unit step's peak gradient to 1.
    bevel = -(gx * scene.light[0] + gy * scene.light[1]) * np.float32(sigma * np.sqrt(2 * np.pi))
    tone += 55.0 * bevel

    hx, hy, hs, ha = scene.highlight
    yy, xx = np.mgrid[0 : scene.size, 0 : scene.size].astype(np.float32)
    tone += np.float32(ha) * np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / np.float32(2 * hs * hs))
    return scene.metal.astype(np.float32)[None, None, :] * (1 + tone[..., None] / 140.0)


def _finish(scene: _Scene, surface: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composites the nut on the backdrop, lights, blurs and adds noise: ``(H, W, 3)`` uint8 RGB."""
    size = scene.size
    a = alpha[..., None]
    img = surface * a + scene.background.astype(np.float32)[None, None, :] * (1 - a)
    strength, direction = scene.gradient
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    ramp = ((xx - size / 2) * np.cos(direction) + (yy - size / 2) * np.sin(direction)) / size
    img *= (1 + np.float32(strength) * ramp)[..., None]
    img = cv2.GaussianBlur(img, (0, 0), scene.blur_sigma)  # optics blur first, sensor noise after
    img += scene.noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# Defects. Each draws its parameters, rasterises the mask from the same geometry it paints, and
# returns (surface, alpha, mask) or None when the draw gives a mask too small to be useful.

#: ``(surface (H, W, 3) float32, alpha (H, W) float32, mask (H, W) bool)``, or None to redraw.
_DefectResult = tuple[np.ndarray, np.ndarray, np.ndarray] | None


def _big_enough(mask: np.ndarray) -> bool:
    return int(np.count_nonzero(mask)) >= MIN_MASK_AREA


def _defect_bent(
    scene: _Scene, frame: _Frame, surface: np.ndarray, alpha: np.ndarray, rng: np.random.Generator
) -> _DefectResult:
    pose = scene.pose
    profile = _outline_profile()
    # A tab pushed outward (bent up and towards the camera side) or inward (bent away,
    # foreshortened). Raised-cosine bump in angle, optionally dragged sideways like a bent tab.
    centre = rng.uniform(0, 2 * np.pi)
    half_width = rng.uniform(0.28, 0.5)
    amp = rng.uniform(0.09, 0.17) * rng.choice([-1.0, 1.0])
    drag = rng.uniform(-0.15, 0.15)
    theta = np.arange(profile.size) * (2 * np.pi / profile.size)
    d = (theta - centre + np.pi) % (2 * np.pi) - np.pi
    bump = np.where(np.abs(d) < half_width, 0.5 * (1 + np.cos(np.pi * d / half_width)), 0.0)
    bent_profile = _sample_profile(profile, theta - drag * bump) + amp * bump
    bent_profile = np.maximum(bent_profile, _R_HUB + 0.08)  # never bite into the hub

    new = _frame(scene, pose, bent_profile)
    old_obj = _object_raster(frame, pose)
    new_obj = _object_raster(new, pose)
    # The bent part: the angular window of the bump, from `depth` inside the new edge outwards.
    # It must be deeper than the bevel blur's reach, so every re-shaded pixel is in the mask.
    depth = np.float32(max(0.16, 6.0 * 1.3 * max(1.0, scene.size / 256) / pose.radius))
    dpix = (new.theta - np.float32(centre) + np.float32(np.pi)) % np.float32(2 * np.pi) - np.float32(np.pi)
    window = np.abs(dpix) < half_width
    edge = _sample_profile(bent_profile, new.theta).astype(np.float32)
    band = window & new_obj & (new.rho > edge - depth)
    mask = (old_obj ^ new_obj) | band
    if not _big_enough(mask):
        return None
    n_components, _ = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if n_components != 2:  # one region plus the background label
        return None

    new_surface = _surface(scene, new)
    # Bent out of plane, the tab catches the light differently: one uniform shade over the band,
    # eased in over the window's angular ends so the edge of the re-shaded part looks like a fold.
    factor = rng.uniform(0.72, 0.85) if rng.random() < 0.6 else rng.uniform(1.18, 1.32)
    ease = np.clip(1 - np.abs(dpix) / np.float32(half_width), 0, 1) * 3
    weight = (np.clip(ease, 0, 1) * band).astype(np.float32)[..., None]
    weight = np.maximum(weight, 0.35 * band[..., None])  # the whole band changes, not just its middle
    new_surface = new_surface * (1 + (np.float32(factor) - 1) * weight)
    return new_surface, _object_alpha(new), mask


def _blob_points(rng: np.random.Generator, cx: float, cy: float, r: float) -> np.ndarray:
    """Irregular closed blob around ``(cx, cy)`` px with mean radius ``r`` px, in 1/16 px."""
    n = 48
    t = np.arange(n) * (2 * np.pi / n)
    rr = np.ones(n)
    for k in (2, 3, 5):  # a few low harmonics: lumpy, not star-shaped
        rr += rng.uniform(0.05, 0.22) / k * 2 * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    ecc = rng.uniform(0.6, 1.0)
    rot = rng.uniform(0, np.pi)
    x0, y0 = rr * np.cos(t), rr * np.sin(t) * ecc
    x = cx + r * (x0 * np.cos(rot) - y0 * np.sin(rot))
    y = cy + r * (x0 * np.sin(rot) + y0 * np.cos(rot))
    return np.round(np.stack([x, y], -1) * 16).astype(np.int32).reshape(-1, 1, 2)


# Stain hues (RGB, relative to the metal's brightness): heat tint blue, rust, verdigris, purple.
_STAIN_COLOURS = np.array(
    [[0.55, 0.75, 1.45], [1.45, 0.85, 0.5], [0.7, 1.3, 0.9], [1.3, 0.7, 1.25]],
)


def _defect_color(
    scene: _Scene, frame: _Frame, surface: np.ndarray, alpha: np.ndarray, rng: np.random.Generator
) -> _DefectResult:
    pose = scene.pose
    obj = _object_raster(frame, pose)
    n = int(rng.integers(1, 4))
    mask = np.zeros_like(obj)
    coverage = np.zeros(obj.shape, np.float32)
    for _ in range(n):
        # Centre on the face between hub and body edge so most of the stain lies on metal.
        rho = rng.uniform(_R_HOLE + 0.08, _R_BODY - 0.05)
        phi = rng.uniform(0, 2 * np.pi)
        cx, cy = pose.to_image(rho * np.cos(phi), rho * np.sin(phi))
        r = pose.radius * rng.uniform(0.06, 0.13)
        points = _blob_points(rng, float(cx), float(cy), float(r))
        mask |= _fill(points, scene.size, antialias=False)
        coverage = np.maximum(coverage, _fill(points, scene.size, antialias=True))
    mask &= obj
    if not _big_enough(mask):
        return None
    colour = _STAIN_COLOURS[rng.integers(len(_STAIN_COLOURS))] * (1 + rng.normal(0, 0.06, 3))
    opacity = np.float32(rng.uniform(0.55, 0.85))
    # The stain keeps the metal's texture (multiplicative tint), and is slightly darker.
    stained = surface * (colour.astype(np.float32) * np.float32(rng.uniform(0.75, 0.95)))[None, None, :]
    a = (coverage * opacity)[..., None]
    return surface * (1 - a) + stained * a, alpha, mask


def _bezier(p: np.ndarray, n: int = 64) -> np.ndarray:
    """Cubic Bezier through control points ``p`` ``(4, 2)``: ``(n, 2)`` points."""
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t**2 * p[2] + t**3 * p[3]


def _defect_scratch(
    scene: _Scene, frame: _Frame, surface: np.ndarray, alpha: np.ndarray, rng: np.random.Generator
) -> _DefectResult:
    pose = scene.pose
    obj = _object_raster(frame, pose)
    scale = max(1.0, scene.size / 256)
    n = int(rng.integers(1, 3))
    stroke = np.zeros(obj.shape, np.uint8)
    mask = np.zeros(obj.shape, np.uint8)
    for _ in range(n):
        # Start on the face, run 0.5-1.1 tab radii in a random direction, bowed sideways.
        rho = rng.uniform(_R_HOLE + 0.1, _R_BODY)
        phi = rng.uniform(0, 2 * np.pi)
        start = np.array([rho * np.cos(phi), rho * np.sin(phi)])
        heading = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.5, 1.1)
        direction = np.array([np.cos(heading), np.sin(heading)])
        normal = np.array([-direction[1], direction[0]])
        end = start + length * direction
        c1 = start + length * (0.33 * direction + rng.uniform(-0.3, 0.3) * normal)
        c2 = start + length * (0.66 * direction + rng.uniform(-0.3, 0.3) * normal)
        curve = _bezier(np.stack([start, c1, c2, end]))
        x, y = pose.to_image(curve[:, 0], curve[:, 1])
        points = np.round(np.stack([x, y], -1) * 16).astype(np.int32).reshape(-1, 1, 2)
        width = max(1, int(round(rng.uniform(1.0, 3.0) * scale)))
        cv2.polylines(stroke, [points], False, 255, thickness=width, lineType=cv2.LINE_AA, shift=4)
        # The mask line is 2 px wider than the stroke (1 px each side) so it covers the
        # antialiased fringe of the painted line.
        cv2.polylines(mask, [points], False, 255, thickness=width + 2, lineType=cv2.LINE_8, shift=4)
    mask = (mask > 0) & obj
    if not _big_enough(mask):
        return None
    a = (stroke.astype(np.float32) / 255.0)[..., None]
    if rng.random() < 0.5:  # bright: the cut catches the light
        painted = surface + np.float32(rng.uniform(55, 90))
    else:  # dark: a groove in shadow
        painted = surface * np.float32(rng.uniform(0.3, 0.55))
    return surface * (1 - a) + painted * a, alpha, mask


def _defect_flip(
    scene: _Scene, frame: _Frame, surface: np.ndarray, alpha: np.ndarray, rng: np.random.Generator
) -> _DefectResult:
    pose = scene.pose
    mirrored = _Pose(pose.cx, pose.cy, pose.radius, pose.angle, mirror=True)
    new = _frame(scene, mirrored, _outline_profile())
    mask = _object_raster(new, mirrored)
    # Texture lives in object coordinates, so it mirrors with the nut; the light does not.
    flipped = _Scene(**{**scene.__dict__, "pose": mirrored})
    return _surface(flipped, new), _object_alpha(new), mask


_DEFECTS = {"bent": _defect_bent, "color": _defect_color, "flip": _defect_flip, "scratch": _defect_scratch}


def unknown_defect_text(defect: object) -> str:
    """``unknown defect 'scrach' (did you mean 'scratch'?)``: a typo's defect type named, as config keys'."""
    close = close_match(defect, DEFECT_TYPES) if isinstance(defect, str) else None
    return f"unknown defect {defect!r}" + (f" (did you mean {close!r}?)" if close else "")


def render_sample(defect: str | None, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Renders one photo of the nut, with one defect or none.

    Pure apart from advancing ``rng``. The defect-free scene (pose, lighting, texture, noise) is
    drawn from ``rng`` before any defect parameter, so two generators in the same state give the
    same scene with and without the defect: outside the mask (plus a blur radius) the images agree.

    Args:
        defect: one of :data:`DEFECT_TYPES`, or ``None`` for a good sample.
        rng: the generator to draw from.
        size: image side in pixels, 64 .. 4096.

    Returns:
        ``(image, mask)``: ``(size, size, 3)`` uint8 RGB and ``(size, size)`` uint8 with 0 for
        background and 255 for defect (all zero for ``defect=None``; never empty otherwise: at
        least ``MIN_MASK_AREA`` pixels).

    Raises:
        ValueError: unknown defect or size outside 64 .. 4096.
    """
    if defect is not None and defect not in _DEFECTS:
        raise UserError(f"{unknown_defect_text(defect)}; expected one of {', '.join(DEFECT_TYPES)}")
    check_size(size)
    scene = _draw_scene(rng, size)
    frame = _frame(scene, scene.pose, _outline_profile())
    surface = _surface(scene, frame)
    alpha = _object_alpha(frame)
    mask = np.zeros((size, size), bool)
    if defect is not None:
        for _ in range(_MAX_TRIES):
            result = _DEFECTS[defect](scene, frame, surface, alpha, rng)
            if result is not None:
                surface, alpha, mask = result
                break
        else:  # pragma: no cover - a draw fails a few % of the time, 100 in a row does not happen
            raise RuntimeError(f"could not draw a {defect!r} defect in {_MAX_TRIES} tries")
    return _finish(scene, surface, alpha), mask.astype(np.uint8) * 255


# ----------------------------------------------------------------------------------------------
# Data set


def check_size(size: int, *, what: str = "size") -> None:
    """Refuses an image side outside ``MIN_SIZE`` .. ``MAX_SIZE``, naming it ``what`` (``--size``)."""
    if size < MIN_SIZE:
        raise UserError(f"{what} must be >= {MIN_SIZE}, got {size}")
    if size > MAX_SIZE:
        raise UserError(f"{what} must be <= {MAX_SIZE} (about 2 GB of memory per image there), got {size}")


def _check_config(config: SyntheticConfig, *, cli: bool = False) -> None:
    """Raises ``UserError`` (a ``ValueError``) with a one-line message for a bad config, naming a field as
    :class:`SyntheticConfig` does (``n_per_defect``), or, with ``cli``, as its option (``--n-per-defect``):
    the command's errors named options it has not."""

    def name(field_name: str) -> str:
        return "--" + field_name.replace("_", "-") if cli else field_name

    check_folder_name(config.category, "category", spaces=True)  # the folder it writes, on any OS
    for field_name in ("size", "n_train_good", "n_test_good", "n_per_defect", "seed"):
        value = getattr(config, field_name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise UserError(f"{name(field_name)} must be an integer, got {value!r}")
    check_size(config.size, what=name("size"))
    for field_name in ("n_train_good", "n_test_good", "n_per_defect", "seed"):
        if getattr(config, field_name) < 0:
            raise UserError(f"{name(field_name)} must be >= 0, got {getattr(config, field_name)}")
    if isinstance(config.defects, str):  # a bare string would iterate by character
        raise UserError(f"defects must be a sequence of names, got the string {config.defects!r}")
    unknown = [d for d in config.defects if d not in DEFECT_TYPES]
    if unknown:
        raise UserError(f"{unknown_defect_text(unknown[0])}; expected some of {', '.join(DEFECT_TYPES)}")
    if len(set(config.defects)) != len(config.defects):
        raise UserError(f"{name('defects')} listed twice: {', '.join(config.defects)}")


def _sample_rng(seed: int, split: str, defect: str | None, index: int) -> np.random.Generator:
    """Generator for one image, keyed by its identity rather than its position in the run.

    crc32 of the defect name (0 for good) keeps the key stable whatever other defects are chosen.
    """
    code = 0 if defect is None else zlib.crc32(defect.encode())
    return np.random.default_rng([seed, _SPLIT_CODES[split], code, index])


def _write_png(path: Path, array: np.ndarray) -> None:
    """Writes ``(H, W)`` grey or ``(H, W, 3)`` RGB uint8 as PNG."""
    data = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    ok, buf = cv2.imencode(".png", data)
    if not ok:  # pragma: no cover - only on a broken OpenCV build
        raise OSError(f"could not encode {path}")
    path.write_bytes(buf.tobytes())


def generate(
    out: str | Path,
    config: SyntheticConfig = SyntheticConfig(),
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Writes the data set to ``<out>/<category>/`` in MVTec AD layout.

    The set is built in a hidden folder beside the target (same parent, so the final rename is
    atomic) and renamed into place only when complete; with ``overwrite`` an existing category
    folder is replaced only after that, so an interrupted run never leaves a half-written set or
    loses the old one, and the next run removes what a killed one left (see
    :mod:`converters.dataset`). Files are named ``000.png`` ... (wider numbers past 999).

    Args:
        out: parent folder; created if missing.
        config: what to write.
        overwrite: replace an existing ``<out>/<category>``.
        progress: show a tqdm progress bar on stderr.

    Returns:
        The category folder, ``<out>/<category>``.

    Raises:
        UserError: (a ``ValueError``) bad config (size < 64, negative count or seed, unknown or
            repeated defect, a category no folder on every OS takes: :func:`check_folder_name`), the
            category folder exists and ``overwrite`` is False, it is a file, it holds other names than a
            category's or no ``synthetic.json`` (a real category, its photos), or it cannot be written
            (a file or a read-only folder in the way, a full disk).
    """
    return _generate(out, config, overwrite=overwrite, progress=progress, cli=False)


def _generate(
    out: str | Path, config: SyntheticConfig, *, overwrite: bool, progress: bool, cli: bool
) -> Path:
    """:func:`generate`; with ``cli``, its errors name the command's options (``--overwrite``,
    ``--n-per-defect``), else the function's arguments (``overwrite=True``, ``n_per_defect``)."""
    _check_config(config, cli=cli)
    target = Path(out) / config.category
    if target.exists() and target.is_dir() and not overwrite:
        how = "(pass --overwrite to replace it)" if cli else "(pass overwrite=True to replace it)"
        raise UserError(f"{target} already exists {how}")
    # --overwrite never replaces a file, nor a folder that holds more than a category's subsets, nor a
    # real category of train/, test/, ground_truth/ (the user's photos): only a synthetic set has its settings
    replaced_by = "--overwrite" if cli else "overwrite=True"
    check_output_folder(
        target,
        flag="category folder",
        overwrite=overwrite or None,
        holds=CATEGORY_NAMES,
        replaced_by=replaced_by,
    )
    _check_drawn_here(target, cli=cli)
    with earlier_run_note(target, until="the data set is done"):  # 'interrupted' alone: it read as new
        build_folder(target, partial(_write_set, config=config, progress=progress), overwrite=overwrite)
    return target


def _check_drawn_here(target: Path, *, cli: bool) -> None:
    """Refuses to replace a category folder of a category's subsets without ``synthetic.json``; with
    ``cli`` the message names the command's options, else :func:`generate`'s arguments.

    Names alone cannot tell a drawn set from a real one: MVTec AD's ``metal_nut`` holds the same
    ``train/good``, ``test/<bent, color, flip, scratch>`` and ``ground_truth/`` folders and ``000.png``
    names. Sets drawn before 2026-12-07 wrote no ``synthetic.json``; the user deletes such a one by hand.
    """
    held = foreign_names(target, ()) if target.is_dir() else []
    if held and SETTINGS_FILE not in held:
        overwrite, out, category = (
            ("--overwrite", "--out", "--category") if cli else ("overwrite=True", "out", "category")
        )
        raise UserError(
            f"category folder {target} holds {few(held)} but no {SETTINGS_FILE}: a real category (its "
            f"photos), which {overwrite} would delete whole, or a set an older converters.synthetic drew "
            f"(before 2026-12-07), which wrote none: delete that one by hand, or choose another {out} or "
            f"{category}"
        )


def _write_set(folder: Path, config: SyntheticConfig, *, progress: bool) -> None:
    """Renders every image and mask of ``config`` into ``folder``, the category's MVTec layout."""
    jobs: list[tuple[str, str | None, int]] = (
        [("train", None, i) for i in range(config.n_train_good)]
        + [("test", None, i) for i in range(config.n_test_good)]
        + [("test", d, i) for d in config.defects for i in range(config.n_per_defect)]
    )
    width = max(3, len(str(max(config.n_train_good, config.n_test_good, config.n_per_defect, 1) - 1)))
    for sub in ["train/good", "test/good"] + [
        f"{part}/{d}" for d in config.defects for part in ("test", "ground_truth")
    ]:
        (folder / sub).mkdir(parents=True)
    for split, defect, index in tqdm(jobs, desc=f"synthetic {config.category}", disable=not progress):
        image, mask = render_sample(defect, _sample_rng(config.seed, split, defect, index), config.size)
        name = f"{index:0{width}d}"
        _write_png(folder / split / (defect or "good") / f"{name}.png", image)
        if defect is not None:
            _write_png(folder / "ground_truth" / defect / f"{name}_mask.png", mask)
    write_settings(folder / SETTINGS_FILE, config)


def write_settings(path: Path, config: SyntheticConfig) -> None:
    """Writes ``config`` as ``synthetic.json`` (atomically): every :class:`SyntheticConfig` field and
    the module that wrote it; no path nor time, so the same settings give the same bytes."""
    record = {"written_by": "converters.synthetic", **asdict(config), "defects": list(config.defects)}
    atomic_write(path, json_text(record, indent=1) + "\n")


# ----------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    defaults = SyntheticConfig()
    parser = OneLineParser(
        prog=command_name("converters.synthetic"),
        description="Write a deterministic synthetic metal-nut data set in MVTec AD layout.",
    )
    parser.add_argument(
        "--out", type=user_path, required=True, help="parent folder; the set goes to OUT/CATEGORY"
    )
    parser.add_argument("--category", default=defaults.category, help="category folder name (%(default)s)")
    parser.add_argument(
        "--size",
        type=int,
        default=defaults.size,
        help=f"image side in px, {MIN_SIZE} .. {MAX_SIZE} (%(default)s)",
    )
    parser.add_argument(
        "--n-train-good",
        type=int,
        default=defaults.n_train_good,
        help="good images in train/good (%(default)s)",
    )
    parser.add_argument(
        "--n-test-good", type=int, default=defaults.n_test_good, help="good images in test/good (%(default)s)"
    )
    parser.add_argument(
        "--n-per-defect",
        type=int,
        default=defaults.n_per_defect,
        help="images (each with its mask in ground_truth/) per defect type in test/<defect> (%(default)s)",
    )
    parser.add_argument(
        "--defects",
        nargs="+",
        action="extend",  # --defects a --defects b is both, not b alone
        metavar="NAME",
        help=f"defect types, some of: {' '.join(DEFECT_TYPES)} (all)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="base seed, 0 or more: the same seed writes byte-identical files (%(default)s)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing category folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (0 ok, 2 bad input).

    Args:
        argv: arguments without the program name; ``None`` reads ``sys.argv[1:]``.
    """
    return exit_code(lambda: _run(_parser().parse_args(argv)))


def _run(args: argparse.Namespace) -> None:
    """Writes the set the parsed arguments ask for and prints one summary line."""
    config = SyntheticConfig(
        category=args.category,
        size=args.size,
        n_train_good=args.n_train_good,
        n_test_good=args.n_test_good,
        n_per_defect=args.n_per_defect,
        defects=tuple(args.defects or SyntheticConfig().defects),
        seed=args.seed,
    )
    root = _generate(args.out, config, overwrite=args.overwrite, progress=not args.no_progress, cli=True)
    counts = ", ".join(
        [f"train/good {config.n_train_good}", f"test/good {config.n_test_good}"]
        + [f"test/{d} {config.n_per_defect}" for d in config.defects]
    )
    print(f"wrote {root}: {counts} images ({config.size}x{config.size}, seed {config.seed})")


if __name__ == "__main__":
    raise SystemExit(main())
