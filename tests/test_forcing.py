"""Forced tool-call scaffolding and static/compiled decoding never change a greedy answer.

``format_model`` is the tiny checkpoint with its output layer fitted so that its greedy
answers are tool calls (model_fixtures.FORMAT_ANSWERS): forcing must save decode passes
there; where an answer leaves the format, and on the random checkpoint whose answers are
garbage, forcing must fall back to the model's own tokens.
"""

from __future__ import annotations

import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from qvl_agent.models.decoding import GreedyDecoder
from qvl_agent.models.forcing import Scaffold, expected_text, header, offered_tool
from qvl_agent.models.local import LocalModel
from qvl_agent.trajectory import read_run
from tests.model_fixtures import FORMAT_ANSWERS, format_case

pytestmark = pytest.mark.local_model

# "position" after a click, "parameters" in the header: drafts are refused part way.
LEAVES_THE_FORMAT = {"Click the OK button", "Finish"}
PROSE_FIRST = "Close the dialog"


def counting_forward_passes(model: LocalModel) -> list[int]:
    """Count every forward pass of the model's network from now on."""
    calls = [0]
    network = model.model.model
    forward = network.forward

    def counted(*args, **kwargs):
        calls[0] += 1
        return forward(*args, **kwargs)

    network.forward = counted
    return calls


def static_decoder(model: LocalModel, compiled: bool) -> GreedyDecoder:
    """A static-cache decoder for ``model``; compiled with dynamo's eager backend (the graph
    capture without inductor's minute of C++ compilation)."""
    return model.new_decoder("compiled" if compiled else "static", compile_options={"backend": "eager"})


def answer(model: LocalModel, case, force: bool):
    """(response, forward passes) for one FORMAT_ANSWERS case."""
    space, goal, seed, _ = case
    model.force_scaffold = force
    calls = counting_forward_passes(model)
    try:
        return model.respond(*format_case(space, goal, seed)), calls[0]
    finally:
        del model.model.model.forward  # back to the class's forward


def test_forcing_gives_the_greedy_answer_in_fewer_passes(format_model):
    for case in FORMAT_ANSWERS:
        plain, plain_passes = answer(format_model, case, force=False)
        assert plain.text == case[3]  # the fitted model answers as intended
        forced, forced_passes = answer(format_model, case, force=True)
        assert forced.text == plain.text and forced.generated_tokens == plain.generated_tokens
        assert plain_passes == plain.generated_tokens  # the prefill, then one pass a token
        # Each forced token saves a pass; a pass that ends the answer on accepted draft
        # tokens (the closing ones) has no token of the model's own.
        assert forced_passes + forced.forced_tokens - plain_passes in (0, 1)
        if case[1] in LEAVES_THE_FORMAT:
            assert 0 < forced.forced_tokens < 20
        elif case[1] == PROSE_FIRST:
            assert forced.forced_tokens >= 15  # the header after the model's own <tool_call>
        else:
            # The header alone is 16 tokens; the passes drop by more than half.
            assert forced.forced_tokens >= 20
            assert forced_passes * 2 < plain_passes


@pytest.mark.parametrize("decode", ["static", "compiled"])
def test_static_and_compiled_decoding_give_the_dynamic_answer(format_model, decode):
    """Accepted and refused drafts alike cut the static cache back correctly; the compiled
    pass (dynamo-traced here: the eager backend keeps CI fast) gives the same tokens."""
    dynamic = format_model.decoder
    format_model.decoder = static_decoder(format_model, compiled=decode == "compiled")
    try:
        format_model.force_scaffold = True
        for space, goal, seed, text in FORMAT_ANSWERS:
            assert format_model.respond(*format_case(space, goal, seed)).text == text
    finally:
        format_model.decoder = dynamic


def test_decode_modes_equal_generate_on_random_weights(tiny_checkpoint):
    """Garbage answers: the decoders (cache reuse + forcing, dynamic and static) equal
    generate() token for token, step after step, in both spaces."""
    reference = LocalModel(tiny_checkpoint, device="cpu", max_new_tokens=16,
                           reuse_system_cache=False, force_scaffold=False)
    assert reference.decoder is None  # transformers' own generate()
    models = {mode: LocalModel(tiny_checkpoint, device="cpu", max_new_tokens=16, decode=mode)
              for mode in ("dynamic", "static")}
    for step, (space, goal, seed, _) in enumerate(FORMAT_ANSWERS):
        prompt, image = format_case(space, goal, seed + 10)
        expected = reference.respond(prompt, image)
        for mode, model in models.items():
            response = model.respond(prompt, image)
            assert response.text == expected.text, (mode, step)
            assert response.generated_tokens == expected.generated_tokens


