# ruff: noqa: E501  (the published prompts are copied verbatim, long lines and all)
"""Faithful transcriptions of the published prompt code, for differential tests.

Copied from the sources (data verbatim; assembly logic re-typed line by line), not from
qvl-agent: the golden prompt files in tests/golden are checked against what these produce.

* ``UI-TARS``: bytedance/UI-TARS@582f3a7ea5d285ee8ed9e2e84048d1ab01453c49
  codes/ui_tars/prompt.py (the three templates, verbatim) and the message assembly of
  xlang-ai/OSWorld mm_agents/uitars15_v1.py ``UITARSAgent.predict`` (history_n screenshots).
* Qwen cookbooks: QwenLM/Qwen2.5-VL cookbooks/utils/agent_function_call.py (at QwenLM/Qwen3-VL
  465b320, unchanged since f0af299): the tools' description and parameters, verbatim;
  computer_use.ipynb's local path (system message, user [text(query), image]); Qwen-Agent
  v0.0.15 and v0.0.26 ``NousFnCallPrompt.preprocess_fncall_messages`` and ``BaseTool.function``.
* GUI-Owl: X-PLUG/MobileAgent@5db74acf383683702c71867cb730a2add5fe1940
  Mobile-Agent-v3/cookbook/end2end_usage.ipynb ``build_system_messages`` /
  ``build_user_messages`` (utils/mobile_use.py's MobileUse is the cookbook's MobileUse).
* The chat template: Qwen2.5-VL's, rendered with jinja2 as transformers renders it.
* Qwen3-VL: QwenLM/Qwen3-VL@9658872 cookbooks/utils/agent_function_call.py (last changed
  0dcc180) ComputerUse, verbatim; computer_use.ipynb's transformers path (read from the copy
  Firefly-llm/Qwen3-VL@08254a9: display 1000x1000, user [text(query), image]);
  mobile_agent.ipynb cell 7's system prompt verbatim and its history/user_query code, cell 4's
  rescale_coordinates.
"""

import json

# -- bytedance/UI-TARS codes/ui_tars/prompt.py, verbatim ---------------------------------

COMPUTER_USE_DOUBAO = """You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task.

## Output Format
```
Thought: ...
Action: ...
```

## Action Space

click(point='<point>x1 y1</point>')
left_double(point='<point>x1 y1</point>')
right_single(point='<point>x1 y1</point>')
drag(start_point='<point>x1 y1</point>', end_point='<point>x2 y2</point>')
hotkey(key='ctrl c') # Split keys with a space and use lowercase. Also, do not use more than 3 keys in one hotkey action.
type(content='xxx') # Use escape characters \\', \\\", and \\n in content part to ensure we can parse the content in normal python string format. If you want to submit your input, use \\n at the end of content. 
scroll(point='<point>x1 y1</point>', direction='down or up or right or left') # Show more information on the `direction` side.
wait() #Sleep for 5s and take a screenshot to check for any changes.
finished(content='xxx') # Use escape characters \\', \\", and \\n in content part to ensure we can parse the content in normal python string format.


## Note
- Use {language} in `Thought` part.
- Write a small plan and finally summarize your next action (with its target element) in one sentence in `Thought` part.

## User Instruction
{instruction}
"""

MOBILE_USE_DOUBAO = """You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task. 
## Output Format
```
Thought: ...
Action: ...
```
## Action Space

click(point='<point>x1 y1</point>')
long_press(point='<point>x1 y1</point>')
type(content='') #If you want to submit your input, use "\\n" at the end of `content`.
scroll(point='<point>x1 y1</point>', direction='down or up or right or left')
open_app(app_name=\'\')
drag(start_point='<point>x1 y1</point>', end_point='<point>x2 y2</point>')
press_home()
press_back()
finished(content='xxx') # Use escape characters \\', \\", and \\n in content part to ensure we can parse the content in normal python string format.


## Note
- Use {language} in `Thought` part.
- Write a small plan and finally summarize your next action (with its target element) in one sentence in `Thought` part.

## User Instruction
{instruction}
"""

