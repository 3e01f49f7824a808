"""The Agent lab on real models: the embedded default, a tiny random Mistral (a template without a system role),
the `tutor agent` command, and the lab's endpoints with hostile input."""
import json
import os
import subprocess
import sys

import pytest
import torch
from gradio_client import Client
from langchain_core.messages import HumanMessage

from tests.conftest import MISTRAL_TEMPLATE, MODEL_CACHE_DATA_DIR, launch_app
from tutor.agents.adapter import ReActChatModel
from tutor.agents.loop import Agent, RunSpec
from tutor.agents.spec import Limits
from tutor.agents.tools import build_tools
from tutor.config import ROOT, Settings
from tutor.models import load_model

pytestmark = pytest.mark.model

SYSTEM = ("You are a shop assistant. Never do arithmetic in your head: call the calculator for every calculation, "
          "then give the price with its currency.")
QUESTION = "A desk fan costs 39.90 EUR. How much is it with 15% off?"


def finish(agent: Agent):
    trace = None
    for trace in agent.run():
        pass
    return trace


def test_the_default_model_runs_the_loop_and_every_step_is_traced(chat_model):
    spec = RunSpec(question=QUESTION, system=SYSTEM, limits=Limits(steps=2, reply_tokens=24))
    trace = finish(Agent(chat_model, spec))
    assert trace.steps and trace.status in ("answered", "stopped (steps)")
    first = trace.steps[0]
    # The first prompt is exactly what the adapter renders for the question, through the model's chat template.
    chat = ReActChatModel(chat=chat_model).bind_tools(build_tools(["calculator"]))
    expected = chat_model.render(chat.transcript([HumanMessage(QUESTION)]))
    from langchain_core.messages import SystemMessage

    assert first.prompt == chat_model.render(chat.transcript([SystemMessage(SYSTEM), HumanMessage(QUESTION)]))
    assert first.prompt != expected and SYSTEM in first.prompt  # the learner's system prompt is in it
    assert first.prompt.startswith("<|im_start|>system") and first.prompt.endswith("<|im_start|>assistant\n")
    assert first.prompt_tokens == chat_model.count_tokens(first.prompt) and 0 < first.reply_tokens <= 24
    for step in trace.steps:
        assert step.reply and step.parsed["kind"] in ("action", "final", "error") and step.seconds > 0
        if step.parsed["kind"] != "final":
            assert step.observation, "every action and every unreadable reply gets an observation"


@pytest.fixture(scope="module")
def tiny_mistral(tmp_path_factory, hf_chat_model):
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    root = tmp_path_factory.mktemp("agent-mistral")
    tokenizer = AutoTokenizer.from_pretrained(hf_chat_model.info.extra["source"])  # any offline tokenizer
    tokenizer.chat_template = MISTRAL_TEMPLATE
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    MistralForCausalLM(config).save_pretrained(root)
    tokenizer.save_pretrained(root)
    return load_model(Settings.from_env({}, model=str(root), adapter="none", quantize="off", device="cpu",
                                        data_dir=root / "data"))


def test_a_mistral_template_without_a_system_role_runs_the_loop(tiny_mistral):
    spec = RunSpec(question=QUESTION, system=SYSTEM, limits=Limits(steps=2, reply_tokens=8))
    trace = finish(Agent(tiny_mistral, spec))
    assert len(trace.steps) == 2 and trace.status == "stopped (steps)"  # random weights: never a final answer
    prompt = trace.steps[1].prompt
    # The system text is folded into the first user turn; turns alternate through the worked example and step 1.
    assert prompt.split("[INST] ", 1)[1].startswith(SYSTEM) and "<|im_start|>system" not in prompt
    assert prompt.count("[INST]") == 4 and trace.steps[0].observation in prompt


def test_a_prompt_past_the_context_window_stops_the_run(tiny_mistral):
    spec = RunSpec(question=QUESTION, system="Be careful. " * 400, limits=Limits(steps=2, reply_tokens=8))
    trace = finish(Agent(tiny_mistral, spec))
    assert trace.stopped == "context" and "1,024-token context window" in trace.message and not trace.steps


