"""UI element boxes from an AndroidControl accessibility forest, as UGround takes them.

UGround's AndroidControl evaluation (OSU-NLP-Group/UGround, offline_evaluation/AndroidControl)
is the published scorer that grounds clicks in the accessibility tree, so its element set is
followed exactly:

1. ``extract_raw.py`` takes android_world's ``forest_to_ui_elements``: every node of every
   window's tree that is a leaf (no ``child_ids``), has a ``content_description``, or is
   scrollable;
2. and keeps those with a non-empty ``text`` or ``content_description``, visible to the user,
   of positive width and height, with ``x_min < 1080``, ``y_min < 2400``, ``x_max > 0`` and
   ``y_max > 0``. The one deliberate difference: 1080 x 2400 is the step's recorded screen
   size here (it is that size on AndroidControl's phones).
3. ``eval.py`` grounds a click in the smallest of these boxes holding the ground-truth point
   (edges included; the first of equal areas): :func:`samples.smallest_box_containing`.

A box is the node's ``bounds_in_screen`` as (left, top, right, bottom), in screen pixels.
"""

from __future__ import annotations

from qvl_agent.evaluation.protos import parse_forest
from qvl_agent.evaluation.samples import Box


def element_boxes(forest: bytes, screen: tuple[float, float]) -> list[Box]:
    """Every element's box on a ``screen`` = (width, height), in tree order, without repeats."""
    width, height = screen
    boxes: dict[Box, None] = {}
    for window in parse_forest(forest).windows:
        for node in window.tree.nodes:
            if not (not node.child_ids or node.content_description or node.is_scrollable):
                continue  # forest_to_ui_elements
            if not ((node.text or node.content_description) and node.is_visible_to_user):
                continue
            rect = node.bounds_in_screen
            box: Box = (float(rect.left), float(rect.top), float(rect.right), float(rect.bottom))
            if box[2] > box[0] and box[3] > box[1] and box[0] < width and box[1] < height \
                    and box[2] > 0 and box[3] > 0:
                boxes[box] = None
    return list(boxes)
