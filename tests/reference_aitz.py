"""Transcription of CoAT's step evaluation, for differential tests of the ``aitz`` scorer.

Source: github.com/IMNearth/CoAT at commit 9ab1a9f0e76581c50c84f8ebc6ada1a2084a0c71
(Apache-2.0): ``coat/evaluate.py`` (``ActionEvaluator``: ``action_map``, ``_parse_action_``,
``_parse_answer_``, ``_check_click_``, ``__call__``), ``coat/screen_utils.py``
(``enlarge_bbox``, ``check_inside``, ``intersect_iou``) and ``coat/action_utils.py``
(``extract_gt_action``, whose tap test is AITW's ``is_tap_action`` in JAX's float32, taken
from :mod:`tests.reference_aitw`).

Kept as published, with two changes that do not touch the verdict: ``imagesize.get`` reads
the width and height from the step (``gt["image_size"]``) instead of the PNG, and
``row_col_sort`` (which only orders the UI nodes for the set-of-marks ``tag`` mode, unused
here) is left out. ``fill_gt_click_point=True`` applies the fix our ``aitz`` scorer documents:
``_parse_answer_`` leaves the ground-truth click point at ``[0, 0]``; with the flag it is
``extract_gt_action``'s click point (lift point times the image size, rounded).
"""

import json

import Levenshtein
import numpy as np

from tests.reference_aitw import ActionType, is_tap_action


def extract_gt_action(example):
    ex_action_type = example["result_action_type"]
    if ex_action_type == ActionType.DUAL_POINT:
        lift_yx = json.loads(example["result_lift_yx"])
        touch_yx = json.loads(example["result_touch_yx"])
        if is_tap_action(np.array(touch_yx), np.array(lift_yx)):
            action_type = "CLICK"
            w, h = example["image_size"]
            click_y, click_x = round(lift_yx[0] * h), round(lift_yx[1] * w)
            action = (click_y, click_x)
        else:
            action_type = "SCROLL"
            v_change = abs(touch_yx[0] - lift_yx[0])
            h_change = abs(lift_yx[1] - touch_yx[1])
            is_scroll_up = lift_yx[0] < touch_yx[0]
            is_scroll_left = lift_yx[1] < touch_yx[1]
            if v_change >= 0.9 * h_change:
                action = "scroll up" if is_scroll_up else "scroll down"
            else:
                action = "scroll left" if is_scroll_left else "scroll right"
    elif ex_action_type in (ActionType.PRESS_BACK, ActionType.PRESS_HOME):
        button = ActionType(ex_action_type).name.split("_")[1].lower()
        action = f"press the {button} button"
        action_type = f"PRESS {button}".upper()
    elif ex_action_type == ActionType.PRESS_ENTER:
        action = "press enter"
        action_type = "PRESS ENTER"
    elif ex_action_type == ActionType.TYPE:
        action_text = example["result_action_text"]
        action = f'input text "{action_text}"'
        action_type = "INPUT"
    elif ex_action_type == ActionType.STATUS_TASK_COMPLETE:
        action = "stop and set the query as completed"
        action_type = "STOP"
    elif ex_action_type == ActionType.STATUS_TASK_IMPOSSIBLE:
        action = "stop and set the query as impossible"
        action_type = "STOP"
    else:
        raise NotImplementedError
    return action, action_type


def enlarge_bbox(bbox_list, scale_factor=1.2):
    bbox_array = np.array(bbox_list)
    x_min, y_min, x_max, y_max = (
        bbox_array[:, 0],
        bbox_array[:, 1],
        bbox_array[:, 2],
        bbox_array[:, 3],
    )
    x_center = (x_min + x_max) / 2
    y_center = (y_min + y_max) / 2
    width = (x_max - x_min) * scale_factor
    height = (y_max - y_min) * scale_factor
    new_x_min = x_center - width / 2
    new_y_min = y_center - height / 2
    new_x_max = x_center + width / 2
    new_y_max = y_center + height / 2
    return np.vstack((new_x_min, new_y_min, new_x_max, new_y_max)).T


def check_inside(x, y, bbox_array):
    x_min, y_min, x_max, y_max = (
        bbox_array[:, 0],
        bbox_array[:, 1],
        bbox_array[:, 2],
        bbox_array[:, 3],
    )
    within_x = (x_min <= x) & (x <= x_max)
    within_y = (y_min <= y) & (y <= y_max)
    within_bbox = within_x & within_y
    if np.any(within_bbox):
        return True, bbox_array[within_bbox]
    return False, None


def intersect_iou(can_bbox, ref_bboxes):
    inter_xmin = np.maximum(can_bbox[0], ref_bboxes[:, 0])
    inter_ymin = np.maximum(can_bbox[1], ref_bboxes[:, 1])
    inter_xmax = np.minimum(can_bbox[2], ref_bboxes[:, 2])
    inter_ymax = np.minimum(can_bbox[3], ref_bboxes[:, 3])
    inter_area = np.maximum(0, inter_xmax - inter_xmin) * np.maximum(0, inter_ymax - inter_ymin)
    can_bbox_area = np.maximum((can_bbox[2] - can_bbox[0]) * (can_bbox[3] - can_bbox[1]), 1)
    ref_bboxes_area = np.maximum(
        (ref_bboxes[:, 2] - ref_bboxes[:, 0]) * (ref_bboxes[:, 3] - ref_bboxes[:, 1]), 1
    )
    union_area = can_bbox_area + ref_bboxes_area - inter_area
    return inter_area / union_area


