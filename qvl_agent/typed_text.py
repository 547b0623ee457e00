"""What the ``type`` action may hold: one rule for the parser and every device.

A tab inside the text is refused, on the desktop and on the phone alike. Typing it means
pressing the Tab key, which inserts a tab in an editor but moves the focus to the next
field or button in a form or a browser, where the rest of the text would land unseen (or
trigger that page's single-key shortcuts). The model is told to type the text before the
tab, press Tab as its own ``key`` action, and look at the screen before typing on.
Newlines stay: they press Enter, which is what a model means by a trailing ``\\n``.
"""

from __future__ import annotations

from qvl_agent.actions import Space


def tab_refusal(text: str, space: Space) -> str | None:
    """Why ``text`` cannot be typed (for the model), or None when it can."""
    if "\t" not in text:
        return None
    press = '"keys": ["tab"]' if space == "computer" else '"text": "tab"'
    return (
        'the text to type holds a tab (\\t), and a tab key moves the focus in most fields, so '
        "the rest would be typed where nobody looked: type the text before the tab, then press "
        f'{{"action": "key", {press}}} as its own step and look before typing more '
        "(use spaces to indent)"
    )
