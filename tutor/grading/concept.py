"""Meaning-level matching for the ``concept`` check: does a text *say* something, whatever its spelling?

An instructor describes the idea with a few example sentences, and the misconceptions it must not express:

    expresses:
      - the [frequency] penalty [grows|increases|scales|proportional|count|how often|number of times]
    misconceptions:
      - the [frequency] penalty is [flat|fixed|once|same|constant|one-off]

A learner's text is cut into units (its sentences, and the clauses of each sentence) and each unit is compared
with each example. A unit matches an example when

1. every ``[a|b c|d]`` group of the example appears in the unit (one alternative each; a word matches by its
   start, so ``increas`` matches "increases" and "increasing"). Groups are what embeddings cannot see: who
   does what (``[frequency] ... [grows]`` does not match "the presence penalty grows"), and the few words
   that carry the meaning;
2. the unit and the example agree on negation ("does not grow" never matches "grows"), the words matched by
   the groups aside, so a group may itself hold a negation such as ``[no matter|regardless]``;
3. the two are about the same thing: the cosine of their WordLlama embeddings is at least ``min_similarity``.
   WordLlama averages word vectors, so it measures topic, not meaning: it lets a paraphrase through when the
   groups agree, and stops a unit that shares the key words but talks about something else.

Before matching, both sides are normalised: case, markdown (``**``, ``#``, backticks), hyphens and
underscores (``one-sentence`` = ``one sentence``), number words (``thirty`` = ``30``) and plural/possessive
endings. A misconception is looked for in clauses only, so "unlike the presence penalty, the frequency
penalty grows" (one sentence naming both) is not read as "the presence penalty grows".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_NUMBERS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_NUMBERS |= {"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "single": "1"}
_NEGATIONS = re.compile(r"\b(not|(?<!yes )no|never|none|nor|neither|without|cannot|nothing)\b|n't\b")  # "yes/no" is no negation
# "e.g." and "i.e." end no sentence: "it sees tokens (e.g. straw + berry), not letters" is one thought.
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!e\.g\.)(?<!i\.e\.)\s+|[\n;]+|(?<=[a-z0-9])[.!?]$")
# Clause boundaries: a comma, a colon or dash, or a word that starts a contrasting or following clause.
_CLAUSE = re.compile(r",|:|\s[-–—]\s|\((?=\w)|\)|\b(?:but|while|whereas|however|although|though|unlike|and then|"
                     r"so that|which|whilst)\b")
_WRAPPED = re.compile(r"(?<![.!?:\n])\n(?![ \t]*(?:[-*•#>]|\d+[.)]|step\b|\n))")
_GROUP = re.compile(r"\[([^\[\]]+)\]")
_WORD = re.compile(r"[a-z0-9%']+")
MAX_UNITS = 400  # ~ a 20,000-character submission's sentences and clauses; the rest is not read


def _stem(word: str) -> str:
    if word.endswith("'s"):
        word = word[:-2]
    if word in _NUMBERS:
        return _NUMBERS[word]
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def normalise(text: str) -> str:
    """Lower case, markdown and punctuation dropped, hyphens as spaces, number words as digits, plurals singular."""
    text = text.casefold().replace("’", "'").replace("‘", "'")
    text = re.sub(r"[-_/*`#>\"“”]+", " ", text)
    return " ".join(_stem(w) for w in _WORD.findall(text))


@dataclass(frozen=True)
class Example:
    template: str  # normalised, each group a placeholder "qgroup<n>q" for the words a unit matched it with
    groups: tuple[re.Pattern, ...]
    negated: bool

    def text(self, hits: list[str]) -> str:
        """The example as the unit says it: each group replaced by the words that matched it."""
        text = self.template
        for n, hit in enumerate(hits):
            text = text.replace(f"qgroup{n}q", hit)
        return text


@lru_cache(maxsize=1024)
def parse(example: str) -> Example:
    groups = []
    for body in _GROUP.findall(example):
        alternatives = [normalise(a) for a in body.split("|") if normalise(a)]
        # each word of an alternative matches a unit word by its start: "increas" matches "increasing"
        words = [r"\s+".join(re.escape(w) + r"[a-z0-9%']*" for w in a.split()) for a in alternatives]
        groups.append(re.compile(r"\b(?:" + "|".join(words) + r")"))
    counter = iter(range(len(groups)))
    template = normalise(_GROUP.sub(lambda m: f" qgroup{next(counter)}q ", example))
    outside = normalise(_GROUP.sub(" ", example))
    return Example(template, tuple(groups), bool(_NEGATIONS.search(outside)))


def check_syntax(example: str) -> str | None:
    """Why an example cannot be used, or None."""
    if example.count("[") != example.count("]") or re.search(r"\[[^\]]*\[", example):
        return f"unbalanced [ ] in {example!r}; write groups as [word|other word]"
    if any(not normalise(a) for body in _GROUP.findall(example) for a in body.split("|")):
        return f"an empty alternative in {example!r}; every alternative between | needs a word"
    if not normalise(_GROUP.sub(lambda m: m.group(1).split("|")[0], example)):
        return f"{example!r} has no words to compare with"
    return None


def units(text: str) -> tuple[list[str], list[str]]:
    """(sentences and clauses, clauses only) of ``text``, normalised; at most MAX_UNITS in all."""
    # A line break inside a sentence (hard-wrapped text) is a space; one before a list item or after a full
    # stop or colon ends the sentence.
    text = _WRAPPED.sub(" ", text.casefold())
    sentences = [s for s in _SENTENCE_END.split(text) if s and s.strip()]
    both, clauses = [], []
    for sentence in sentences:
        parts = [normalise(p) for p in _CLAUSE.split(sentence) if p and p.strip()]
        parts = [p for p in parts if p]
        whole = normalise(sentence)
        if whole:
            both.append(whole)
        for part in parts:
            clauses.append(part)
            if part != whole:
                both.append(part)
        if len(both) >= MAX_UNITS:
            break
    return both[:MAX_UNITS], clauses[:MAX_UNITS] or both[:MAX_UNITS]


def _embed(texts: list[str]):
    from tutor.readings.embeddings import wordllama_model  # the readings' loader: one WordLlama in the process

    return wordllama_model().embed(texts, norm=True)


def _groups_match(example: Example, unit: str) -> tuple[str, list[str]] | None:
    """(the unit with the words the groups matched blanked out, those words), or None when a group is missing."""
    hits = []
    for group in example.groups:
        hit = group.search(unit)
        if not hit:
            return None
        hits.append(hit.group(0))
        unit = unit[:hit.start()] + " " * (hit.end() - hit.start()) + unit[hit.end():]
    return unit, hits


def matches(examples: tuple[str, ...], candidates: list[str], min_similarity: float) -> dict[int, str]:
    """{index of each example that some unit matches: the first such unit} (see the module docstring)."""
    parsed = [parse(e) for e in examples]
    pairs = []
    for unit in candidates:
        for i, example in enumerate(parsed):
            matched = _groups_match(example, unit)
            if matched is not None and bool(_NEGATIONS.search(matched[0])) == example.negated:
                pairs.append((unit, i, example.text(matched[1])))
    if not pairs:
        return {}
    texts = list(dict.fromkeys([u for u, _, _ in pairs] + [t for _, _, t in pairs]))
    vectors = dict(zip(texts, _embed(texts)))
    found: dict[int, str] = {}
    for unit, i, said in pairs:
        if i not in found and float(vectors[unit] @ vectors[said]) >= min_similarity:
            found[i] = unit
    return found


def evaluate(text: str, expresses: tuple[str, ...], misconceptions: tuple[str, ...],
             min_similarity: float, at_least: int = 1) -> tuple[bool | None, str]:
    """(True, a unit that says it) | (False, the unit holding a misconception) | (None, what was found) when
    fewer than ``at_least`` different examples are expressed."""
    both, clauses = units(text)
    if misconceptions:
        wrong = matches(misconceptions, clauses, min_similarity)
        if wrong:
            return False, next(iter(wrong.values()))
    said = matches(expresses, both, min_similarity)
    if len(said) >= at_least:
        return True, " | ".join(list(said.values())[:at_least])
    return None, " | ".join(said.values())