class ActionEvaluator:
    def __init__(self, demo_mode, screen_mode, fill_gt_click_point=False):
        self.demo_mode = demo_mode
        self.screen_mode = screen_mode
        self.fill_gt_click_point = fill_gt_click_point
        self._all_action_types_ = ["click", "scroll", "type", "press", "stop"]

    def action_map(self, action_api):
        if not action_api:
            return None
        action_api = action_api.lower()
        if action_api == "input":
            return "type"
        for act_type in self._all_action_types_:
            if act_type in action_api:
                return act_type
        return None

    def _parse_action_(self, pred, w, h):
        pr = pred.get("action_predict", {})
        if self.demo_mode not in pr:
            return (None,) * 6
        action = pr[self.demo_mode].get(self.screen_mode, {})
        if not action:
            return (None,) * 6
        pd_action_type = self.action_map(action.get("ACTION", None))
        pd_action_args = action.get("ARGS", {})
        if not isinstance(pd_action_args, dict):
            pd_action_args = {}
        pd_action_bbox = pd_action_args.get("bbox", None)
        if pd_action_bbox is not None:
            xmin, ymin, xmax, ymax = pd_action_bbox[:4]
            xmin = round(xmin / 1000 * w)
            ymin = round(ymin / 1000 * h)
            xmax = round(xmax / 1000 * w)
            ymax = round(ymax / 1000 * h)
            pd_action_bbox = [xmin, ymin, xmax, ymax]
        pd_action_idx = pd_action_args.get("idx", None)
        if pd_action_idx:
            try:
                pd_action_idx = int(pd_action_idx)
            except Exception:
                pd_action_idx = None
        pd_action_direction = pd_action_args.get("direction", None)
        pd_action_text = pd_action_args.get("text", "")
        pd_action_button = (
            None if pd_action_type != "press" else action["ACTION"].split("_")[1].lower()
        )
        return (
            pd_action_type,
            pd_action_bbox,
            pd_action_idx,
            pd_action_direction,
            pd_action_text,
            pd_action_button,
        )

    def _parse_answer_(self, gt):
        gt_words = gt["coat_action_desc"].split(" ")
        gt_action_type = self.action_map(gt_words[0])
        gt_action_text = gt["result_action_text"]
        gt_action_direction = "" if gt_action_type != "scroll" else gt_words[1].strip()
        gt_action_button = ""
        if gt_action_type == "press":
            for button in ["enter", "back", "home"]:
                if button in gt["coat_action_desc"]:
                    gt_action_button = button
                    break
        w, h = gt["image_size"]
        gt_action_xy = [0, 0]
        if gt_action_type == "scroll":
            rel_y, rel_x = json.loads(gt["result_touch_yx"])
            abs_y, abs_x = int(rel_y * h), int(rel_x * w)
            gt_action_xy = [abs_x, abs_y]
        if gt_action_type == "click" and self.fill_gt_click_point:  # the documented fix
            click_y, click_x = extract_gt_action(gt)[0]
            gt_action_xy = [click_x, click_y]
        gt_cand_nodes = []
        for org_bbox, txt, ui_class in zip(gt["ui_positions"], gt["ui_text"], gt["ui_types"]):
            ymin, xmin, h, w = org_bbox
            bbox = [xmin, ymin, xmin + w, ymin + h]
            gt_cand_nodes.append({"bounds": bbox, "text": txt, "type": ui_class})
        return (
            gt_action_type,
            gt_action_xy,
            gt_cand_nodes,
            gt_action_text,
            gt_action_button,
            gt_action_direction,
        )

    def _check_click_(self, pred_bbox, gt_xy, gt_nodes):
        if not pred_bbox:
            return False
        pred_bbox = enlarge_bbox([pred_bbox])[0]
        xmin, ymin, xmax, ymax = pred_bbox
        gt_x, gt_y = gt_xy
        is_correct = xmin <= gt_x <= xmax and ymin <= gt_y <= ymax
        if is_correct:
            return True
        bbox_array = enlarge_bbox([x["bounds"] for x in gt_nodes], scale_factor=1.2)
        is_inside, bbox_inside = check_inside(gt_x, gt_y, bbox_array)
        if is_inside:
            ious = intersect_iou(pred_bbox, bbox_inside)
            if np.any(ious > 0.5):
                return True
        return False

    def __call__(self, gt, pred):
        w, h = gt["image_size"]
        (
            gt_action_type,
            gt_action_xy,
            gt_cand_nodes,
            gt_action_text,
            gt_action_button,
            gt_action_direction,
        ) = self._parse_answer_(gt)
        (
            pd_action_type,
            pd_action_bbox,
            pd_action_idx,
            pd_action_direction,
            pd_action_text,
            pd_action_button,
        ) = self._parse_action_(pred, w, h)
        hit_format = pd_action_type is not None
        type_match = pd_action_type is not None and gt_action_type == pd_action_type
        exact_match = False
        text_dist = None
        if type_match and pd_action_type == "click":
            if self.screen_mode == "tag" and pd_action_idx:
                if 0 <= pd_action_idx < len(gt_cand_nodes):
                    pd_action_bbox = gt_cand_nodes[pd_action_idx]["bounds"]
            exact_match = self._check_click_(pd_action_bbox, gt_action_xy, gt_cand_nodes)
        if type_match and pd_action_type == "scroll":
            exact_match = pd_action_direction == gt_action_direction
        if type_match and pd_action_type == "type":
            text_dist = Levenshtein.ratio(pd_action_text, gt_action_text)
            exact_match = (
                pd_action_text in gt_action_text
                or gt_action_text in pd_action_text
                or text_dist > 0.8
            )
        if type_match and pd_action_type == "press":
            exact_match = pd_action_button == gt_action_button
        if type_match and pd_action_type == "stop":
            exact_match = True
        return {
            "type_match": type_match,
            "exact_match": exact_match,
            "text_dist": text_dist,
            "format_hit": hit_format,
        }
