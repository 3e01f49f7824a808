"""`tutor agent run | tools`: the Agent lab from the shell.

    tutor agent tools --json
    tutor agent run --tools calculator,readings --task "What is 15% of 2,480?" --json
    tutor agent run --tools shop --system spec.txt --describe "shop_refund=Only when the customer asks." --task "..."
"""
from __future__ import annotations

import json

from tutor.cli.files import read_text_file
from tutor.config import Settings
from tutor.errors import TutorError


def cmd_tools(args, settings: Settings) -> int:
    from tutor.agents.tools import catalogue

    tools = catalogue()
    if args.json:
        print(json.dumps(tools, indent=2, ensure_ascii=False))
    else:
        for t in tools:
            print(f"{t['name']}({', '.join(t['args'])}): {t['description']}")
    return 0


def cmd_run(args, settings: Settings) -> int:
    from tutor.agents.loop import Agent, RunSpec
    from tutor.agents.spec import Limits, expand_tools

    task = (args.task or "").strip()
    if not task:
        raise TutorError("--task is empty; write the question the agent should answer")
    if len(task) > settings.max_input_chars:
        raise TutorError(f"--task is {len(task):,} characters; the limit is {settings.max_input_chars:,} "
                         "(TUTOR_MAX_INPUT_CHARS)")
    system = read_text_file(args.system) if args.system else ""
    if len(system) > settings.max_input_chars:
        raise TutorError(f"{args.system} is {len(system):,} characters; the limit is {settings.max_input_chars:,}")
    tools = expand_tools(args.tools.split(","))
    if not tools:
        raise TutorError("--tools names no tool; `tutor agent tools` lists them")
    try:
        limits = Limits(steps=args.max_steps, seconds=min(args.max_seconds, settings.agent_max_seconds),
                        tokens=args.max_tokens, reply_tokens=args.reply_tokens)
    except ValueError as exc:
        raise TutorError(f"a limit is out of range: {exc.errors()[0]['loc'][0]} {exc.errors()[0]['msg']}") from None
    spec = RunSpec(question=task, tools=tools, system=system, descriptions=_descriptions(args.describe, tools),
                   examples=not args.no_examples, limits=limits)

    from tutor.models import load_model

    agent = Agent(load_model(settings), spec, search=_search(settings) if "readings" in tools else None)
    trace, shown = None, 0
    for trace in agent.run():
        if not args.json:
            for step in trace.steps[shown:]:
                if step.observation is not None or step.parsed.get("kind") == "final":
                    print(f"step {step.number} ({step.seconds:.1f} s): " + _one(step), flush=True)
                    shown += 1
    if args.json:
        print(json.dumps(trace.to_json(), indent=2, ensure_ascii=False))
    else:
        print(f"\n{trace.status}: {trace.answer if trace.answer is not None else trace.message}")
    return 0


def cmd_eval_agents(args, settings: Settings) -> int:
    from tutor.agents.calibrate import calibrate, table
    from tutor.lessons import load_lessons
    from tutor.models import load_model

    model = load_model(settings)

    def progress(row):
        if not args.json:
            print(f"{row['exercise']}: greedy {'completes' if row['greedy_completed'] else 'fails'}, sampled "
                  f"{row['sampled_completed']}/{row['samples']}, {row['seconds_per_step']} s/step", flush=True)

    rows = calibrate(model, load_lessons(settings.lessons_dir), samples=args.samples, progress=progress)
    info = model.info
    if args.json:
        print(json.dumps({"model": info.name, "adapter": info.adapter, "rows": rows}, indent=2, ensure_ascii=False))
    else:
        print(f"\n{info.name} (adapter: {info.adapter or 'none'}), {info.device}\n\n{table(rows)}")
    return 0


def _one(step) -> str:
    kind = step.parsed.get("kind")
    if kind == "action":
        return f"{step.tool} {json.dumps(step.args, ensure_ascii=False)} -> {' '.join((step.observation or '').split())}"
    if kind == "final":
        return f"Final Answer: {step.parsed.get('answer')}"
    return f"unreadable reply: {step.parsed.get('error')}"


def _descriptions(items: list[str], tools: tuple[str, ...]) -> dict[str, str]:
    from tutor.agents.spec import MAX_DESCRIPTION_CHARS

    found = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name = name.strip().lower()
        if not sep or not text.strip():
            raise TutorError(f"--describe {item[:40]!r}: write NAME=DESCRIPTION, e.g. calculator=Exact arithmetic.")
        if name not in tools:
            raise TutorError(f"--describe names '{name[:40]}', which is not in --tools ({', '.join(tools)})")
        if len(text) > MAX_DESCRIPTION_CHARS:
            raise TutorError(f"--describe {name}: {len(text)} characters; keep it under {MAX_DESCRIPTION_CHARS}")
        found[name] = text.strip()
    return found


def _search(settings: Settings):
    from tutor.readings import retrieval

    retrieval.ensure_index(settings, progress=False)
    return retrieval.Retriever(settings).search


def register(sub, evals) -> None:
    from tutor.agents.spec import Limits

    s = evals.add_parser("agents", help="how often the model completes each agent exercise with its reference spec")
    s.add_argument("--samples", type=int, default=4, help="sampled runs per exercise, besides the greedy one")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_eval_agents)

    agent = sub.add_parser("agent", help="run a tool-using agent on the model").add_subparsers(dest="action",
                                                                                               required=True)
    s = agent.add_parser("tools", help="the toolbox: names, descriptions, arguments, examples")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_tools)

    d = Limits()
    s = agent.add_parser("run", help="run the ReAct agent on a task and print its trace")
    s.add_argument("--task", required=True, help="the question the agent answers")
    s.add_argument("--tools", default="calculator", help="comma-separated tool names (`shop` = the four shop tools)")
    s.add_argument("--system", help="a file holding the agent's system prompt")
    s.add_argument("--describe", action="append", metavar="NAME=TEXT", help="replace a tool's description (repeatable)")
    s.add_argument("--max-steps", type=int, default=d.steps)
    s.add_argument("--max-seconds", type=int, default=d.seconds, help="model and tool time (TUTOR_AGENT_MAX_SECONDS caps it)")
    s.add_argument("--max-tokens", type=int, default=d.tokens, help="prompt + reply tokens summed over steps")
    s.add_argument("--reply-tokens", type=int, default=d.reply_tokens, help="the most one reply may write")
    s.add_argument("--no-examples", action="store_true", help="no worked example per tool (zero-shot)")
    s.add_argument("--json", action="store_true", help="print the whole trace as JSON")
    s.set_defaults(fn=cmd_run)
