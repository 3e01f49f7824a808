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
    "langchain_core": {"tutor.readings"},
    "langchain_chroma": {"tutor.readings.retrieval"},
    "langchain_text_splitters": {"tutor.readings.retrieval"},
    "chromadb": {"tutor.readings.retrieval"},
    "wordllama": {"tutor.readings"},
    "psycopg": {"tutor.progress.postgres"},
}
# Modules only the edges (app.py, the CLI) may import.
EDGES = {"tutor.ui": {"tutor.cli"}, "tutor.finetune.train": {"tutor.cli"}, "tutor.runtime": {"tutor.cli"},
         "tutor.finetune.adapter_eval": {"tutor.cli"},
         "tutor.cli": set()}


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


def test_requirements_txt_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    assert [l for l in lines if l and not l.startswith("#")] == deps


def test_spaces_front_matter_matches_the_pinned_gradio():
    readme = (ROOT / "README.md").read_text()
    front = readme.split("---")[1]
    meta = {k: v.strip().strip('"') for k, v in re.findall(r"^(\w+):\s*(.+)$", front, re.M)}
    pin = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
               if d.startswith("gradio"))
    assert meta["sdk"] == "gradio" and pin == f"gradio=={meta['sdk_version']}"
    assert meta["app_file"] == "app.py" and meta["python_version"].startswith("3.1")
    assert "suggested_hardware" in meta and "models" in front


def test_modules_stay_short():
    long = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"split these modules (over 400 lines): {long}"
