"""`make bench` (or `python -m tutor.bench`): the ways of serving the embedded GGUF, side by side in one run.

Columns, each measured in fresh processes so start times and peak memory are real:
- served: the llama.cpp back-end as the app loads it (tutor.models.load_model: the shipped adapter applied);
- raw llama.cpp: llama-cpp-python's own API (``Llama.create_completion``) on the same files (the weights as
  served, see tutor.models.llamacpp.weights, and the exported adapter), same threads and context size: what the
  served path's overhead is measured against;
- raw, shipped GGUF: the embedded Q4_1 file as it ships, no adapter: plain llama.cpp on the model as downloaded;
- transformers fp32: the float32 transformers back-end, for reference.

Rows: cold start (launch to ready with an empty data dir: the served path exports the adapter, transformers
dequantizes the GGUF), warm start (caches present), decode speed (greedy, 128 tokens, repetition penalty off),
time to the first token of a grounded answer (prompts/tutor_system.md + prompts/answer_from_readings.md with
passages from the course readings, about 800 tokens), for three questions on different passages with a
self-check call after each, as the app runs them (the 1st with nothing cached; by the 3rd, what the prompts
share has been read once), and peak resident memory.
Timings are the best of ``--runs`` runs (columns take turns, so a change in the load hits them alike); memory is
the largest. The machine's load average is printed: other
processes on a shared CPU slow everything down, llama.cpp's spinning threads most of all.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tutor.config import Settings

DECODE_TOKENS = 128
GROUNDED_CHARS = 2200  # passage text; with the instructions and the system prompt about 800 tokens (printed)
TARGETS = {"cold_start_s": 5.0, "warm_start_s": 2.0, "peak_rss_mb": 400, "ttft_first_s": 1.5, "ttft_followup_s": 1.5}
PROMPTS = ("decode", "first", "check", "second", "followup")
# The app's order: an answer, its self-check, the next answer... "followup" is the third question, when what the
# grounded prompts share (the system prompt, the template's fixed instructions) has been read once.
ASKED = ("first", "check", "second", "check", "followup")
COLUMNS = ("served", "raw", "raw_base", "transformers")
TITLES = {"served": "served", "raw": "raw llama.cpp", "raw_base": "raw, shipped GGUF", "transformers": "transformers fp32"}


def workload(settings: Settings) -> dict:
    """The prompts every column runs: a decode prompt and two grounded questions with a self-check between."""
    from tutor import prompts

    readings = sorted(settings.readings_dir.glob("*.md"))
    system = prompts.render("tutor_system", lesson_title="", lesson_tactic="", exercise_task="")

    def grounded(files: list[Path], question: str) -> list[dict]:
        passages, budget = [], GROUNDED_CHARS
        for path in files:
            text = path.read_text()[: budget // len(files)]
            passages.append({"title": path.stem.replace("-", " "), "text": text})
        user = prompts.render("answer_from_readings", passages=passages, question=question)
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    check = prompts.render("grounding_check", passages=[{"title": "t", "text": readings[0].read_text()[:600]}],
                           answer="Temperature scales the logits before sampling.")
    return {
        "decode": [{"role": "user", "content": "Write a long story about a tutor who teaches prompt engineering."}],
        "first": grounded(readings[0:3], "What does the temperature setting change?"),
        "check": [{"role": "user", "content": check}],
        "second": grounded(readings[3:6], "How should I evaluate a fine-tuned model?"),
        "followup": grounded(readings[6:9], "Why do models hallucinate, and what helps?"),
    }


# -- inside one measured process ------------------------------------------------------------------------------
def _ready(started: float) -> dict:
    return {"start_s": round(time.time() - started, 3)}


def probe_model(model, work: dict) -> dict:
    from tutor.models import GenerationSettings

    greedy = GenerationSettings(max_new_tokens=DECODE_TOKENS, temperature=0, repetition_penalty=1.0)
    first_chunk = greedy.with_(max_new_tokens=1)
    figures = {}
    for name in ASKED:
        t = time.perf_counter()
        next(iter(model.stream(work[name], first_chunk)), None)
        figures[f"ttft_{name}_s"] = round(time.perf_counter() - t, 3)
    figures["grounded_prompt_tokens"] = model.count_tokens(model.render(work["followup"]))
    text, t_first = "", None
    for chunk in model.stream(work["decode"], greedy):
        t_first = t_first or time.perf_counter()
        text += chunk
    tokens = model.count_tokens(text)
    figures["decode_tok_s"] = round((tokens - 1) / (time.perf_counter() - t_first), 1)
    figures["decode_tokens"] = tokens
    figures["rendered"] = {name: model.render(work[name]) for name in PROMPTS}
    return figures


def probe_raw(work: dict, weights: str, lora: str | None) -> dict:
    import llama_cpp

    llm = llama_cpp.Llama(weights, lora_path=lora, n_ctx=work["n_ctx"], n_threads=work["threads"],
                          n_threads_batch=work["threads"], verbose=False)
    figures = {}
    for name in ASKED:
        t = time.perf_counter()
        next(iter(llm.create_completion(work["rendered"][name], max_tokens=1, temperature=0.0, stream=True)), None)
        figures[f"ttft_{name}_s"] = round(time.perf_counter() - t, 3)
    text, t_first = "", None
    for chunk in llm.create_completion(work["rendered"]["decode"], max_tokens=DECODE_TOKENS, temperature=0.0,
                                       repeat_penalty=1.0, stream=True):
        t_first = t_first or time.perf_counter()
        text += chunk["choices"][0]["text"]
    tokens = len(llm.tokenize(text.encode(), add_bos=False, special=True))
    figures["decode_tok_s"] = round((tokens - 1) / (time.perf_counter() - t_first), 1)
    figures["decode_tokens"] = tokens
    llm.close()
    return figures


def probe(args) -> int:
    started = args.started
    work = json.loads(Path(args.work).read_text())
    if args.probe in ("raw", "raw_base"):
        ready = None
        as_served = args.probe == "raw"
        figures = probe_raw(work, work["weights"] if as_served else work["source"], work["lora"] if as_served else None)
    else:
        from tutor.models import load_model

        backend = "llamacpp" if args.probe == "served" else "transformers"
        model = load_model(Settings.from_env(data_dir=Path(args.data_dir), backend=backend))
        ready = _ready(started)
        figures = probe_model(model, work)
        extra = model.info.extra
        figures.update(threads=extra.get("threads"), prompt_threads=extra.get("prompt_threads"),
                       lora=extra.get("lora_gguf"), source=extra.get("source"),
                       weights=extra.get("weights"), n_ctx=model.info.context_window)
    figures.update(ready or {})
    figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux
    print(json.dumps(figures))
    return 0


# -- the orchestra --------------------------------------------------------------------------------------------
def run_probe(column: str, work_file: Path, data_dir: Path) -> dict:
    started = time.time()
    command = [sys.executable, "-m", "tutor.bench", "--probe", column, "--work", str(work_file),
               "--data-dir", str(data_dir), "--started", repr(started)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"bench: the {column} probe failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["load_avg"] = round(os.getloadavg()[0], 1)
    return figures


def raw_start(work: dict, with_adapter: bool) -> float:
    """Launch to ready for raw llama-cpp-python: interpreter, import, load; measured like the others."""
    started = time.time()
    weights, lora = (work["weights"], work["lora"]) if with_adapter else (work["source"], None)
    code = ("import time, llama_cpp; llm = llama_cpp.Llama(%r, lora_path=%r, n_ctx=%d, n_threads=%d, verbose=False);"
            " print(time.time()); llm.close()") % (weights, lora, work["n_ctx"], work["threads"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300).stdout
    return round(float(out.split()[-1]) - started, 3)


def best(runs: list[dict]) -> dict:
    merged = {}
    for key in runs[0]:
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if not values:
            merged[key] = runs[0][key]
        elif key.endswith("tok_s"):
            merged[key] = max(values)
        elif key in ("peak_rss_mb", "load_avg"):
            merged[key] = max(values)
        else:
            merged[key] = min(values)
    return merged


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tutor.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="runs per column; the best timing is kept")
    p.add_argument("--skip-transformers", action="store_true", help="leave out the (slow) transformers column")
    p.add_argument("--json", action="store_true", help="print every figure as JSON as well")
    p.add_argument("--probe", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--data-dir", help=argparse.SUPPRESS)
    p.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        return probe(args)
    settings = Settings.from_env()
    columns = [c for c in COLUMNS if not (c == "transformers" and args.skip_transformers)]
    results: dict[str, dict] = {}
    runs: dict[str, list[dict]] = {c: [] for c in columns}
    cold: dict[str, list[dict]] = {"served": [], "transformers": []}
    raw_starts: dict[str, list[float]] = {"raw": [], "raw_base": []}
    with tempfile.TemporaryDirectory(prefix="tutor-bench-") as tmp:
        work_file, home = Path(tmp) / "work.json", {c: Path(tmp) / c for c in columns}
        work = workload(settings)
        work_file.write_text(json.dumps(work))
        # First starts on empty data dirs: the served path exports the adapter, transformers dequantizes the GGUF.
        cold["served"].append(run_probe("served", work_file, home["served"]))
        work.update({key: cold["served"][0][key] for key in ("rendered", "source", "weights", "lora", "threads", "n_ctx")})
        work_file.write_text(json.dumps(work))
        if "transformers" in columns:
            cold["transformers"].append(run_probe("transformers", work_file, home["transformers"]))
        # Then rounds that take every column in turn, so a change in the machine's load hits them all alike.
        for turn in range(args.runs):
            for column in columns:
                if column == "transformers" and turn > 0:
                    continue  # one warm run: it is the reference, and each takes a minute
                runs[column].append(run_probe(column, work_file, home[column]))
                if column == "served" and turn > 0:
                    cold["served"].append(run_probe("served", work_file, Path(tmp) / f"served-{turn}"))
                if column in raw_starts:
                    raw_starts[column].append(raw_start(work, with_adapter=column == "raw"))
    results = {}
    for column in columns:
        results[column] = best(runs[column] + cold.get(column, []))
        results[column]["warm_start_s"] = min(raw_starts.get(column) or [r["start_s"] for r in runs[column]])
        if cold.get(column):
            results[column]["cold_start_s"] = min(r["start_s"] for r in cold[column])
    print(report(results, columns, work))
    if args.json:
        print(json.dumps({c: {k: v for k, v in r.items() if k != "rendered"} for c, r in results.items()}, indent=2))
    return 0


def report(results: dict, columns: list[str], work: dict) -> str:
    rows = [("cold start (s)", "cold_start_s"), ("warm start (s)", "warm_start_s"), ("decode (tok/s)", "decode_tok_s"),
            ("TTFT grounded, 1st question (s)", "ttft_first_s"), ("TTFT grounded, 2nd (s)", "ttft_second_s"),
            ("TTFT grounded, 3rd (s)", "ttft_followup_s"),
            ("peak RSS (MB)", "peak_rss_mb"), ("load average (1 min)", "load_avg")]
    width = 20
    lines = [f"{'':30}" + "".join(f"{TITLES[c]:>{width}}" for c in columns)]
    for title, key in rows:
        cells = "".join(f"{results[c].get(key, '-')!s:>{width}}" for c in columns)
        lines.append(f"{title:30}{cells}")
    served, raw = results["served"], results["raw"]
    ratio = served["decode_tok_s"] / raw["decode_tok_s"]
    checks = [(f"decode >= 0.9x raw llama.cpp: {ratio:.2f}x", ratio >= 0.9)] + [
        (f"{key} <= {limit}: {served[key]}", served[key] <= limit) for key, limit in TARGETS.items()]
    lines += ["", f"served: {Path(served['weights']).name} + {Path(served['lora'] or 'no adapter').name}, "
              f"{served.get('threads')} llama.cpp thread(s) generating (prompts: {served.get('prompt_threads')}; raw: "
              f"{served.get('threads')}), grounded prompt {served['grounded_prompt_tokens']} tokens, "
              f"{served['decode_tokens']} decoded tokens; {os.cpu_count()} CPUs"]
    lines += [f"  [{'ok' if ok else 'MISSED'}] {text}" for text, ok in checks]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
