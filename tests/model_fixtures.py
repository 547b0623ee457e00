"""Fixtures that build a tiny Qwen2.5-VL checkpoint for the local backend."""
