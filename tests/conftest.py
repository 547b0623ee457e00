"""Shared fixtures live in their own modules; this file only loads them."""

import os

# Nothing may try to reach a model hub at test time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = ["tests.desktop_fixtures", "tests.model_fixtures", "tests.android_fixtures", "tests.serve_fixtures"]
