"""What every benchmark ends with: its figures written as JSON where --out says."""

from __future__ import annotations

import json
from pathlib import Path


def write_figures(out: Path, figures: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(f"\nwritten {out}")
