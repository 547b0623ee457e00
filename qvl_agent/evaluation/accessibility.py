"""UI element boxes from an AndroidControl accessibility forest.

Which nodes count as elements, as the dataset's authors describe their own filter
(google-research/google-research issue 2120, for the paper's Appendix C.4): a node whose
``text``, ``content_description``, ``hint_text`` or ``tooltip_text`` is not empty, or whose
class is a switch or an editable text field. On top of that, as UGround's AndroidControl
evaluation keeps them (offline_evaluation/AndroidControl/extract_raw.py): visible to the
user, a positive width and height, and on the screen. A box is the node's
``bounds_in_screen`` as (left, top, right, bottom) in screen pixels.
"""

from __future__ import annotations

from qvl_agent.evaluation.protos import parse_forest, text
from qvl_agent.evaluation.samples import Box

# Matched in the class name's last part, e.g. android.widget.Switch, AppCompatEditText.
ELEMENT_CLASSES = ("Switch", "EditText")


def element_boxes(forest: bytes, screen: tuple[float, float]) -> list[Box]:
    """Every element's box on a ``screen`` = (width, height), in tree order, without repeats."""
    width, height = screen
    boxes: dict[Box, None] = {}
    for window in parse_forest(forest).windows:
        for node in window.tree.nodes:
            if not (node.is_visible_to_user and _labelled(node)):
                continue
            rect = node.bounds_in_screen
            box: Box = (float(rect.left), float(rect.top), float(rect.right), float(rect.bottom))
            if box[2] > box[0] and box[3] > box[1] and box[0] < width and box[1] < height \
                    and box[2] > 0 and box[3] > 0:
                boxes[box] = None
    return list(boxes)


def _labelled(node) -> bool:
    if any((node.text, node.content_description, node.hint_text, node.tooltip_text)):
        return True
    class_name = text(node.class_name).rsplit(".", 1)[-1]
    return any(kind in class_name for kind in ELEMENT_CLASSES)