# -- the command --------------------------------------------------------------------------------------------
def tutor(*args, timeout=600):
    env = {**os.environ, "TUTOR_DATA_DIR": str(MODEL_CACHE_DATA_DIR), "TUTOR_ADAPTER": "none"}
    return subprocess.run([sys.executable, "-m", "tutor.cli", "agent", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_agent_tools_lists_the_toolbox_as_json():
    result = tutor("tools", "--json")
    assert result.returncode == 0, result.stderr
    tools = json.loads(result.stdout)
    assert {t["name"] for t in tools} >= {"calculator", "readings", "units", "weather", "shop_order"}
    assert all(t["args"] and t["example"] for t in tools)


def test_agent_run_prints_the_trace_as_json(tmp_path):
    system = tmp_path / "system.txt"
    system.write_text(SYSTEM, encoding="utf-8")
    result = tutor("run", "--tools", "calculator,readings", "--task", QUESTION, "--system", str(system),
                   "--max-steps", "1", "--reply-tokens", "16", "--json")
    assert result.returncode == 0, result.stderr
    trace = json.loads(result.stdout)
    assert trace["tools"] == ["calculator", "readings"] and len(trace["steps"]) == 1
    assert SYSTEM in trace["steps"][0]["prompt"] and "readings:" in trace["steps"][0]["prompt"]
    assert trace["status"] in ("answered", "stopped (steps)") and trace["tokens"] > 0


@pytest.mark.parametrize("args, fragment", [
    (("--tools", "calculator,hammer", "--task", "x"), "'hammer' is not a tool"),
    (("--task", "   "), "--task is empty"),
    (("--task", "x", "--max-steps", "0"), "a limit is out of range"),
    (("--task", "x", "--describe", "calculator"), "write NAME=DESCRIPTION"),
    (("--task", "x", "--describe", "units=converts"), "not in --tools"),
    (("--task", "x", "--system", "/no/such/file"), "cannot read /no/such/file"),
])
def test_agent_run_refuses_bad_input_before_loading_the_model(args, fragment, capsys, monkeypatch):
    from tutor.cli import main

    monkeypatch.setattr("tutor.models.load_model", lambda settings: pytest.fail("the model was loaded"))
    assert main(["agent", "run", *args]) == 2
    assert fragment in capsys.readouterr().err


# -- the lab's endpoints ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(chat_model, tmp_path_factory):
    from tutor.runtime import build_tutor

    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("agent-app"), max_new_tokens=24)
    demo, url = launch_app(build_tutor(settings, model=chat_model))
    yield Client(url, verbose=False)
    demo.close()


LAB = dict(key=None, system=SYSTEM, tools=["calculator"], descriptions="", steps=2, seconds=60, tokens=3000,
           examples=True)


def lab_args(**changes):
    values = {**LAB, **changes}
    return [values[k] for k in ("key", "question", "system", "tools", "descriptions", "steps", "seconds", "tokens",
                                "examples")]


@pytest.mark.parametrize("changes, fragment", [
    ({"question": "   "}, "The question is empty"),
    ({"question": "What? " * 5000}, "the limit is 20,000"),
    ({"question": "q", "tools": []}, "Choose at least one tool"),
    ({"question": "q", "descriptions": "Tool units: converts"}, "does not have"),
    ({"question": "q", "descriptions": "just some words"}, "starts with `Tool <name>:`"),
    ({"question": "q", "descriptions": "Tool calculator: " + "x" * 500}, "keep it under 400"),
])
def test_agent_run_endpoint_explains_bad_input(client, changes, fragment):
    markdown, data, note = client.predict(*lab_args(**changes), api_name="/agent_run")
    assert fragment in markdown and data in ({}, None)


@pytest.mark.parametrize("changes, fragment", [
    ({"tools": ["hammer"]}, "'hammer' (type: <class 'str'>) is not in the list of choices"),
    ({"tokens": 10}, "Value 10 is less than minimum value 200"),
    ({"steps": 1000}, "Value 1000 is greater than maximum value 12"),
])
def test_gradio_refuses_values_outside_the_widgets(client, changes, fragment):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as error:
        client.predict(*lab_args(question="q", **changes), api_name="/agent_run")
    assert fragment in str(error.value)


def test_agent_step_endpoint_runs_a_learners_step(client):
    step = "Thought: The calculator can do this.\nAction: calculator\nAction Input: 39.90 * 0.85"
    markdown, data, note = client.predict(step, *lab_args(question=QUESTION), api_name="/agent_step")
    assert data["status"] == "open" and data["steps"][0]["by"] == "learner"
    assert data["steps"][0]["observation"] == "33.915" and "Tool result" in markdown and "write the next step" in note


def test_agent_grade_endpoint_runs_the_agent_and_grades_its_trace(client):
    from tutor.lessons import load_lessons

    exercise = load_lessons(ROOT / "lessons").get("react-loop").exercise("weather-agent")
    task = exercise.agent
    descriptions = "\n".join(f"Tool {name}: {about}" for name, about in task.descriptions.items())
    feedback = client.predict("react-loop/weather-agent", (task.system or "").strip(), list(task.offered),
                              descriptions, api_name="/agent_grade")  # the gr.Progress argument is not in the API
    assert feedback.startswith(("**Passed**", "**Not yet**")) and "score" in feedback
