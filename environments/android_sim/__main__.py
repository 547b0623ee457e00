"""``python -m environments.android_sim --port P --state FILE [--size 1080x2400] [--adbkeyboard]``."""

import argparse
from pathlib import Path

from environments.android_sim.phone import Phone

BANNER = "device::ro.product.name=qvlsim;ro.product.model=QvlSim_Pixel;ro.product.device=qvlsim;features=shell_v2,cmd"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m environments.android_sim")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True, help="JSON file the phone keeps its state in")
    parser.add_argument("--control", type=Path, default=None, help="fault switches (default STATE.control.json)")
    parser.add_argument("--size", default="1080x2400", help="natural (portrait) screen size WxH")
    parser.add_argument("--adbkeyboard", action="store_true", help="the ADBKeyboard IME is installed")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    phone = Phone(args.state, width, height, adb_keyboard=args.adbkeyboard, control_path=args.control)
    phone.serve(args.port, BANNER)


main()
