"""SAM-assisted annotation of new defect photos: a local web page that writes MVTec masks, COCO and YOLO.

    python -m segmentation.annotate --images photos/ --out datasets/new_defects --classes scratch dent stain

The page (``static/``: one HTML file, plain JavaScript, a canvas) lists the
photos with their status; a left click adds a defect point, a right click (or
shift-click) a background point, a drag a box, and after each prompt SAM's
decoder, running on the cached image embedding, sends back its three candidate
masks. Enter accepts the shown candidate as an instance of the chosen class.

To review rather than draw, ``--proposals predictions.json`` (the inspection
cascade's COCO results) or ``--detector best.pt`` (run by the app on each
photo as it is opened, each box made a mask by the app's SAM) puts proposals
on the photos: hatched, in a dashed box labelled with class and score, listed
beside the instances. The user accepts one (Enter or A; Shift+A all of the
photo's), deletes it (Del), or corrects it (E: its box becomes the prompt,
clicks refine it, Enter accepts the new mask in its place). A file's proposal whose
class is not among ``--classes`` (``anomaly.predict``'s ``anomaly``) is shown as not a
class and accepted only as one of them (R: the selected class), so it never becomes a class.
When ``--checkpoint`` is a ``decoder.pt`` that carries a colour head (``colour_head: true`` in
training), the detector's box masks go through it as in evaluation
(``--no-colour-head``: not); one that carries a colour prompt (``colour_prompt: true``)
decodes those boxes with their colour maps as SAM's mask prompt, as evaluation does
(``--no-colour-prompt``: not). Clicks stay SAM's own, and a ``--proposals`` file's masks are shown
as the file gives them (SAM decodes none of them).

Modules, by what they hold:

- :mod:`~segmentation.annotate.session`: the state of one ``--out`` folder
  (images, statuses, instances, proposals, undo/redo), saved atomically on every change;
- :mod:`~segmentation.annotate.proposals`: the proposal record;
  :mod:`~segmentation.annotate.proposal_file`: ``--proposals``, the cascade's
  COCO results read and placed on the photos; :mod:`~segmentation.annotate.file_proposals`:
  the file's undecided proposals dropped from a photo replaced on disk while the page runs;
- :mod:`~segmentation.annotate.detector`: ``--detector``: boxes, SAM masks and
  proposals per photo, on the decoder thread;
- :mod:`~segmentation.annotate.export`: the MVTec-layout tree (value-coded
  masks, ``mask_values.json``) and YOLO + COCO through ``converters.convert``;
- :mod:`~segmentation.annotate.prefetch`: embeddings from the shared cache,
  computed ahead in a background thread;
- :mod:`~segmentation.annotate.predictor`: prompts to candidate masks
  (previews) and the exact full-resolution mask of an accepted candidate;
- :mod:`~segmentation.specks` (shared with the inspection cascade): ``--speck-cells``: islands
  and holes a few logit cells small removed from every mask (each would export as an instance);
- :mod:`~segmentation.annotate.zoom`: ``--crop-fraction``: which zoomed crop a
  small box is decoded on (segmentation's crop rule) and the crops' embeddings;
- :mod:`~segmentation.annotate.worker`: the one thread that runs the decoder
  for every request, with a short queue (a full one is answered 503);
- :mod:`~segmentation.annotate.files`: what the server may read (only below
  ``--images`` and ``--out``) and atomic writes;
- :mod:`~segmentation.annotate.app`: ``create_app``, the FastAPI app
  (:mod:`~segmentation.annotate.bad_requests`: its messages for unreadable requests);
  :mod:`~segmentation.annotate.routes`: its routers, one per resource;
- ``__main__``: the command line.
"""

from common.extras import require_for_package

require_for_package("annotate", __name__)
