"""The tutor's fine-tuning data (``datasets/tutor_sft/``): records, validation, the fixed split, and encoding.

A record is one conversation whose last message is the reply the tutor should learn to write::

    {"id": "critique-3f2a9c01d4", "task": "critique", "source": "critique.yaml",
     "messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", ...}]}

``scripts/build_sft_data.py`` renders the records from the hand-written sources and the lessons with the same
prompt templates the app serves with, and writes ``train.jsonl`` and ``validation.jsonl``. ``encode`` turns a
record into token ids with the model's own chat template and sets the label of every prompt token to -100, so
the loss counts only the reply.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tutor.config import ROOT
from tutor.errors import TutorError
from tutor.models.chat_format import accepts_system_role, fold_system

DATA_DIR = ROOT / "datasets" / "tutor_sft"
TASKS = ("explain", "hint", "critique", "grounded", "judge", "steer")
SPLITS = ("train", "validation")
#: One record in ten is held out: about 65 of ~650, enough for a validation loss that moves smoothly.
VALIDATION_EVERY = 10
#: Replies stay short: the embedded model is small, and every reply token costs CPU training time.
MAX_REPLY_WORDS = 200
IGNORE_INDEX = -100  # the label torch's cross-entropy skips
_KEYS = {"id", "task", "source", "messages"}


class DatasetError(TutorError):
    """The fine-tuning data is malformed or missing."""


def record_id(task: str, key: str) -> str:
    """A stable id from what the example is about (not from its rendered text), so editing a prompt template
    does not move examples between splits."""
    return f"{task}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def split_of(record_id: str) -> str:
    """The fixed split: a hash of the id, so it never depends on file order or on what else is in the data."""
    bucket = int(hashlib.sha1(record_id.encode()).hexdigest(), 16) % VALIDATION_EVERY
    return "validation" if bucket == 0 else "train"


def validate(records: list[dict]) -> list[str]:
    """Every problem in ``records``, one line each; an empty list means the data is usable."""
    problems, ids, prompts = [], {}, {}
    for n, record in enumerate(records, 1):
        where = f"record {n} ({record.get('id', 'no id')})"
        if set(record) != _KEYS:
            problems.append(f"{where}: keys must be exactly {sorted(_KEYS)}, got {sorted(record)}")
            continue
        if record["task"] not in TASKS:
            problems.append(f"{where}: task {record['task']!r} is not one of {', '.join(TASKS)}")
        if record["id"] in ids:
            problems.append(f"{where}: id repeats record {ids[record['id']]}")
        ids.setdefault(record["id"], n)
        problems += [f"{where}: {p}" for p in _message_problems(record["messages"])]
        prompt = json.dumps(record["messages"][:-1], sort_keys=True)
        if prompt in prompts:
            problems.append(f"{where}: same prompt as record {prompts[prompt]}; each prompt needs one reply")
        prompts.setdefault(prompt, n)
    return problems


def _message_problems(messages) -> list[str]:
    if not isinstance(messages, list) or len(messages) < 2:
        return ["messages must be a list of at least a user and an assistant message"]
    problems = []
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    turns = roles[1:] if roles[0] == "system" else roles
    if not turns or any(r != ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(turns)) or len(turns) % 2:
        problems.append(f"roles must be [system,] user, assistant, ... ending with assistant; got {roles}")
    for m in messages:
        if not isinstance(m, dict) or set(m) != {"role", "content"}:
            problems.append("each message is exactly {role, content}")
        elif not isinstance(m["content"], str) or not m["content"].strip():
            problems.append(f"a {m['role']} message is empty")
    reply = messages[-1].get("content", "") if isinstance(messages[-1], dict) else ""
    if isinstance(reply, str) and len(reply.split()) > MAX_REPLY_WORDS:
        problems.append(f"the reply has {len(reply.split())} words; keep it under {MAX_REPLY_WORDS}")
    return problems


def read_jsonl(path: Path) -> list[dict]:
    records = []
    for line_no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{line_no}: not valid JSON ({exc.msg}).") from None
    return records


def load_split(split: str, folder: Path = DATA_DIR) -> list[dict]:
    """The records of one split, validated. Raises DatasetError saying how to rebuild."""
    path = Path(folder) / f"{split}.jsonl"
    if not path.is_file():
        raise DatasetError(f"{path} does not exist. Build it with `python scripts/build_sft_data.py`.")
    records = read_jsonl(path)
    problems = validate(records)
    problems += [f"{r['id']}: belongs in {split_of(r['id'])}.jsonl" for r in records
                 if "id" in r and split_of(r["id"]) != split]
    if problems:
        raise DatasetError(f"{path} is invalid:\n" + "\n".join(problems[:20]))
    return records


def data_fingerprint(folder: Path = DATA_DIR) -> str:
    """A short hash of both split files: the model card records exactly which data an adapter saw."""
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update((Path(folder) / f"{split}.jsonl").read_bytes())
    return digest.hexdigest()[:16]


def write_splits(records: list[dict], folder: Path = DATA_DIR) -> dict[str, int]:
    """Write train.jsonl and validation.jsonl (sorted by id, one JSON object per line); return the counts."""
    problems = validate(records)
    if problems:
        raise DatasetError("Refusing to write invalid data:\n" + "\n".join(problems[:20]))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in SPLITS:
        chosen = sorted((r for r in records if split_of(r["id"]) == split), key=lambda r: r["id"])
        lines = [json.dumps(r, ensure_ascii=False) for r in chosen]
        (folder / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[split] = len(chosen)
    return counts


# ---------------------------------------------------------------- encoding for training and evaluation
def encode(messages: list[dict], tokenizer, max_length: int | None = None, folds_system: bool | None = None):
    """``{"input_ids", "attention_mask", "labels"}`` for one conversation, or None if it exceeds ``max_length``.

    The prompt (everything before the last reply, with the template's generation prompt) is tokenized on its
    own, exactly as the app tokenizes it when it asks for a reply; the reply tokens follow. Prompt labels are
    -100, so only the reply, including the template's end-of-turn token, is learned.
    """
    if folds_system is None:
        folds_system = not accepts_system_role(tokenizer)
    messages = fold_system(messages) if folds_system else list(messages)
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise DatasetError("The chat template renders the prompt differently once a reply follows; "
                           "this model's template cannot be used for reply-only training.")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    reply_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    input_ids = prompt_ids + reply_ids
    if max_length is not None and len(input_ids) > max_length:
        return None
    return {
        "input_ids": input_ids,
        "attention_mask": [1] * len(input_ids),
        "labels": [IGNORE_INDEX] * len(prompt_ids) + reply_ids,
    }


def encode_all(records: list[dict], tokenizer, max_length: int) -> tuple[list[dict], int]:
    """Encoded records that fit ``max_length``, and how many were dropped for being longer."""
    folds = not accepts_system_role(tokenizer)
    encoded = [encode(r["messages"], tokenizer, max_length, folds) for r in records]
    kept = [e for e in encoded if e is not None]
    return kept, len(encoded) - len(kept)
