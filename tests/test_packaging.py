"""The shape of the project: dependency direction, requirements in sync, Spaces front matter."""
import ast
import re
import tomllib
from pathlib import Path

from tutor.config import ROOT

PACKAGE = ROOT / "tutor"

# Which of our modules may import which heavy framework. Everything else stays framework-free.
FRAMEWORKS = {
    "gradio": {"tutor.ui"},
    "torch": {"tutor.models.hf", "tutor.finetune"},
    "transformers": {"tutor.models.hf", "tutor.finetune"},
    "peft": {"tutor.models.hf", "tutor.finetune.train"},
    "bitsandbytes": {"tutor.models.hf", "tutor.finetune.train"},
    "langchain_core": {"tutor.readings", "tutor.agents"},
    "langchain": {"tutor.agents"},
    "langgraph": {"tutor.agents"},
    "langchain_chroma": {"tutor.readings.retrieval", "tutor.readings.store"},
    "langchain_text_splitters": {"tutor.readings.retrieval"},
    "chromadb": {"tutor.readings.retrieval", "tutor.readings.store"},
    "wordllama": {"tutor.readings"},
    "llama_cpp": {"tutor.models.llamacpp", "tutor.bench"},  # the benchmark times raw llama-cpp-python too
    "psycopg": {"tutor.progress.postgres"},
    "httpx": {"tutor.models.openai", "tutor.loadtest"},
    "gradio_client": {"tutor.loadtest"},
}
# Modules only the edges (app.py, the CLI, and tutor.startup which both use to serve) may import.
EDGES = {"tutor.ui": {"tutor.cli", "tutor.startup"}, "tutor.finetune.train": {"tutor.cli"},
         "tutor.runtime": {"tutor.cli", "tutor.startup"}, "tutor.finetune.adapter_eval": {"tutor.cli"},
         "tutor.startup": {"tutor.cli", "tutor.loadtest"}, "tutor.cli": set()}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def owner(module: str, allowed: set[str]) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed)


def test_frameworks_stay_in_their_modules():
    problems = []
    for path in PACKAGE.rglob("*.py"):
        mod = module_name(path)
        for imported in imports(path):
            top = imported.split(".")[0]
            if top in FRAMEWORKS and not owner(mod, FRAMEWORKS[top]):
                problems.append(f"{mod} imports {imported}")
    assert not problems, problems


def test_edges_are_not_imported_by_the_core():
    problems = []
    for path in PACKAGE.rglob("*.py"):
        mod = module_name(path)
        for imported in imports(path):
            if imported in EDGES and not owner(mod, {imported} | EDGES[imported]):
                problems.append(f"{mod} imports {imported}")
    assert not problems, problems


def _pins(path) -> dict[str, str]:
    """{normalised name: version} of every `name==version` line (hash and comment lines skipped)."""
    pins = {}
    for line in (ROOT / path).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def _names(requirements: list[str]) -> set[str]:
    return {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.\-]+", r)[0]).lower() for r in requirements}


def test_lock_and_space_requirements_name_what_pyproject_declares():
    """`make lock` writes both from pyproject.toml: a dependency added to one and not the others fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock, space = _pins("requirements.lock"), _pins("requirements.txt")
    runtime, test = _names(project["dependencies"]), _names(project["optional-dependencies"]["test"])
    assert runtime - {"torch"} <= lock.keys(), f"run `make lock`: the lock lacks {sorted(runtime - lock.keys())}"
    assert test <= lock.keys(), f"run `make lock`: the lock lacks {sorted(test - lock.keys())}"
    assert runtime <= space.keys(), f"run `make lock`: requirements.txt lacks {sorted(runtime - space.keys())}"
    assert not {"torch", "triton"} & lock.keys()  # installed by the Makefile, CPU or CUDA as the machine needs
    torch_pin = next(d for d in project["dependencies"] if d.startswith("torch"))
    assert space["torch"] == torch_pin.split("==")[1]
    assert {name: space[name] for name in space if name in lock} == {name: lock[name] for name in space if name in lock}
    # every locked package carries hashes: `make` installs with --require-hashes
    lock_text = (ROOT / "requirements.lock").read_text()
    assert lock_text.count("--hash=sha256:") >= len(lock)


def test_spaces_front_matter_parses_with_the_hubs_own_parser():
    from huggingface_hub import SpaceCard

    data = SpaceCard((ROOT / "README.md").read_text()).data  # what the Hub reads from the README
    pin = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
               if d.startswith("gradio"))
    assert data.sdk == "gradio" and pin == f"gradio=={data.sdk_version}"
    assert data.app_file == "app.py" and data.python_version == "3.11"
    assert data.license == "mit" and data.tags and data.get("short_description")
    assert len(data.get("short_description")) <= 60  # the Hub's limit for the card's one-liner
    assert {"mistralai/Mistral-7B-Instruct-v0.2", "HuggingFaceTB/SmolLM2-135M-Instruct"} <= set(data.models)
    assert data.get("suggested_hardware")


def test_binaries_over_one_megabyte_go_through_lfs():
    """The Hub refuses binary files over ~1 MB pushed as plain git blobs: .gitattributes must cover each."""
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    big = [f for f in files if (ROOT / f).is_file() and (ROOT / f).stat().st_size > 1_000_000]
    assert big  # the shipped adapter is ~20 MB: the check below runs on something
    attrs = subprocess.run(["git", "check-attr", "filter", "--", *big], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    uncovered = [line.split(":")[0] for line in attrs if not line.endswith(": lfs")]
    assert not uncovered, f"add LFS patterns to .gitattributes for {uncovered}"


def test_modules_stay_short():
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these modules (over 400 lines): {long}"
