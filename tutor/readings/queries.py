"""From what a learner types to what the readings search sees: chat shorthand spelled out, and informal
phrasing expanded with the course's own terms.

Learners write "why do LLMs make stuff up" or "top p vs top k whats the diff"; the readings say
"hallucination" and "difference". Neither the averaged word vectors nor BM25 bridge "make stuff up" to
"hallucinate", so a query gets the course terms its phrasing stands for appended (the original words stay).
The lists below were written from how learners phrase questions and checked on the ``dev`` half of
tests/data/learner_questions.jsonl; the ``test`` half was never used to choose them.
"""
from __future__ import annotations

import re

# Chat shorthand and common misspellings -> the word the readings use (whole tokens, case-insensitive).
SHORTHAND = {
    "wat": "what", "wht": "what", "whats": "what is", "r": "are", "u": "you", "ur": "your", "pls": "please",
    "plz": "please", "diff": "difference", "temp": "temperature", "params": "parameters", "param": "parameter",
    "cot": "chain-of-thought", "rag": "retrieval-augmented",
    "finetune": "fine-tune", "finetuned": "fine-tuned", "finetuning": "fine-tuning", "ft": "fine-tuning",
    "db": "database", "ram": "memory", "vram": "GPU memory", "gigs": "GB", "tho": "though", "bc": "because",
    "cuz": "because", "coz": "because", "w/": "with", "w/o": "without", "eg": "example", "ex": "example",
    "maths": "math", "prolly": "probably", "smth": "something", "sth": "something", "ppl": "people",
}
# Informal phrasing -> the course terms it stands for. Each pattern is matched on the lower-cased query.
EXPANSIONS = [
    (r"\bllms?\b|\bai\b|\b(chat)?bots?\b|\bchatgpt\b|\bgpt-?4\b|\bclaude\b|\bgemini\b", "language model"),
    (r"\bmak\w* (stuff|things|it|shit|facts) up\b|\bmade[- ]up\b|\binvent\w*|\bfabricat\w*|\blie[sd]?\b|\blying\b"
     r"|\bconfabulat\w*|\bbs\b|\bnonsense\b|\bwrong facts?\b|\bfake (facts?|citations?|sources?|papers?)\b",
     "hallucinate hallucinations"),
    (r"\bmath\b|\barithmetic\b|\bcalculat\w*", "exact computation arithmetic calculator tool"),
    (r"#{3,}", "delimiter step delimiters"),
    (r"`{3}|\bback ?ticks?\b|\bfence\w*|\bwrap\w* (the )?(text|input)\b", "delimiters"),
    (r"\b(long|wordy|verbose) prompts?\b|\bprompts? (is|are) (too )?long\b", "clear and specific longer prompt"),
    (r"\b(\d+|one|two|few|several|many) shots?\b|\bshots?\b|\bexamples? in (the|my|a) prompt\b",
     "few-shot in-context examples"),
    (r"\brandom\w*|\bcreativ\w*|\bboring\b|\bsame (answer|output|thing)\b|\bdeterministic\b|\bidentical\b",
     "temperature sampling greedy"),
    (r"\brepeat\w*|\brepetit\w*|\bover and over\b|\bsame sentence\b", "repetition penalty greedy"),
    (r"\bcut off\b|\bcuts? off\b|\bstops? (mid|in the middle)\b|\bunfinished\b", "max new tokens stop sequence"),
    (r"\bcheat\w*|\bcontaminat\w*|\bleak\w*", "benchmarks leak training data"),
    (r"\bjailbreak\w*|\bhijack\w*|\bignore (all |the )?(previous|prior) instructions\b|\binjection\b",
     "prompt injection delimiters"),
    (r"\bvector (db|store|database)\b|\bsemantic search\b", "embedding vector database retrieval"),
    (r"\bfunction call\w*|\btool calls?\b|\bapi calls?\b", "tool use calling"),
    (r"\bthink\w* (out loud|step by step)\b|\bshow (its|their|the) work\w*\b|\bworking out\b|\bwrites? out its working\b",
     "chain-of-thought reasoning steps"),
    (r"\bmemori[sz]\w*|\bparrot\w*", "overfitting memorising"),
    (r"\b\d+ ?gb\b|\bfits? (on|in)\b|\bgpu\b", "memory GB bytes per parameter"),
    (r"\bdatasets?\b", "training data"),
    (r"\bdoesn'?t know\b|\bdon'?t know\b|\badmit\w*|\bunsure\b|\bnot sure\b", "hallucinate decline say I do not know"),
    (r"\bnot (in|from) (the|my) (docs|documents|sources)\b|\bnothing relevant\b", "threshold not covered refuse"),
]
_EXPANSIONS = [(re.compile(pattern), terms) for pattern, terms in EXPANSIONS]
# A technical term: 3+ characters with a letter and a digit, an inner capital or two capitals ("NF4", "QLoRA",
# "LangChain", "RLHF", "GPT-3"). Plain numbers ("2023") and two-letter words ("AI") are not.
_TERM = re.compile(r"\b(?=[\w-]*[A-Za-z])(?=\w*(?:\d|[a-z][A-Z]|[A-Z]{2}))[\w-]{3,}\b")
_TOKEN = re.compile(r"[\w/#`']+|[^\w\s]")


def normalize(query: str) -> str:
    """Spell out shorthand ("whats the diff" -> "what is the difference"); other text is kept as typed."""
    return " ".join(SHORTHAND.get(t.lower(), t) for t in query.split())


def expand(query: str) -> str:
    """The query, normalized, with the course terms its informal phrasing stands for appended."""
    text = normalize(query)
    lowered = text.lower()
    extra = [terms for pattern, terms in _EXPANSIONS if pattern.search(lowered)]
    return " ".join([text, *extra])


def technical_terms(text: str) -> set[str]:
    """The technical terms in ``text``, lower-cased: what a short question may name ("whats qlora")."""
    return {t.lower() for t in _TERM.findall(text)}
