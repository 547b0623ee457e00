"""A tiny ``sh -c`` for the simulated phone: enough shell to tell quoted text from commands.

adbd runs every ``shell:`` command line through the phone's shell, so quoting matters: a
correctly quoted argument arrives as one argv, and a badly built command line runs extra
commands. This interpreter honours single and double quotes and backslashes, splits
``;``, ``&&``, ``||`` and ``|``, and treats ``$(...)`` and backticks outside single quotes
as command substitutions that *run* (the phone records them), so an injection shows up in
the phone's state exactly as it would on a real device.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable

from environments.android_sim.transport import CommandResult

Runner = Callable[[list[str]], CommandResult]
OPERATORS = {";", "&&", "||", "|", "&"}


def substitutions(line: str) -> list[str]:
    """The commands inside ``$(...)`` or backticks that a shell would run."""
    found: list[str] = []
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if quote != "'" and char == "\\":
            index += 2
            continue
        if quote:
            if char == quote:
                quote = ""
            elif quote == '"' and (line.startswith("$(", index) or char == "`"):
                index = _take_substitution(line, index, found)
                continue
        elif char in "'\"":
            quote = char
        elif line.startswith("$(", index) or char == "`":
            index = _take_substitution(line, index, found)
            continue
        index += 1
    return found


def _take_substitution(line: str, index: int, found: list[str]) -> int:
    if line[index] == "`":
        end = line.find("`", index + 1)
        end = len(line) if end == -1 else end
        found.append(line[index + 1:end])
        return end + 1
    depth, cursor = 1, index + 2
    while cursor < len(line) and depth:
        depth += {"(": 1, ")": -1}.get(line[cursor], 0)
        cursor += 1
    found.append(line[index + 2:cursor - 1])
    return cursor


def run_line(line: str, run: Runner) -> CommandResult:
    """Run a command line; substitutions run first (their output is discarded here)."""
    for inner in substitutions(line):
        run_line(inner, run)
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError as error:  # an unterminated quote
        return CommandResult(stderr=f"sh: syntax error: {error}\n".encode(), exit_code=2)
    stdout, stderr = b"", b""
    status = 0
    skip = False
    for argv, operator in _commands(tokens):
        if not skip and argv:
            # $? is the one variable adb clients rely on (shell2 appends `echo X4EXIT:$?`).
            result = run([arg.replace("$?", str(status)) for arg in argv])
            stdout += result.stdout
            stderr += result.stderr
            status = result.exit_code
        skip = (operator == "&&" and status != 0) or (operator == "||" and status == 0)
    return CommandResult(stdout=stdout, stderr=stderr, exit_code=status)


def _commands(tokens: list[str]) -> list[tuple[list[str], str]]:
    commands: list[tuple[list[str], str]] = []
    argv: list[str] = []
    for token in tokens:
        if token in OPERATORS:
            commands.append((argv, token))
            argv = []
        else:
            argv.append(token)
    commands.append((argv, ""))
    return commands


def quote(argv: list[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)
