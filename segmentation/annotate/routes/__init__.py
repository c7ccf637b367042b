"""The annotation server's routes, one ``fastapi.APIRouter`` per resource.

- :mod:`~segmentation.annotate.routes.files`: the page, its static files, and
  files from ``--images`` and ``--out``;
- :mod:`~segmentation.annotate.routes.images`: the session, images and their embeddings;
- :mod:`~segmentation.annotate.routes.instances`: predictions (clicks) and the
  instances made from them, statuses, undo and redo;
- :mod:`~segmentation.annotate.routes.export`: YOLO + COCO of the labelled images, the running export's
  progress and its cancel;
- :mod:`~segmentation.annotate.routes.shared`: what they share, the
  :class:`~segmentation.annotate.routes.shared.AppContext` that
  :func:`segmentation.annotate.app.create_app` puts on ``app.state`` and every
  route receives as a dependency.
"""
