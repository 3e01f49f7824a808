"""Read an instructor's YAML file as validated data, and say at which line, and how, to fix what is wrong.

``read_model(path, Model, owners)`` is the whole pipeline: ``read_text`` (size cap, strict UTF-8), then
``load_mapping`` (YAML as plain data), then pydantic validation, every problem reported as ``path:line: message``
in a ``LessonError``. Lesson files are data, never code, so ``load_mapping`` refuses:

* anchors and aliases (``&name`` / ``*name``): a few lines of nested aliases ("billion laughs") expand into
  gigabytes when constructed;
* explicit tags other than YAML's own (``!!python/object`` and friends);
* nesting deeper than ``MAX_DEPTH``: libyaml's composer recurses in C, and a file of 100,000 ``[`` crashes the
  interpreter instead of raising;
* a key repeated in one mapping (YAML would silently keep the last one).

The screening pass reads parser events, which libyaml produces with an explicit stack (no recursion), so it is
safe on any input; only a file that passes it is composed into nodes.

``explain`` turns a pydantic ``ValidationError`` into (line, message) pairs: ``locate`` maps each error's
``loc`` (keys and list indexes) back to a line, and the message names the key and says what to write instead.
``Strict``, ``Text`` and ``Problems`` are the schema helpers that make those messages possible.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from tutor.errors import LessonError

#: 256 KiB is about 40,000 words: ten times the longest lesson, small enough to parse in milliseconds.
MAX_BYTES = 256 * 1024
#: A lesson nests six deep (lesson > exercises > exercise > checks > check > list); 32 leaves room to spare.
MAX_DEPTH = 32
NESTED = f"nested more than {MAX_DEPTH} levels deep; a lesson needs about six"

# libyaml is about 20x faster than the pure-Python parser (15 lessons: ~40 ms against ~250 ms here).
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SAFE_TAGS = {tag for tag in yaml.SafeLoader.yaml_constructors if tag}
_STD = "tag:yaml.org,2002:"


class Strict(BaseModel):
    """Base of every schema model: unknown keys are errors (a typo must not pass silently), values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("is empty; write some text here")
    return text


#: Text that is more than whitespace.
Text = Annotated[str, AfterValidator(_not_blank)]