def test_teacher_forced_tool_call_takes_drafts_where_the_format_fixes_them(tiny_local_model):
    """The bench's path: a fixed click answer decoded through the forcing decoder; the
    header, the argument key and the closing tokens come from drafts."""
    model = tiny_local_model
    for space, goal, seed, text in FORMAT_ANSWERS[:1] + FORMAT_ANSWERS[3:5]:
        prompt, image = format_case(space, goal, seed)
        scaffold = model.scaffold_for(prompt.chat_text())
        ids = model.tokenizer(text + "<|im_end|>", add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            decoded = model.decoder.decode(model.encode(prompt, image), 64, scaffold=scaffold, teacher=ids)
        assert decoded.token_ids == ids
        fixed = len(model.tokenizer(header(scaffold.tool))["input_ids"]) + 4 + 2  # + key + close
        assert decoded.forced_tokens >= fixed
        # The last pass verifies only the closing draft.
        assert decoded.decode_passes == len(ids) - decoded.forced_tokens


def test_expected_text_stops_where_the_model_decides():
    tool = "computer_use"
    start = header(tool)
    assert expected_text(tool, "") == start
    assert expected_text(tool, "<tool_call>\n{") == start
    assert expected_text(tool, start + "left") is None  # the action name is the model's
    assert expected_text(tool, start + 'left_click",') == start + 'left_click", "coordinate": ['
    assert expected_text(tool, start + 'left_click", "coordinate": [65') is None
    click = start + 'left_click", "coordinate": [658, 364]'
    assert expected_text(tool, click) == click + "}}\n</tool_call><|im_end|>"
    assert expected_text(tool, start + 'type", "text": "hi"') is None  # text ends where it says
    assert expected_text(tool, start + 'fly",') is None  # not an action of this tool
    assert expected_text(tool, "Sure.\n<tool_call>") is None
    assert expected_text("mobile_use", header("mobile_use") + 'terminate", "status": "success"').endswith(
        '"success"}}\n</tool_call><|im_end|>')


def test_scaffold_follows_the_prompt_and_the_tokenizer(tiny_local_model):
    for space, tool in (("computer", "computer_use"), ("mobile", "mobile_use")):
        prompt = format_case(space, "Open it", 0)[0]
        assert offered_tool(prompt.chat_text()) == tool
        assert tiny_local_model.scaffold_for(prompt.chat_text()).tool == tool
    assert offered_tool(prompt.chat_text().replace('"name": "mobile_use"', '"name": "web"')) is None
    scaffold = Scaffold(tiny_local_model.tokenizer, "computer_use")
    tokenizer = tiny_local_model.tokenizer
    prose = tokenizer("I will click.", add_special_tokens=False)["input_ids"]
    assert scaffold.draft(prose) == []
    # After prose, a <tool_call> restarts the header.
    tool_call = tokenizer.convert_tokens_to_ids("<tool_call>")
    assert tokenizer.decode([tool_call, *scaffold.draft(prose + [tool_call])]) == header("computer_use")
    with pytest.raises(ValueError, match="no scaffold"):
        Scaffold(tokenizer, "browser_use")


def test_the_cli_switches_reach_the_model_and_the_run_records_them(tiny_checkpoint, tmp_path, capsys):
    from qvl_agent.cli import _parser, main

    assert _parser().parse_args(["run", "x", "--no-force"]).force_scaffold is False
    Image.new("RGB", (800, 600), "white").save(tmp_path / "shot.png")
    status = main(["run", "Click OK", "--device", f"image:{tmp_path / 'shot.png'}", "--model", str(tiny_checkpoint),
                   "--decode", "static", "--max-new-tokens", "8", "--dry-run", "--record", str(tmp_path / "run")])
    assert status == 1 and "parse_error" in capsys.readouterr().err  # garbage answers
    run = read_run(tmp_path / "run")
    options = run.meta.config["model_options"]
    assert (options["decode"], options["force_scaffold"], options["reuse_system_cache"]) == ("static", True, True)
    assert all(attempt.forced_tokens is not None for attempt in run.steps[0].attempts)