GROUNDING_DOUBAO = """You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task. \n\n## Output Format\n\nAction: ...\n\n\n## Action Space\nclick(point='<point>x1 y1</point>'')\n\n## User Instruction
{instruction}"""


# -- QwenLM/Qwen2.5-VL cookbooks/utils/agent_function_call.py, verbatim data ------------------

def mobile_use_description(width, height):
    return f"""
Use a touchscreen to interact with a mobile device, and take screenshots.
* This is an interface to a mobile device with touchscreen. You can perform actions like clicking, typing, swiping, etc.
* Some applications may take time to start or process actions, so you may need to wait and take successive screenshots to see the results of your actions.
* The screen's resolution is {width}x{height}.
* Make sure to click any buttons, links, icons, etc with the cursor tip in the center of the element. Don't click boxes on their edges unless asked.
""".strip()


MOBILE_USE_PARAMETERS = {
        "properties": {
            "action": {
                "description": """
The action to perform. The available actions are:
* `key`: Perform a key event on the mobile device.
    - This supports adb's `keyevent` syntax.
    - Examples: "volume_up", "volume_down", "power", "camera", "clear".
* `click`: Click the point on the screen with coordinate (x, y).
* `long_press`: Press the point on the screen with coordinate (x, y) for specified seconds.
* `swipe`: Swipe from the starting point with coordinate (x, y) to the end point with coordinates2 (x2, y2).
* `type`: Input the specified text into the activated input box.
* `system_button`: Press the system button.
* `open`: Open an app on the device.
* `wait`: Wait specified seconds for the change to happen.
* `terminate`: Terminate the current task and report its completion status.
""".strip(),
                "enum": [
                    "key",
                    "click",
                    "long_press",
                    "swipe",
                    "type",
                    "system_button",
                    "open",
                    "wait",
                    "terminate",
                ],
                "type": "string",
            },
            "coordinate": {
                "description": "(x, y): The x (pixels from the left edge) and y (pixels from the top edge) coordinates to move the mouse to. Required only by `action=click`, `action=long_press`, and `action=swipe`.",
                "type": "array",
            },
            "coordinate2": {
                "description": "(x, y): The x (pixels from the left edge) and y (pixels from the top edge) coordinates to move the mouse to. Required only by `action=swipe`.",
                "type": "array",
            },
            "text": {
                "description": "Required only by `action=key`, `action=type`, and `action=open`.",
                "type": "string",
            },
            "time": {
                "description": "The seconds to wait. Required only by `action=long_press` and `action=wait`.",
                "type": "number",
            },
            "button": {
                "description": "Back means returning to the previous interface, Home means returning to the desktop, Menu means opening the application background menu, and Enter means pressing the enter. Required only by `action=system_button`",
                "enum": [
                    "Back",
                    "Home",
                    "Menu",
                    "Enter",
                ],
                "type": "string",
            },
            "status": {
                "description": "The status of the task. Required only by `action=terminate`.",
                "type": "string",
                "enum": ["success", "failure"],
            },
        },
        "required": ["action"],
        "type": "object",
    }


def computer_use_description(width, height):
    return f"""
Use a mouse and keyboard to interact with a computer, and take screenshots.
* This is an interface to a desktop GUI. You do not have access to a terminal or applications menu. You must click on desktop icons to start applications.
* Some applications may take time to start or process actions, so you may need to wait and take successive screenshots to see the results of your actions. E.g. if you click on Firefox and a window doesn't open, try wait and taking another screenshot.
* The screen's resolution is {width}x{height}.
* Whenever you intend to move the cursor to click on an element like an icon, you should consult a screenshot to determine the coordinates of the element before moving the cursor.
* If you tried clicking on a program or link but it failed to load, even after waiting, try adjusting your cursor position so that the tip of the cursor visually falls on the element that you want to click.
* Make sure to click any buttons, links, icons, etc with the cursor tip in the center of the element. Don't click boxes on their edges unless asked.
""".strip()