class Problems(ValueError):
    """Raised by a model validator for problems across fields, each with a ``loc`` relative to that model.

    Pydantic keeps the exception in the error's ``ctx``, so ``explain`` can point at each problem's own line.
    """

    def __init__(self, problems: list[tuple[tuple, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))


class YamlProblem(Exception):
    """Something wrong with the file at ``line`` (1-based; None for the file as a whole)."""

    def __init__(self, line: int | None, message: str):
        self.line, self.message = line, message
        super().__init__(message)


def read_model(path: Path, top: type[BaseModel], owners: dict[str, type[BaseModel]]) -> tuple[BaseModel, yaml.Node]:
    """Read ``path`` and validate it as ``top``: (model, root node), or LessonError listing every problem as
    ``path:line: message``. ``owners`` is explained at ``explain``."""
    try:
        data, root = load_mapping(read_lesson_file(path))
    except YamlProblem as e:
        raise LessonError([f"{path}:{e.line}: {e.message}" if e.line else f"{path}: {e.message}"]) from None
    try:
        return top.model_validate(data), root
    except ValidationError as e:
        raise LessonError([f"{path}:{line}: {msg}" for line, msg in explain(e, root, owners, top)]) from None


def read_lesson_file(path: Path) -> str:
    """The file's text, after the size cap and a strict UTF-8 decode."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise YamlProblem(None, f"file is {size / 1024:.0f} KiB; lesson files are capped at "
                                    f"{MAX_BYTES // 1024} KiB, so split it into several lessons")
        data = path.read_bytes()
    except OSError as e:
        raise YamlProblem(None, f"cannot read the file ({e.strerror}); check that it exists and is readable")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise YamlProblem(line, f"not valid UTF-8 text (byte {e.start + 1}); save the file as UTF-8")


def load_mapping(text: str) -> tuple[dict, yaml.Node]:
    """Parse ``text``, which must hold one mapping, into (plain data, root node)."""
    data, root = _load(text)
    if root is None:
        raise YamlProblem(1, "file is empty; a lesson file is a mapping that starts with `id:` (see lessons/README.md)")
    if not isinstance(data, dict):
        raise YamlProblem(root.start_mark.line + 1, "the top level must be a mapping of keys (id:, title:, "
                                                    f"exercises: ...), not {_describe(data)}")
    return data, root


def _load(text: str) -> tuple[object, yaml.Node | None]:
    try:
        _screen(text)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return None, None
            _check_keys(root)
            return loader.construct_document(root), root
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        if "nesting depth" in str(e.problem):  # PyYAML >= 6.0.3 caps flow nesting itself, before _screen sees it
            raise YamlProblem(mark.line + 1 if mark else None, NESTED) from None
        message = f"YAML syntax error: {e.problem or e.context}"
        lines = text.splitlines()
        if mark and mark.line < len(lines) and "\t" in lines[mark.line]:
            message += "; this line has a tab: indent with spaces, not tabs"
        elif e.context and e.problem:
            message += f" ({e.context}, line {e.context_mark.line + 1})" if e.context_mark else f" ({e.context})"
        raise YamlProblem(mark.line + 1 if mark else None, message) from None
    except yaml.YAMLError as e:
        raise YamlProblem(None, f"YAML error: {e}") from None


def _screen(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise YamlProblem(line, f"alias '*{event.anchor}' is not allowed: lesson files may not use anchors "
                                    "or aliases (&name / *name); write the value out in full")
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise YamlProblem(line, f"anchor '&{event.anchor}' is not allowed: lesson files may not use anchors "
                                    "or aliases (&name / *name); remove it and write repeated values out in full")
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and tag not in _SAFE_TAGS:
            shown = "!!" + tag[len(_STD):] if tag.startswith(_STD) else tag
            raise YamlProblem(line, f"tag '{shown}' is not allowed: lesson files are plain data, not code; "
                                    "remove the tag and write a plain value")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlProblem(line, NESTED)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_keys(node: yaml.Node) -> None:
    """Refuse a key repeated within one mapping (depth is bounded by ``_screen``, so recursion is safe)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                line = key.start_mark.line + 1
                if key.value in seen:
                    raise YamlProblem(line, f"duplicate key '{key.value}' (first on line {seen[key.value]}); "
                                            "YAML would keep only the last one, so remove or rename one of them")
                seen[key.value] = line
            _check_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_keys(item)


def locate(root: yaml.Node, loc: tuple) -> tuple[int, list]:
    """The line that ``loc`` (keys and list indexes) points at, and the parts of ``loc`` found in the file.

    Parts not in the file are left out: a pydantic union adds the member's tag (the check's type) to ``loc``,
    and a missing key has no line of its own, so it is reported on its parent's line.
    """
    node, line, found = root, root.start_mark.line + 1, []
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            child = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = (node.value[part], node.value[part])
        if child is not None:
            (_, node), line = child, child[0].start_mark.line + 1
            found.append(part)
    return line, found


def explain(error: ValidationError, root: yaml.Node, owners: dict[str, type[BaseModel]],
            top: type[BaseModel]) -> list[tuple[int, str]]:
    """(line, message) for each error, sorted by line. ``owners`` maps a key (or a union tag) to the model
    its value is validated by, ``top`` is the model of the whole file: they name the keys allowed where an
    unknown key was found."""
    errors = error.errors()
    out = set()
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "too_short" and any(e["loc"][:len(loc)] == loc and e is not err for e in errors):
            continue  # pydantic counts only the valid items; the items' own errors say more
        cause = (err.get("ctx") or {}).get("error")
        for sub_loc, custom in cause.problems if isinstance(cause, Problems) else [((), None)]:
            full = loc + tuple(sub_loc)
            line, where = locate(root, full)
            if (custom or err["type"] == "missing") and where[-1:] != [full[-1]]:
                where.append(full[-1])  # a missing key: name it
            out.add((line, f"{_path(where)}: {custom}" if custom else _message(err, where, owners, top)))
    return sorted(out, key=lambda p: p[0])


def _path(parts) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    return text or "top level"


_LIST_HELP = {"hints": "add a vaguer hint before the current one", "exercises": "add another exercise"}
_TYPE_WORDS = {"string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
               "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
               "bool_type": "true or false", "bool_parsing": "true or false", "tuple_type": "a list (lines "
               "starting with '- ')", "model_type": "a mapping of keys", "model_attributes_type": "a mapping of keys"}


def _message(err: dict, where: list, owners: dict, top: type[BaseModel]) -> str:
    kind, ctx, path, value = err["type"], err.get("ctx") or {}, _path(where), err.get("input")
    if kind == "missing":
        return f"{_path(where[:-1])}: missing required key '{where[-1]}'; add it (see lessons/README.md)"
    if kind == "extra_forbidden":
        names = [p for p in err["loc"][:-1] if isinstance(p, str)]  # a union member's loc holds its tag
        allowed = sorted((owners.get(names[-1], top) if names else top).model_fields)
        close = difflib.get_close_matches(str(where[-1]), allowed, n=1)
        guess = f"did you mean '{close[0]}'? " if close else ""
        return f"{path}: unknown key '{where[-1]}'; {guess}allowed keys here: {', '.join(allowed)}"
    if kind == "too_short":
        noun, n = str(where[-1]).replace("_", " "), ctx.get("min_length")
        if n == 1:
            return f"{path}: is empty; add at least one entry"
        advice = _LIST_HELP.get(where[-1], f"add at least {n}")
        return f"{path}: needs at least {n} {noun} (got {ctx.get('actual_length')}); {advice}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = ctx.get("discriminator", "'type'").strip("'")
        tags = ctx.get("expected_tags") or ", ".join(repr(k) for k, m in owners.items() if field in m.model_fields)
        what = f"unknown {field} {ctx.get('tag')!r}" if kind == "union_tag_invalid" else f"missing '{field}:'"
        return f"{path}: {what}; use one of {tags}"
    if kind == "string_pattern_mismatch" and where[-1] == "id":
        return f"{path}: {value!r} is not a valid id; use lowercase kebab-case such as 'summarize-review'"
    if kind in _TYPE_WORDS:
        quote = "; put it in quotes" if kind == "string_type" and isinstance(value, (bool, int, float)) else ""
        return f"{path}: should be {_TYPE_WORDS[kind]}, not {_describe(value)}{quote}"
    msg = err["msg"].removeprefix("Value error, ").replace("Input should", "should")
    return f"{path}: {msg}" + (f" (got {value!r})" if kind.startswith(("greater", "less", "literal")) else "")


def _describe(value) -> str:
    if isinstance(value, bool):
        return f"the yes/no value {str(value).lower()}"
    if value is None:
        return "an empty value"
    names = {dict: "a mapping", list: "a list", str: "text", int: "a number", float: "a number"}
    shown = repr(value)
    return f"{names.get(type(value), type(value).__name__)} ({shown if len(shown) < 40 else shown[:39] + '…'})"
