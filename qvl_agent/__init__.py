"""qvl-agent: a Qwen2.5-VL model operates a computer or a phone from a natural-language goal."""

__version__ = "0.1.0"
