"""Cost per step of the Android path against the simulated phone, through the real adb server.

    python bench/android_capture.py [--runs 15]

Median ms of: a raw framebuffer capture (`screencap`, what AndroidDevice uses by default),
a PNG capture (`screencap -p`), both decoded to an image, and an action round trip (a tap,
as AndroidDevice sends it), plus what adbutils' own `screenshot()` costs for comparison.
The sim encodes PNG at Pillow's fastest level; a real phone's PNG encoder is much slower
(2-3x raw on emulators, see shared/reference/devices.md), so the raw/PNG ratio here is a
lower bound.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.figures import write_figures  # noqa: E402
from environments.android_sim.session import AdbServer, SimulatedPhone  # noqa: E402


def median_ms(function, runs: int) -> float:
    function()  # warm up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1000, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "android_capture.json")
    args = parser.parse_args()
    from qvl_agent.actions import Click, Point
    from qvl_agent.devices.android import AndroidDevice

    with tempfile.TemporaryDirectory() as scratch, AdbServer() as server, \
            SimulatedPhone(server, Path(scratch) / "phone.json") as phone:
        device = AndroidDevice(phone.serial, client=phone.client)

        def capture(mode: str):
            device._capture_mode = mode
            return device.screenshot()

        tap = Click(coordinate=Point(model=(0, 0), screen=(540, 2300)))
        figures = {
            "capture_raw_ms": median_ms(lambda: capture("raw"), args.runs),
            "capture_png_ms": median_ms(lambda: capture("png"), args.runs),
            "adbutils_screenshot_ms": median_ms(
                lambda: phone.client.device(phone.serial).screenshot(error_ok=False), args.runs),
            "tap_round_trip_ms": median_ms(lambda: device.execute(tap), args.runs),
            "screen": "1080x2400",
        }
    figures["png_over_raw"] = round(figures["capture_png_ms"] / figures["capture_raw_ms"], 2)
    print(f"Android path through the real adb server, 1080x2400 sim, median of {args.runs} runs")
    for name, value in figures.items():
        print(f"  {name:<24} {value}")
    write_figures(args.out, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
