"""smart_resize and the model <-> screen mapping."""

import pytest
from PIL import Image

from qvl_agent.geometry import (
    EDGE_TOLERANCE,
    CoordinateError,
    Frame,
    Monitor,
    model_view,
    smart_resize,
)

README_MAX = 1280 * 28 * 28


@pytest.mark.parametrize(
    ("screen", "max_pixels", "resized"),
    [
        ((1920, 1080), 12845056, (1932, 1092)),
        ((1920, 1080), README_MAX, (1316, 728)),
        ((1080, 2400), 12845056, (1092, 2408)),
        ((720, 1280), 12845056, (728, 1288)),
        ((2560, 1440), 12845056, (2548, 1428)),
    ],
)
def test_resized_sizes_match_the_published_examples(screen, max_pixels, resized):
    frame = Frame.fit(Monitor(width=screen[0], height=screen[1]), max_pixels=max_pixels)
    assert frame.resized_size == resized


def test_smart_resize_returns_height_first():
    assert smart_resize(1080, 1920) == (1092, 1932)


def test_smart_resize_rejects_extreme_aspect_ratios():
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 2500)


@pytest.mark.parametrize(
    ("width", "height"), [(1920, 1080), (1366, 768), (1080, 2400), (3840, 2160), (800, 600)]
)
@pytest.mark.parametrize("max_pixels", [README_MAX, 12845056])
def test_model_centre_maps_to_screen_centre_and_back(width, height, max_pixels):
    frame = Frame.fit(Monitor(width=width, height=height), max_pixels=max_pixels)
    sx, sy = frame.to_screen(frame.resized_width / 2, frame.resized_height / 2)
    assert abs(sx - width / 2) <= 1 and abs(sy - height / 2) <= 1
    mx, my = frame.to_model(sx, sy)
    assert abs(mx - frame.resized_width / 2) <= 1 and abs(my - frame.resized_height / 2) <= 1


def test_monitor_offset_is_added_and_clicks_stay_on_that_monitor():
    # A second monitor to the right of a 1920-wide first one.
    frame = Frame.fit(Monitor(left=1920, top=0, width=1366, height=768), max_pixels=README_MAX)
    assert frame.to_screen(0, 0) == (1920, 0)
    right, bottom = frame.to_screen(frame.resized_width, frame.resized_height)
    assert (right, bottom) == (1920 + 1365, 767)
    assert frame.to_model(1920 + 683, 384) == (frame.resized_width // 2, frame.resized_height // 2)


def test_points_just_past_the_edge_are_clamped_onto_the_monitor():
    frame = Frame.fit(Monitor(width=1920, height=1080), max_pixels=README_MAX)
    assert frame.to_screen(-EDGE_TOLERANCE, -3) == (0, 0)
    assert frame.to_screen(frame.resized_width + EDGE_TOLERANCE, 10)[0] == 1919


@pytest.mark.parametrize("point", [(-29, 10), (10, -100), (1316 + 29, 10), (10, 5000), (float("nan"), 1)])
def test_points_far_outside_are_rejected_with_a_message_for_the_model(point):
    frame = Frame.fit(Monitor(width=1920, height=1080), max_pixels=README_MAX)
    with pytest.raises(CoordinateError, match="1316x728"):
        frame.to_screen(*point)


def test_model_view_is_the_resized_screenshot():
    frame = Frame.fit(Monitor(width=1920, height=1080), max_pixels=README_MAX)
    image = Image.new("RGBA", (1920, 1080), (10, 20, 30, 0))
    view = model_view(image, frame)
    assert view.size == (1316, 728) and view.mode == "RGB"
    assert view.getpixel((600, 300)) == (10, 20, 30)


def test_model_view_refuses_a_screenshot_of_another_size():
    frame = Frame.fit(Monitor(width=1920, height=1080))
    with pytest.raises(ValueError, match="1366x768"):
        model_view(Image.new("RGB", (1366, 768)), frame)