COMPUTER_USE_PARAMETERS = {
        "properties": {
            "action": {
                "description": """
The action to perform. The available actions are:
* `key`: Performs key down presses on the arguments passed in order, then performs key releases in reverse order.
* `type`: Type a string of text on the keyboard.
* `mouse_move`: Move the cursor to a specified (x, y) pixel coordinate on the screen.
* `left_click`: Click the left mouse button.
* `left_click_drag`: Click and drag the cursor to a specified (x, y) pixel coordinate on the screen.
* `right_click`: Click the right mouse button.
* `middle_click`: Click the middle mouse button.
* `double_click`: Double-click the left mouse button.
* `scroll`: Performs a scroll of the mouse scroll wheel.
* `wait`: Wait specified seconds for the change to happen.
* `terminate`: Terminate the current task and report its completion status.
""".strip(),
                "enum": [
                    "key",
                    "type",
                    "mouse_move",
                    "left_click",
                    "left_click_drag",
                    "right_click",
                    "middle_click",
                    "double_click",
                    "scroll",
                    "wait",
                    "terminate",
                ],
                "type": "string",
            },
            "keys": {
                "description": "Required only by `action=key`.",
                "type": "array",
            },
            "text": {
                "description": "Required only by `action=type`.",
                "type": "string",
            },
            "coordinate": {
                "description": "(x, y): The x (pixels from the left edge) and y (pixels from the top edge) coordinates to move the mouse to. Required only by `action=mouse_move` and `action=left_click_drag`.",
                "type": "array",
            },
            "pixels": {
                "description": "The amount of scrolling to perform. Positive values scroll up, negative values scroll down. Required only by `action=scroll`.",
                "type": "number",
            },
            "time": {
                "description": "The seconds to wait. Required only by `action=wait`.",
                "type": "number",
            },
            "status": {
                "description": "The status of the task. Required only by `action=terminate`.",
                "type": "string",
                "enum": ["success", "failure"],
            },
        },
        "required": ["action"],
        "type": "object",
    }


# -- Qwen-Agent NousFnCallPrompt (v0.0.15 and later), re-typed -------------------------------

FN_CALL_TEMPLATE = """# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{tool_descs}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>"""


def tool_function(name, description, parameters, version="0.0.15"):
    """BaseTool.function: v0.0.15 has name_for_human and args_format; v0.0.16+ not."""
    if version == "0.0.15":
        return {"name_for_human": name, "name": name, "description": description,
                "parameters": parameters, "args_format": "Format the arguments as a JSON object."}
    return {"name": name, "description": description, "parameters": parameters}


def nous_system_content(functions):
    """preprocess_fncall_messages on [system: "You are a helpful assistant."]: the system
    message's content items."""
    tool_descs = "\n".join(json.dumps({"type": "function", "function": f}, ensure_ascii=False)
                           for f in functions)
    return ["You are a helpful assistant.", "\n\n" + FN_CALL_TEMPLATE.format(tool_descs=tool_descs)]


# -- the published message assembly ------------------------------------------------------------


def qwen_computer_use_messages(query, width, height):
    """computer_use.ipynb, perform_gui_grounding (local path): system + user [text, image]."""
    function = tool_function("computer_use", computer_use_description(width, height),
                             COMPUTER_USE_PARAMETERS)
    system = [{"type": "text", "text": t} for t in nous_system_content([function])]
    return [{"role": "system", "content": system},
            {"role": "user", "content": [{"type": "text", "text": query}, {"type": "image"}]}]


def qwen_mobile_use_messages(query, history_calls, width, height):
    """mobile_agent.ipynb cell 9: user_query = f'The user query:  {task}\\nTask progress ...'"""
    function = tool_function("mobile_use", mobile_use_description(width, height),
                             MOBILE_USE_PARAMETERS)
    system = [{"type": "text", "text": t} for t in nous_system_content([function])]
    history = "".join(f"Step {i + 1}: {call}; " for i, call in enumerate(history_calls))
    user_query = (f"The user query:  {query}\nTask progress (You have done the following "
                  f"operation on the current device): {history}")
    return [{"role": "system", "content": system},
            {"role": "user", "content": [{"type": "text", "text": user_query}, {"type": "image"}]}]


