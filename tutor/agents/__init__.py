"""The Agent lab: a safe toolbox, a ReAct agent loop over the tutor's own model, its trace, and grading.

    tools.py     the toolbox as LangChain tools (calculator, units, weather, readings, a mock shop)
    calc.py      the calculator's arithmetic parser (never eval)
    spec.py      the ``agent:`` block of an exercise, the learner's spec, the run's limits (no LangChain)
    react.py     the ReAct text format: the prompt turns and the parser of a model's reply (no LangChain)
    adapter.py   a LangChain chat model over a tutor ChatModel, tool calling done as ReAct text
    loop.py      the agent: LangChain's ``create_agent`` with middleware for limits and recovery
    trace.py     what happened at each step, as JSON and as Markdown
    grade.py     an agent exercise graded from its trace plus rubric checks on the spec

Only ``tools``, ``adapter`` and ``loop`` import LangChain; importing this package does not.
"""
