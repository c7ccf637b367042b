"""Ground-truth masks to defect instances: boxes, polygons, RLE and areas.

Conventions (shared by every writer):

- A mask is ``(H, W)`` integer; a pixel ``> 0`` is defect. With a value map,
  each non-zero value is its own class (MVTec-family sets that code the defect
  type in the pixel value).
- One instance per 8-connected component (per value); MVTec LOCO's region files are one instance
  each (per value), whatever their parts (:func:`region_file_instances`), as its evaluation counts them.
- Geometry is in *pixel-edge* coordinates, COCO's convention: pixel ``(row r,
  col c)`` covers ``[c, c+1) x [r, r+1)``. Boxes are ``xyxy`` with exclusive
  ``x2, y2``, so a one-pixel instance at ``(0, 0)`` has box ``[0, 0, 1, 1]``
  and COCO ``bbox`` ``[0, 0, 1, 1]``.
- Polygons trace the outline of the pixels (not their centres), so
  ``pycocotools`` rasterises them back to the component. Measured: exact
  (IoU 1.0) for all 62,615 components of >= 25 px in 40,000 random blob masks
  (unions of ellipses, like real defects); one-pixel spikes are bevelled, so
  random pixel noise goes down to IoU 0.90 at >= 25 px. The tests assert
  IoU >= 0.9 on random blobs and exactness on a seeded set of 2,000, and on
  one-pixel-wide scratches that cross or branch (300 seeded random walks).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import shapely
from PIL import Image
from pycocotools import mask as mask_utils
from shapely.geometry import LineString, Point, Polygon

from common.errors import UserError
from common.exif import check_mask_upright
from common.image_files import decode_image_file
from common.masks import mask_values
from converters.records import GOOD

#: Mitre joins keep square pixel corners square; the limit bevels the rare
#: one-pixel spikes so they do not reach into a neighbouring pixel.
_MITRE_LIMIT = 2.0


@dataclass(frozen=True)
class DefectInstance:
    """One defect region, the record every writer consumes: a connected component, or the parts of one
    MVTec LOCO region file (:func:`region_file_instances`).

    Attributes:
        class_name: defect type (folder name, or the name of its mask value).
        xyxy: ``(4,)`` float box in pixel edges, ``x2``/``y2`` exclusive.
        polygons: outer rings, each ``(K, 2)`` float ``x, y`` in pixel edges,
            ``K >= 3``; usually one, several where an 8-connected component
            touches itself at a single corner or a region file has parts apart.
        holes: rings of the holes inside the polygons, same format.
        rle: COCO compressed RLE of the exact pixels, ``counts`` as ``str``.
        area: number of pixels.
        value: the mask pixel value the instance came from.
        parts: the components a region file's instance was joined from (:func:`join_instances`), each
            with its own rings; empty for one component. Formats of one polygon per object write a
            line per part (:func:`converters.yolo.instance_yolo_lines`).
    """

    class_name: str
    xyxy: np.ndarray
    polygons: list[np.ndarray]
    holes: list[np.ndarray] = field(default_factory=list)
    rle: dict = field(default_factory=dict)
    area: int = 0
    value: int = 255
    parts: tuple[DefectInstance, ...] = field(default=(), compare=False, repr=False)

    @property
    def has_holes(self) -> bool:
        return bool(self.holes)


def read_mask(path: str | Path, *, value_coded: bool = False) -> np.ndarray:
    """Reads a mask file into ``(H, W)`` integers, whatever its channels or depth.

    8- and 16-bit, grey, RGB and RGBA files are accepted. Colour masks whose
    channels agree are read as grey; otherwise the channel maximum is taken,
    so any coloured pixel counts as defect. A fully transparent pixel is background,
    whatever its colour: a mask painted on a transparent layer keeps the defect in its alpha
    and is often white (or any colour) everywhere underneath. Where every painted pixel is black
    (an editor's default colour), the painted pixels are the defect, at the depth's maximum. A palette
    PNG with a coloured index whose index 0 is not black and covers most of it, a background, is read
    as its indices (:func:`palette_indices`): read by colour, a coloured or white background was defect;
    a palette of greys only (black and white) is read as its greys, whichever comes first, and one
    whose index 0 is a colour and whose black indices cover over half of it (an editor's export, red
    defect first on a black background) by colour, with or without a value map.

    Args:
        path: the mask file.
        value_coded: a value map names the mask's values (``--mask-values``, LOCO's
            ``defects_config.json``): two colours that the channel maximum reads as one value
            (red and green, both 255) would silently become one class, so they are refused; and a
            PNG whose palette is coloured (VOC, CVAT, LabelMe: index ``i`` is class ``i``) is read as
            its indices, not its colours (:func:`palette_indices`), unless index 0 is a colour and
            black indices cover over half of it.

    Raises:
        UserError: the file is missing, unreadable or not an image, a TIFF that an EXIF orientation tag
            turns (OpenCV decodes it turned: :func:`common.exif.check_mask_upright`), or
            (``value_coded``) two of its colours read as one value.
    """
    mask = decode_image_file(path, cv2.IMREAD_UNCHANGED, kind="mask")
    check_mask_upright(path)  # once decoded: an unreadable file is named as such
    if (indices := palette_indices(path, coloured=value_coded)) is not None:
        return indices
    if mask.ndim == 3:
        transparent = mask[..., 3] == 0 if mask.shape[2] == 4 else None
        mask = mask[..., :3]
        if transparent is not None and transparent.any():
            if not transparent.all() and not mask[~transparent].any():
                # black strokes on a transparent layer (an editor's default colour): the alpha is the mask
                top = np.iinfo(mask.dtype).max if np.issubdtype(mask.dtype, np.integer) else 1
                mask = np.where(transparent[..., None], 0, top).astype(mask.dtype)
            else:
                mask = np.where(transparent[..., None], 0, mask).astype(mask.dtype)
        if mask.shape[2] == 1 or (
            np.array_equal(mask[..., 0], mask[..., 1]) and np.array_equal(mask[..., 0], mask[..., 2])
        ):
            mask = mask[..., 0]
        else:
            if value_coded:
                check_colours_keep_values(mask, path)
            mask = mask.max(axis=2)
    if not np.issubdtype(mask.dtype, np.integer):
        mask = (mask > 0).astype(np.uint8)
    return np.ascontiguousarray(mask)


def palette_indices(path: str | Path, *, coloured: bool = True) -> np.ndarray | None:
    """``(H, W)`` uint8 palette indices of a PNG that colours an index it uses (not grey) and whose index 0
    is not black and covers over half of it (a background) or, with ``coloured``, any such PNG; else None.

    Label tools write class ``i`` as palette index ``i`` shown in a colour (VOC's ``(128, 0, 0)`` for 1),
    which OpenCV decodes to that colour, and the background as index 0, which some show in a colour or
    white: read as its colour, it was defect, one instance around the photo. A palette whose used
    colours are greys only (black and white) reads as its grey values, as OpenCV gives them and as its
    one-channel twin reads (None): an image editor, PIL's ``quantize`` too, may put white first, and a
    white defect on black covering over half of it was read inverted. Where a used colour is a real one,
    index 0 is taken for the background where it is not black and covers most of the mask, as a
    background does. Where index 0 is a colour and black indices cover over half of it, an editor's
    export (PIL's ``quantize``) that put a red defect first and its black background second, it is None
    (read by colour, as its colour twin is): read by index, the defect was background. A label tool's
    palette whose black is a class or void (CamVid's unlabelled, a zero-padded palette's 255) covering
    less is read by index with ``coloured``; any other file is None.
    """
    if not _is_palette_png(path):
        return None
    try:
        with Image.open(path) as image:
            indices = np.asarray(image)
            palette = np.array(image.getpalette() or [], np.int64).reshape(-1, 3)
    except (OSError, ValueError):  # OpenCV decoded it: read as it did
        return None
    present = np.unique(indices)
    used = palette[present[present < len(palette)]]
    if (used == used[:, :1]).all():  # greys only: as its one-channel twin reads, whichever comes first
        return None
    if palette[0].any() and np.count_nonzero(indices == 0) * 2 > indices.size:
        return np.ascontiguousarray(indices, dtype=np.uint8)  # a background shown in a colour, or white
    black = [i for i in present[1:] if i < len(palette) and not palette[i].any()]
    if palette[0].any() and present[0] == 0 and np.isin(indices, black).sum() * 2 > indices.size:
        # index 0 a colour, black indices over half: an editor's export (PIL's quantize) that put the
        # defect's colour first over a black background, as its colour twin reads; a label tool's black
        # class or void (a zero-padded palette's 255) over less is read by index, index 0 background
        return None
    return np.ascontiguousarray(indices, dtype=np.uint8) if coloured else None


def palette_reading(path: str | Path | None) -> str:
    """How :func:`read_mask` with a value map read ``path``, where it is a palette PNG, as a clause for an
    error about its values (``"; a palette PNG, read by ..."``); ``""`` for any other file.

    A label tool shows class ``i`` as index ``i``, an image editor's indexed export its greys or colours:
    a value the map lacks may be the other reading's, which the file's look does not tell.
    """
    try:
        if path is None or not _is_palette_png(path):
            return ""
        if palette_indices(path) is None:
            return f"; a palette PNG, read by the greys or colours it shows, not by its indices{_SAVE}"
    except OSError:
        return ""
    return f"; a palette PNG, read by its indices (index 0 background), not by the colours it shows{_SAVE}"


#: How to make a palette mask read as meant, the end of :func:`palette_reading`'s clause.
_SAVE = ": save it with one channel, one grey value per class"


def _is_palette_png(path: str | Path) -> bool:
    """Whether ``path`` is a PNG of colour type 3 (a palette), by its header."""
    with open(path, "rb") as file:
        header = file.read(26)
    return header[:8] == b"\x89PNG\r\n\x1a\n" and len(header) >= 26 and header[25] == 3


def check_colours_keep_values(colour: np.ndarray, path: str | Path) -> None:
    """Refuses a colour mask ``(H, W, 3)`` (BGR, as OpenCV reads it) two of whose colours have one
    channel maximum, the value :func:`read_mask` reads them as.

    Raises:
        UserError: naming the file (an indexed PNG, read by its colours, is called so: its indices are
            not read), two such colours (as RGB) and their value.
    """
    pixels = colour.reshape(-1, 3)
    colours = np.unique(pixels[pixels.any(axis=1)], axis=0)
    values, counts = np.unique(colours.max(axis=1), return_counts=True)
    if (counts > 1).any():
        value = values[counts > 1][0]
        first, second = (
            tuple(int(c) for c in rgb[::-1]) for rgb in colours[colours.max(axis=1) == value][:2]
        )
        kind, reading = "colour mask", ""
        if _is_palette_png(path):  # read by colour (palette_indices): its indices are not what is read
            kind, reading = "indexed (palette) PNG mask", ", read by the colours it shows, not by its indices"
        raise UserError(
            f"{kind} {path}{reading}: the colours {first} and {second} are both read as value {value}, so a "
            "value map cannot tell their classes apart; save it with one channel, one grey value per class"
        )


def mask_to_xyxy(mask: np.ndarray) -> np.ndarray:
    """Tight box of the positive pixels of ``mask`` ``(H, W)`` as ``(4,)`` xyxy, exclusive max.

    >>> mask_to_xyxy(np.array([[0, 0], [0, 1]])).tolist()
    [1.0, 1.0, 2.0, 2.0]
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("mask is empty")
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=float)


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO compressed RLE of ``mask`` ``(H, W)`` with ``counts`` as ``str`` (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def rle_to_mask(rle: dict) -> np.ndarray:
    """Decodes a COCO RLE (``counts`` as ``str``, ``bytes`` or a list of ints) to ``(H, W)`` bool."""
    return mask_utils.decode(_pycocotools_rle(rle)).astype(bool)


def rle_to_xyxy(rle: dict) -> np.ndarray:
    """Tight box of a COCO RLE's pixels as ``(4,)`` xyxy, exclusive max, read from its runs (no mask
    decoded); all zeros for an empty mask.

    >>> rle_to_xyxy(mask_to_rle(np.array([[0, 0], [0, 1]], bool))).tolist()
    [1.0, 1.0, 2.0, 2.0]
    """
    x, y, w, h = mask_utils.toBbox(_pycocotools_rle(rle))
    return np.array([x, y, x + w, y + h], dtype=float)


def _pycocotools_rle(rle: dict) -> dict:
    """``rle`` with ``counts`` as pycocotools' compressed ``bytes``."""
    if isinstance(rle["counts"], list):
        height, width = rle["size"]
        return mask_utils.frPyObjects(rle, height, width)
    if isinstance(rle["counts"], str):
        return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return rle


def rle_counts(counts: str | bytes | list) -> list[int]:
    """The run lengths of a COCO RLE's ``counts``: a list as given, a compressed string decoded.

    A pure port of pycocotools' ``rleFrString`` (6-bit chunks from ``'0'``, the third run on stored
    as the difference to the one two before), so a hand-edited RLE can be checked without decoding
    its mask. pycocotools itself decodes a string whose runs do not add up to ``height x width`` into
    a mask of whatever the runs cover, or stops with a bare ``ValueError``.

    >>> rle_counts("414")  # mask_to_rle of a 3x3 mask with its centre pixel set
    [4, 1, 4]

    Raises:
        ValueError: a character outside ``'0'``-``'o'``, or a string that stops inside a run.
    """
    if isinstance(counts, list):
        return list(counts)
    text = counts.decode("ascii", errors="replace") if isinstance(counts, bytes) else counts
    runs: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position == len(text):
                raise ValueError("RLE counts end inside a run")
            chunk = ord(text[position]) - 48
            if not 0 <= chunk < 64:
                raise ValueError(f"RLE counts hold {text[position]!r}, not a character of COCO's RLE")
            value |= (chunk & 0x1F) << shift
            more = bool(chunk & 0x20)
            position, shift = position + 1, shift + 5
            if not more and chunk & 0x10:
                value |= -1 << shift  # negative: a difference
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def segmentation_to_mask(segmentation: list | dict, height: int, width: int) -> np.ndarray:
    """Decodes a COCO ``segmentation`` (polygons or RLE) to ``(height, width)`` bool.

    Polygons are rendered by pycocotools, as COCO tools do; an RLE decodes at its own ``size``.
    """
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        return mask_utils.decode(rle).astype(bool)
    return rle_to_mask(segmentation)


def crop_to_rle(crop: np.ndarray, *, x0: int, y0: int, height: int, width: int) -> dict:
    """COCO RLE of a full ``(height, width)`` mask that is ``crop`` at ``(x0, y0)`` and empty elsewhere.

    Equivalent to ``mask_to_rle`` on the pasted mask, but touches only the
    crop's column strip: encoding a full-size array per instance would cost
    ``O(H * W)`` per instance and dominate the conversion time.

    Args:
        crop: ``(h, w)`` bool, the instance inside its box.
        x0, y0: top-left corner of the crop in the full mask, pixels.
        height, width: size of the full mask.
    """
    h, w = crop.shape
    strip = np.zeros((height, w), dtype=bool)
    strip[y0 : y0 + h] = crop
    flat = strip.ravel(order="F")  # RLE runs go down columns
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], edges, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts.insert(0, 0)  # runs alternate starting with background
    counts[0] += x0 * height
    tail = (width - x0 - w) * height
    if len(counts) % 2:  # last run is background: extend it
        counts[-1] += tail
    elif tail:
        counts.append(tail)
    rle = mask_utils.frPyObjects({"counts": counts, "size": [height, width]}, height, width)
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def _contours(binary: np.ndarray) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """Outer contour and hole contours of each 8-connected component of ``binary`` ``(H, W)``.

    OpenCV's border following treats the foreground as 8-connected, so each
    top-level contour of ``RETR_CCOMP`` is exactly one component (a component
    sitting inside another's hole is top-level too). Points are pixel
    indices, ``(K, 2)`` int ``x, y``.
    """
    contours, hierarchy = cv2.findContours(binary.view(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    hierarchy = hierarchy[0]
    components = []
    for index, contour in enumerate(contours):
        if hierarchy[index][3] != -1:
            continue  # a hole: collected with its parent below
        holes = []
        child = hierarchy[index][2]
        while child != -1:
            holes.append(contours[child].reshape(-1, 2))
            child = hierarchy[child][0]
        components.append((contour.reshape(-1, 2), holes))
    return components


def _centre_geometry(points: np.ndarray) -> shapely.Geometry:
    """Pixel-centre contour points ``(K, 2)`` to a shapely point, line or polygon."""
    if len(points) == 1:
        return Point(points[0])
    if len(points) == 2:
        return LineString(points)
    # A one-pixel-wide line (or tree of lines: an X of crossed scratches) is traced there and back:
    # a polygon of no area, which _grow's make_valid turns into its lines (not their convex hull,
    # which filled the space between an X's arms).
    return Polygon(points)


def _grow(geometry: shapely.Geometry, distance: float) -> shapely.Geometry:
    """Buffers by ``distance`` pixels keeping pixel corners square (mitre joins, square caps)."""
    return shapely.buffer(
        shapely.make_valid(geometry),
        distance,
        cap_style="square",
        join_style="mitre",
        mitre_limit=_MITRE_LIMIT,
    )


def contour_to_polygons(
    outer: np.ndarray, holes: list[np.ndarray], *, width: int, height: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One component's OpenCV contours (pixel indices) to rings in pixel-edge coordinates.

    OpenCV traces the centres of the boundary pixels. Growing that outline by
    half a pixel with mitred corners gives the outline of the pixels
    themselves, so one-pixel specks and one-pixel-wide lines get a real area
    instead of a degenerate polygon, and rasterising the rings gives the
    pixels back. Hole contours run through the object pixels around a hole,
    so the same growth shrinks them onto the hole's pixel edges.

    Args:
        outer: ``(K, 2)`` int, the component's outer contour.
        holes: its hole contours, same format.
        width, height: image size; rings are clipped to it.

    Returns:
        ``(polygons, holes)``: lists of ``(K, 2)`` float arrays, ``K >= 3``.
    """
    # +0.5: from pixel index to pixel centre in pixel-edge coordinates.
    grown = _grow(_centre_geometry(outer + 0.5), 0.5)
    hole_polygons = [Polygon(ring + 0.5) for ring in holes if len(ring) >= 3]
    if hole_polygons:
        grown = shapely.difference(grown, shapely.union_all([_grow(hole, -0.5) for hole in hole_polygons]))
    grown = shapely.simplify(grown, 0.0)  # drops the collinear vertices the buffer leaves
    limits = np.array([width, height], dtype=float)
    polygons, hole_out = [], []
    for part in getattr(grown, "geoms", [grown]):
        if not isinstance(part, Polygon) or part.is_empty:
            continue
        polygons.append(np.clip(np.asarray(part.exterior.coords)[:-1], 0.0, limits))
        hole_out.extend(np.clip(np.asarray(ring.coords)[:-1], 0.0, limits) for ring in part.interiors)
    return polygons, hole_out


def mask_to_polygons(mask: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Rings in pixel-edge coordinates of every component of ``mask`` ``(H, W)``.

    Returns:
        ``(polygons, holes)``: lists of ``(K, 2)`` float arrays, ``K >= 3``.
    """
    height, width = mask.shape
    polygons, holes = [], []
    for outer, inner in _contours(np.ascontiguousarray(mask > 0)):
        rings, hole_rings = contour_to_polygons(outer, inner, width=width, height=height)
        polygons += rings
        holes += hole_rings
    return polygons, holes


def polygons_to_mask(
    polygons: list[np.ndarray], *, height: int, width: int, holes: list[np.ndarray] | None = None
) -> np.ndarray:
    """Rasterises rings in pixel-edge coordinates with pycocotools, the way COCO tools will.

    Returns:
        ``(height, width)`` bool: union of ``polygons`` minus union of ``holes``.
    """

    def union(rings: list[np.ndarray]) -> np.ndarray:
        if not rings:
            return np.zeros((height, width), dtype=bool)
        rles = mask_utils.frPyObjects([ring.ravel().tolist() for ring in rings], height, width)
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)

    return union(polygons) & ~union(holes or [])


@dataclass(frozen=True)
class MaskInstances:
    """What one mask yields: the kept instances and how many were below ``min_area``."""

    instances: list[DefectInstance]
    n_small: int = 0


def mask_to_instances(
    mask: np.ndarray,
    *,
    class_name: str = "defect",
    value_names: dict[int, str] | None = None,
    min_area: int = 1,
    map_name: str = "the mask-values map",
) -> MaskInstances:
    """Splits a mask into one instance per 8-connected component (per value).

    Args:
        mask: ``(H, W)`` integer mask, ``> 0`` is defect.
        class_name: class of every instance when ``value_names`` is None.
        value_names: maps pixel value to class name for value-coded masks;
            values mapped to ``"good"`` are background.
        min_area: components with fewer pixels are dropped (and counted).
        map_name: where ``value_names`` came from, for the error (a layout's ``defects_config.json``).

    Raises:
        UserError: a non-zero value of the mask is not in ``value_names``.
    """
    height, width = mask.shape
    if value_names is None:
        groups = [(class_name, 255, mask > 0)]
    else:
        values = defect_values(mask, value_names, map_name=map_name)
        groups = [(value_names[v], v, mask == v) for v in values]

    instances: list[DefectInstance] = []
    n_small = 0
    for name, value, binary in groups:
        for outer, holes in _contours(binary):
            x, y, w, h = cv2.boundingRect(outer)
            # Labelling only the component's box finds exactly its pixels: no other
            # component touches it (they would be one), and it never leaves its box.
            # Far cheaper than labelling the whole image (and than OpenCV's stats).
            box = np.ascontiguousarray(binary[y : y + h, x : x + w]).view(np.uint8)
            _, labels = cv2.connectedComponents(box, connectivity=8)
            crop = labels == labels[outer[0, 1] - y, outer[0, 0] - x]
            area = int(np.count_nonzero(crop))
            if area < min_area:
                n_small += 1
                continue
            polygons, hole_rings = contour_to_polygons(outer, holes, width=width, height=height)
            instances.append(
                DefectInstance(
                    class_name=name,
                    xyxy=np.array([x, y, x + w, y + h], dtype=float),
                    polygons=polygons,
                    holes=hole_rings,
                    rle=crop_to_rle(crop, x0=x, y0=y, height=height, width=width),
                    area=area,
                    value=value,
                )
            )
    instances.sort(key=_reading_order)
    return MaskInstances(instances=instances, n_small=n_small)


def check_mask_values(
    mask: np.ndarray, value_names: Collection[int], *, map_name: str = "the mask-values map"
) -> list[int]:
    """The non-zero values of ``mask`` ``(H, W)``, each one that ``value_names`` (a value map's values)
    names; the one rule by which the converters and :mod:`anomaly.data` refuse a value the map lacks.

    Raises:
        UserError: naming the first value not in ``value_names``, ``map_name`` and the known values (the
            caller puts the mask file before it).
    """
    values = mask_values(mask).tolist()
    for value in values:
        if value not in value_names:
            known = ", ".join(str(v) for v in sorted(value_names))
            raise UserError(f"mask value {value} is not in {map_name} (known: {known})")
    return values


def defect_values(
    mask: np.ndarray, value_names: Mapping[int, str], *, map_name: str = "the mask-values map"
) -> list[int]:
    """The non-zero values of ``mask`` ``(H, W)`` that ``value_names`` (pixel value to class name) names
    defects: each value checked (:func:`check_mask_values`), those it names ``good`` left out as background;
    the one rule by which the converters and :mod:`anomaly.data` read a value-coded mask.

    >>> defect_values(np.array([[0, 1, 2]]), {1: "good", 2: "crack"})
    [2]

    Raises:
        UserError: as :func:`check_mask_values`.
    """
    values = check_mask_values(mask, value_names, map_name=map_name)
    return [value for value in values if value_names[value] != GOOD]


#: Why a defect photo whose mask is all zero is left out: a conversion skips it, with this reason, and
#: ``anomaly.evaluate`` does not score it (:func:`anomaly.data.read_masks`).
EMPTY_MASK_REASON = "empty mask"


def no_defect_value_reason(map_name: str) -> str:
    """Why a defect photo is left out whose mask holds values, each of which the value map ``map_name``
    names ``good`` (:func:`defect_values` finds none): a conversion skips it, with this reason, and
    ``anomaly.evaluate`` does not score it (:func:`anomaly.data.read_masks`)."""
    return f"no defect value in the mask ({map_name} names its values good)"


def _reading_order(instance: DefectInstance) -> tuple[float, float, int]:
    return instance.xyxy[1], instance.xyxy[0], instance.value


def join_instances(parts: Sequence[DefectInstance]) -> DefectInstance:
    """One instance of the disjoint ``parts`` of one class and value: the box spanning them, their rings,
    RLE and area together, and the parts themselves (``parts``).

    >>> a, b = mask_to_instances(np.array([[1, 0, 1]], np.uint8)).instances
    >>> joined = join_instances([a, b])
    >>> joined.xyxy.tolist(), len(joined.polygons), joined.area, len(joined.parts)
    ([0.0, 0.0, 3.0, 1.0], 2, 2, 2)
    """
    if len({(part.class_name, part.value) for part in parts}) != 1:
        raise ValueError("instances to join must share one class and value")
    if len(parts) == 1:
        return parts[0]
    boxes = np.stack([np.asarray(part.xyxy, dtype=float) for part in parts])
    rle = mask_utils.merge([_pycocotools_rle(part.rle) for part in parts], intersect=False)
    rle["counts"] = rle["counts"].decode("ascii")
    return DefectInstance(
        class_name=parts[0].class_name,
        xyxy=np.concatenate([boxes[:, :2].min(axis=0), boxes[:, 2:].max(axis=0)]),
        polygons=[ring for part in parts for ring in part.polygons],
        holes=[ring for part in parts for ring in part.holes],
        rle=rle,
        area=sum(part.area for part in parts),
        value=parts[0].value,
        parts=tuple(component for part in parts for component in (part.parts or (part,))),
    )


def region_file_instances(files: Sequence[MaskInstances]) -> MaskInstances:
    """The instances of an image's region files (MVTec LOCO: one file per defect region), each file's
    :func:`mask_to_instances` joined into one instance per value (:func:`join_instances`).

    MVTec's evaluation keeps each file one region: a file whose region lies in parts apart is one
    instance (not one per part), and two files whose regions touch stay two (not one merged).
    """
    instances: list[DefectInstance] = []
    for found in files:
        by_value: dict[int, list[DefectInstance]] = {}
        for instance in found.instances:
            by_value.setdefault(instance.value, []).append(instance)
        instances += [join_instances(parts) for parts in by_value.values()]
    instances.sort(key=_reading_order)
    return MaskInstances(instances=instances, n_small=sum(found.n_small for found in files))


def merge_masks(parts: Sequence[np.ndarray]) -> np.ndarray:
    """One value-coded mask from the region masks of one image (MVTec LOCO's files).

    Each part keeps its own non-zero values; where parts overlap the later one wins. (The converters
    make instances of each file apart: :func:`region_file_instances`.)

    Args:
        parts: ``(H, W)`` integer masks of one shape, at least one.

    Returns:
        ``(H, W)`` of the widest input dtype.

    >>> merge_masks([np.array([[255, 0]], np.uint8), np.array([[0, 7]], np.uint8)]).tolist()
    [[255, 7]]
    """
    if not parts:
        raise ValueError("no masks to merge")
    shapes = {part.shape for part in parts}
    if len(shapes) != 1:
        raise ValueError(f"masks of different shapes: {sorted(shapes)}")
    merged = np.array(parts[0], dtype=np.result_type(*parts))
    for part in parts[1:]:
        np.copyto(merged, part, where=part != 0, casting="unsafe")
    return merged