def ui_tars_messages(template, instruction, history_responses, history_n=5, language="English"):
    """OSWorld UITARSAgent.predict: system, the instruction turn, then for each earlier
    response its screenshot (only the last history_n - 1 of them) and the response, then the
    current screenshot. Returns (messages, number of images)."""
    if "{language}" in template:
        user_prompt = template.format(language=language, instruction=instruction)
    else:
        user_prompt = template.format(instruction=instruction)
    messages = [{"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]},
                {"role": "user", "content": [{"type": "text", "text": user_prompt}]}]
    images = 0
    for history_idx, history_response in enumerate(history_responses):
        if history_idx + history_n > len(history_responses):
            messages.append({"role": "user", "content": [{"type": "image"}]})
            images += 1
        messages.append({"role": "assistant", "content": [{"type": "text", "text": add_box_token(history_response)}]})
    messages.append({"role": "user", "content": [{"type": "image"}]})
    return messages, images + 1


def add_box_token(input_string):
    """bytedance/UI-TARS codes/ui_tars/action_parser.py add_box_token, re-typed."""
    import re

    if "Action: " in input_string and "start_box=" in input_string:
        suffix = input_string.split("Action: ")[0] + "Action: "
        actions = input_string.split("Action: ")[1:]
        processed_actions = []
        for action in actions:
            action = action.strip()
            coordinates = re.findall(r"(start_box|end_box)='\((\d+),\s*(\d+)\)'", action)
            updated_action = action
            for coord_type, x, y in coordinates:
                updated_action = updated_action.replace(
                    f"{coord_type}='({x},{y})'", f"{coord_type}='<|box_start|>({x},{y})<|box_end|>'")
            processed_actions.append(updated_action)
        final_string = suffix + "\n\n".join(processed_actions)
    else:
        final_string = input_string
    return final_string


def gui_owl_mobile_messages(instruction, history, width, height):
    """end2end_usage.ipynb: build_system_messages + build_user_messages(enable_think=True) +
    the screenshot appended to the user content."""
    function = tool_function("mobile_use", mobile_use_description(width, height),
                             MOBILE_USE_PARAMETERS, version="0.0.26")
    content = nous_system_content([function])
    system = {"role": "system", "content": [{"type": "text", "text": content[0] + content[1]}]}
    user_prompt = f"""The user query: {instruction}"""
    history = "".join([f"Step {si+1}: {_}; " for si, _ in enumerate(history)])
    user_prompt += f"\nTask progress (You have done the following operation on the current device): {history}.\n"
    user_prompt += "\nBefore answering, explain your reasoning step-by-step in <thinking></thinking> tags, and insert them before the <tool_call></tool_call> XML tags."
    user_prompt += "\nAfter answering, summarize your action in <conclusion></conclusion> tags, and insert them after the <tool_call></tool_call> XML tags."
    user = {"role": "user", "content": [{"type": "text", "text": user_prompt + "\n"}, {"type": "image"}]}
    return [system, user]


def render_chat(messages):
    """The Qwen2.5-VL chat template, rendered as transformers' apply_chat_template does."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from qvl_agent.models.checkpoint import QWEN2_5_VL_CHAT_TEMPLATE

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(QWEN2_5_VL_CHAT_TEMPLATE).render(
        messages=messages, add_generation_prompt=True)


# -- QwenLM/Qwen3-VL@9658872 (0dcc180) cookbooks/utils/agent_function_call.py, ComputerUse, verbatim


def qwen3_computer_use_description(display_width_px, display_height_px):
    return f"""
Use a mouse and keyboard to interact with a computer, and take screenshots.
* This is an interface to a desktop GUI. You do not have access to a terminal or applications menu. You must click on desktop icons to start applications.
* Some applications may take time to start or process actions, so you may need to wait and take successive screenshots to see the results of your actions. E.g. if you click on Firefox and a window doesn't open, try wait and taking another screenshot.
* The screen's resolution is {display_width_px}x{display_height_px}.
* Whenever you intend to move the cursor to click on an element like an icon, you should consult a screenshot to determine the coordinates of the element before moving the cursor.
* If you tried clicking on a program or link but it failed to load, even after waiting, try adjusting your cursor position so that the tip of the cursor visually falls on the element that you want to click.
* Make sure to click any buttons, links, icons, etc with the cursor tip in the center of the element. Don't click boxes on their edges.
""".strip()


QWEN3_COMPUTER_USE_PARAMETERS = {
    "properties": {
        "action": {
            "description": """
The action to perform. The available actions are:
* `key`: Performs key down presses on the arguments passed in order, then performs key releases in reverse order.
* `type`: Type a string of text on the keyboard.
* `mouse_move`: Move the cursor to a specified (x, y) pixel coordinate on the screen.
* `left_click`: Click the left mouse button at a specified (x, y) pixel coordinate on the screen.
* `left_click_drag`: Click and drag the cursor to a specified (x, y) pixel coordinate on the screen.
* `right_click`: Click the right mouse button at a specified (x, y) pixel coordinate on the screen.
* `middle_click`: Click the middle mouse button at a specified (x, y) pixel coordinate on the screen.
* `double_click`: Double-click the left mouse button at a specified (x, y) pixel coordinate on the screen.
* `triple_click`: Triple-click the left mouse button at a specified (x, y) pixel coordinate on the screen (simulated as double-click since it's the closest action).
* `scroll`: Performs a scroll of the mouse scroll wheel.
* `hscroll`: Performs a horizontal scroll (mapped to regular scroll).
* `wait`: Wait specified seconds for the change to happen.
* `terminate`: Terminate the current task and report its completion status.
* `answer`: Answer a question.
""".strip(),
            "enum": [
                "key",
                "type",
                "mouse_move",
                "left_click",
                "left_click_drag",
                "right_click",
                "middle_click",
                "double_click",
                "triple_click",
                "scroll",
                "hscroll",
                "wait",
                "terminate",
                "answer",
            ],
            "type": "string",
        },
        "keys": {
            "description": "Required only by `action=key`.",
            "type": "array",
        },
        "text": {
            "description": "Required only by `action=type` and `action=answer`.",
            "type": "string",
        },
        "coordinate": {
            "description": "(x, y): The x (pixels from the left edge) and y (pixels from the top edge) coordinates to move the mouse to.",
            "type": "array",
        },
        "pixels": {
            "description": "The amount of scrolling to perform. Positive values scroll up, negative values scroll down. Required only by `action=scroll` and `action=hscroll`.",
            "type": "number",
        },
        "time": {
            "description": "The seconds to wait. Required only by `action=wait`.",
            "type": "number",
        },
        "status": {
            "description": "The status of the task. Required only by `action=terminate`.",
            "type": "string",
            "enum": ["success", "failure"],
        },
    },
    "required": ["action"],
    "type": "object",
}


# -- QwenLM/Qwen3-VL@9658872 cookbooks/mobile_agent.ipynb cell 7, verbatim (the system prompt)

QWEN3_MOBILE_SYSTEM_PROMPT = "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"mobile_use\", \"description\": \"Use a touchscreen to interact with a mobile device, and take screenshots.\\n* This is an interface to a mobile device with touchscreen. You can perform actions like clicking, typing, swiping, etc.\\n* Some applications may take time to start or process actions, so you may need to wait and take successive screenshots to see the results of your actions.\\n* The screen's resolution is 999x999.\\n* Make sure to click any buttons, links, icons, etc with the cursor tip in the center of the element. Don't click boxes on their edges unless asked.\", \"parameters\": {\"properties\": {\"action\": {\"description\": \"The action to perform. The available actions are:\\n* `click`: Click the point on the screen with coordinate (x, y).\\n* `long_press`: Press the point on the screen with coordinate (x, y) for specified seconds.\\n* `swipe`: Swipe from the starting point with coordinate (x, y) to the end point with coordinates2 (x2, y2).\\n* `type`: Input the specified text into the activated input box.\\n* `answer`: Output the answer.\\n* `system_button`: Press the system button.\\n* `wait`: Wait specified seconds for the change to happen.\\n* `terminate`: Terminate the current task and report its completion status.\", \"enum\": [\"click\", \"long_press\", \"swipe\", \"type\", \"answer\", \"system_button\", \"wait\", \"terminate\"], \"type\": \"string\"}, \"coordinate\": {\"description\": \"(x, y): The x (pixels from the left edge) and y (pixels from the top edge) coordinates to move the mouse to. Required only by `action=click`, `action=long_press`, and `action=swipe`.\", \"type\": \"array\"}, \"coordinate2\": {\"description\": \"(x, y): The x (pixels from the left edge) and y (pixels from the top edge) coordinates to move the mouse to. Required only by `action=swipe`.\", \"type\": \"array\"}, \"text\": {\"description\": \"Required only by `action=type` and `action=answer`.\", \"type\": \"string\"}, \"time\": {\"description\": \"The seconds to wait. Required only by `action=long_press` and `action=wait`.\", \"type\": \"number\"}, \"button\": {\"description\": \"Back means returning to the previous interface, Home means returning to the desktop, Menu means opening the application background menu, and Enter means pressing the enter. Required only by `action=system_button`\", \"enum\": [\"Back\", \"Home\", \"Menu\", \"Enter\"], \"type\": \"string\"}, \"status\": {\"description\": \"The status of the task. Required only by `action=terminate`.\", \"type\": \"string\", \"enum\": [\"success\", \"failure\"]}}, \"required\": [\"action\"], \"type\": \"object\"}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>\n\n# Response format\n\nResponse format for every step:\n1) Thought: one concise sentence explaining the next move (no multi-step reasoning).\n2) Action: a short imperative describing what to do in the UI.\n3) A single <tool_call>...</tool_call> block containing only the JSON: {\"name\": <function-name>, \"arguments\": <args-json-object>}.\n\nRules:\n- Output exactly in the order: Thought, Action, <tool_call>.\n- Be brief: one sentence for Thought, one for Action.\n- Do not output anything else outside those three parts.\n- If finishing, use action=terminate in the tool call."


def qwen3_computer_use_messages(query):
    """Qwen3-VL computer_use.ipynb, perform_gui_grounding (transformers path): ComputerUse with
    a 1000x1000 display, NousFnCallPrompt after v0.0.15 on [system "You are a helpful
    assistant."], then user [text(query), image]."""
    function = tool_function("computer_use", qwen3_computer_use_description(1000, 1000),
                             QWEN3_COMPUTER_USE_PARAMETERS, version="0.0.26")
    system = [{"type": "text", "text": t} for t in nous_system_content([function])]
    return [{"role": "system", "content": system},
            {"role": "user", "content": [{"type": "text", "text": query}, {"type": "image"}]}]


def qwen3_mobile_messages(instruction, history):
    """Qwen3-VL mobile_agent.ipynb cell 7: the history loop and user_query as written there."""
    stage2_history = ''
    for idx, his in enumerate(history):
        stage2_history += 'Step ' + str(idx + 1) + ': ' + str(his.replace('\n', '').replace('"', '')) + '; '
    user_query = f"The user query: {instruction}.\nTask progress (You have done the following operation on the current device): {stage2_history}.\n"
    return [{"role": "system", "content": [{"type": "text", "text": QWEN3_MOBILE_SYSTEM_PROMPT}]},
            {"role": "user", "content": [{"type": "text", "text": user_query}, {"type": "image"}]}]


def rescale_coordinates(point, width, height):
    """Qwen3-VL mobile_agent.ipynb cell 4, verbatim."""
    point = [round(point[0]/999*width), round(point[1]/999*height)]
    return point
