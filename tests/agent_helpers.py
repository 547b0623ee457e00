"""Small builders shared by the agent and CLI tests."""

import json
from pathlib import Path


def tool_call(space: str = "computer", **arguments) -> str:
    name = {"computer": "computer_use", "mobile": "mobile_use"}[space]
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments}, ensure_ascii=False)}\n</tool_call>"


def write_script(path: Path, responses: list[str]) -> Path:
    path.write_text("".join(json.dumps({"response": r}) + "\n" for r in responses), encoding="utf-8")
    return path
