"""Answers composed from the readings' own sentences: correct by construction, whatever the model's size.

    text, cited = compose("What is chain-of-thought prompting?", passages)

1. Split each retrieved passage into sentences (list items and bold lead-ins kept readable); drop fragments
   that the chunk overlap cut in half and lines that only introduce a list.
2. Score every sentence against the question: 0.5 x cosine of the WordLlama vectors + 0.35 x the share of
   the question's word stems it contains + 0.15 x a prior for its passage's rank, plus a bonus for a sentence
   that defines the term asked about ("X is ...") and, when the learner asks for an example, for sentences
   that give one.
3. Keep the best 2 to 4 (up to 6 for "how/why/compare" questions and requests for more), skipping
   near-duplicates; stop at ~900 characters.
4. Order them so they read as a paragraph: passages in the order of their best sentence, sentences in the
   order the reading has them. Each run of sentences from one passage ends with its citation ``[n]``.

The weights were set by reading the answers to the dev half of tests/data/course_answers.jsonl; the test
half is reported in the README.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from nltk.stem import PorterStemmer

from tutor.readings.embeddings import embed
from tutor.readings.queries import expand

COSINE, OVERLAP, PRIOR, HEADING = 0.5, 0.35, 0.15, 0.15
DEFINITION_BONUS, EXAMPLE_BONUS = 0.15, 0.2
# "It", "This", "That"... open a sentence that leans on the one before it, which the answer may not include.
DANGLING_PENALTY = 0.1
_DANGLING = re.compile(r"^(it|this|that|these|those|they|such|both|so|then|even|also|but)\b", re.I)
# A sentence this similar (cosine) to one already chosen adds nothing new; 0.9 on WordLlama vectors is a
# near-paraphrase ("Top-k keeps the k most probable tokens" vs the Key points line repeating it).
DUPLICATE_COSINE = 0.9
MIN_SENTENCES, MAX_SENTENCES, MAX_BROAD = 2, 4, 6
MAX_CHARS = 900  # ~150 words: a short answer that still fits several sentences
# A sentence scoring under this share of the best one is off the point; it is used only to reach two sentences,
# and only from the reading the best sentence comes from.
KEEP_RATIO = 0.6
_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_BOLD_LEAD = re.compile(r"^\*\*([^*]{1,80}?)[.:]?\*\*[.:]\s+(.+)$|^\*\*([^*]{1,80}?)[.:]\*\*\s+(.+)$")
_BREAK = re.compile(r"[.!?][\"')\]*`]*\s+")
_ABBREVIATION = re.compile(r"(?:\b(?:e\.g|i\.e|etc|vs|cf|approx|incl|Dr|Mr|Ms|No)|\b[A-Z])\.$")
_STARTS_SENTENCE = re.compile(r"^[\"'(*`\[A-Z0-9]")
_ENDS_SENTENCE = re.compile(r"[.!?)\"'`*]$")
_WORD = re.compile(r"[a-z0-9]+")  # "chain-of-thought" is three words, as a learner may type them
_STOP = frozenset("a an and are as at be by can do does for from how i in is it its me my of on or should that the "
                  "this to what when which why with you your about give me please explain tell more some".split())
_EXAMPLE = re.compile(r"\b(for example|for instance|such as|e\.g\.|example|suppose|say)\b|[\"“]", re.I)
_ASKS_EXAMPLE = re.compile(r"\b(example|examples|instance|show me|demonstrat\w*|sample)\b", re.I)
_BROAD = re.compile(r"^\s*(how|why|explain|compare|describe)\b|\b(difference|differ|versus|vs\.?|compare|more|"
                    r"tell me more|elaborate|in detail)\b", re.I)
_DEFINE = re.compile(r"^\s*(?:what(?:'s| is| are| does)|whats|define|meaning of)\s+(?:an? |the )?(.+?)(?:\s+mean)?\W*$",
                     re.I)
_STEM = PorterStemmer().stem


@dataclass(frozen=True)
class Sentence:
    text: str
    passage: int  # index into the passages list
    position: int  # order within its passage


def _stems(text: str) -> set[str]:
    return {_STEM(w) for w in _WORD.findall(text.lower()) if w not in _STOP}


def _split_item(item: str) -> list[str]:
    """Sentences of one paragraph or list item, not breaking after "e.g." and the like."""
    pieces, start = [], 0
    for match in _BREAK.finditer(item):
        end = match.end()
        head = item[start:match.start() + 1].rstrip()
        inside_quote = item[start:match.end()].count('"') % 2 == 1  # 'Classify: "I loved it!" Sentiment:'
        if _ABBREVIATION.search(head) or inside_quote or not _STARTS_SENTENCE.match(item[end:end + 1] or "A"):
            continue
        pieces.append(item[start:end].strip())
        start = end
    pieces.append(item[start:].strip())
    return [p for p in pieces if p]


def split_sentences(text: str) -> list[str]:
    """The readable sentences of a passage, in order. Markdown list markers are dropped; a bold lead-in
    ("**Memory:** only a small fraction...") stays attached to its sentence; headings and table rows go."""
    items: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        for line in block.splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "|")):
                continue
            if _MARKER.match(line) or not items or items[-1] == "":
                items.append(line)
            else:
                items[-1] += " " + line
        items.append("")  # a paragraph break: the next line starts a new item
    out = []
    for item in filter(None, items):
        item = _MARKER.sub("", item)
        lead = _BOLD_LEAD.match(item)
        if lead:
            label, rest = (lead.group(1), lead.group(2)) if lead.group(1) else (lead.group(3), lead.group(4))
            first, *others = _split_item(rest)
            out += [f"**{label}:** {first}", *others]
        else:
            out += _split_item(item)
    return out


def asks_example(text: str) -> bool:
    return bool(_ASKS_EXAMPLE.search(text))


def _plain_words(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def candidates(passages: list, avoid: str = "") -> list[Sentence]:
    """Every usable sentence: whole (not cut by the chunk overlap), at least 4 words, not a list intro, and not
    already in ``avoid`` (the previous answer, for a follow-up)."""
    shown = _plain_words(avoid)
    found = []
    for n, passage in enumerate(passages):
        pieces = split_sentences(passage.text)
        for i, text in enumerate(pieces):
            cut_start = i == 0 and not _STARTS_SENTENCE.match(text)
            cut_end = not _ENDS_SENTENCE.search(text)  # cut by the chunk's end, or a list item ending in ","
            if cut_start or cut_end or text.endswith(":") or len(text.split()) < 4:
                continue
            if shown and _plain_words(text) in shown:
                continue
            found.append(Sentence(text, n, i))
    return found


def _defined_term(question: str) -> set[str]:
    match = _DEFINE.match(question.strip())
    return _stems(match.group(1)) if match else set()


def _defines(sentence: str, term: set[str]) -> bool:
    """Does the sentence open with the term asked about and say what it is ("A hallucination is ...",
    "**Few-shot inference** includes several examples")? Half the term's stems are enough: learners say
    "few-shot prompting" where the reading says "few-shot inference"."""
    words = [w for w in _WORD.findall(sentence.lower()) if w not in ("a", "an", "the")]
    opening = _stems(" ".join(words[:len(term) + 2]))
    return bool(term) and 2 * len(term & opening) >= len(term) and bool(
        re.search(r"\b(is|are|means|refers|stands|called|includes|keeps|asks|uses|gives)\b", sentence))


def _weighted_overlap(asked: set[str], texts: list[set[str]]) -> np.ndarray:
    """Share of the question's stems each text holds, each stem weighted by its rarity among the texts: in a
    pool of LoRA sentences "lora" tells them apart less than "rank" does."""
    if not asked:
        return np.zeros(len(texts))
    n = len(texts)
    idf = {w: np.log(1 + n / (1 + sum(w in t for t in texts))) for w in asked}
    total = sum(idf.values())
    return np.array([sum(idf[w] for w in asked & t) / total for t in texts])


def score(query: str, sentences: list[Sentence], passages: list,
          wants_example: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(score per sentence, the sentences' vectors)."""
    vectors = embed([s.text for s in sentences])
    cosine = vectors @ embed([query])[0]
    asked = _stems(query)
    overlap = _weighted_overlap(asked, [_stems(s.text) for s in sentences])
    # The heading's last part names the section's topic ("Why models hallucinate"): a question that matches it
    # is answered by that section rather than by the reading's general introduction.
    headings = [_stems(p.heading.split(" > ")[-1]) if len(p.heading.split(" > ")) > 1 else set() for p in passages]
    heading = np.array([len(asked & headings[s.passage]) / len(asked) if asked else 0.0 for s in sentences])
    prior = np.array([1.0 - 0.1 * s.passage for s in sentences])
    term = _defined_term(query)
    bonus = np.array([DEFINITION_BONUS * _defines(s.text, term)
                      + EXAMPLE_BONUS * (wants_example and bool(_EXAMPLE.search(s.text))) for s in sentences])
    return COSINE * cosine + OVERLAP * overlap + HEADING * heading + PRIOR * prior + bonus, vectors


def select(query: str, passages: list, wants_example: bool | None = None, broad: bool | None = None,
           avoid: str = "", limit: int | None = None) -> list[Sentence]:
    """The sentences of the answer, in reading order; ``limit`` overrides how many at most."""
    pool = candidates(passages, avoid)
    if not pool:
        return []
    wants_example = bool(_ASKS_EXAMPLE.search(query)) if wants_example is None else wants_example
    broad = bool(_BROAD.search(query)) if broad is None else broad
    limit = limit or (MAX_BROAD if broad else MAX_SENTENCES)
    scores, vectors = score(expand(query), pool, passages, wants_example)  # "make stuff up" means "hallucinate"
    chosen: list[int] = []
    remaining = set(range(len(pool)))
    while remaining and len(chosen) < limit:
        picked = {(pool[j].passage, pool[j].position) for j in chosen}

        def effective(i: int) -> float:  # a sentence leaning on the one before it is fine right after it
            leans = _DANGLING.match(pool[i].text) and (pool[i].passage, pool[i].position - 1) not in picked
            return float(scores[i]) - DANGLING_PENALTY * bool(leans)

        best = max(remaining, key=effective)
        remaining.discard(best)
        weak = chosen and effective(best) < KEEP_RATIO * scores[chosen[0]]
        if weak and len(chosen) >= MIN_SENTENCES:
            break
        if weak and passages[pool[best].passage].source != passages[pool[chosen[0]].passage].source:
            continue  # a weak sentence may fill the answer up to two only from the same reading as the best one
        if sum(len(pool[j].text) for j in chosen) + len(pool[best].text) > MAX_CHARS and chosen:
            break
        if any(float(vectors[best] @ vectors[j]) > DUPLICATE_COSINE for j in chosen):
            continue
        chosen.append(best)
    chosen = _with_antecedents(chosen, pool, limit)
    group_rank = {}
    for i in chosen:  # passages in the order of their best chosen sentence
        group_rank.setdefault(pool[i].passage, len(group_rank))
    return sorted((pool[i] for i in chosen), key=lambda s: (group_rank[s.passage], s.position))


def _with_antecedents(chosen: list[int], pool: list[Sentence], limit: int) -> list[int]:
    """A chosen sentence that leans on the one before it ("This is catastrophic forgetting.") brings that one
    along, so the answer says what "this" is; without room for it (``limit``, MAX_CHARS), it goes."""
    where = {(s.passage, s.position): i for i, s in enumerate(pool)}
    out = list(chosen)
    for i in chosen:
        before = where.get((pool[i].passage, pool[i].position - 1))
        if not _DANGLING.match(pool[i].text) or before is None or before in out:
            continue
        room = len(out) < limit and sum(len(pool[j].text) for j in out) + len(pool[before].text) <= MAX_CHARS
        if room:
            out.insert(out.index(i), before)
        elif len(out) > MIN_SENTENCES:
            out.remove(i)
    return out


def cite(sentences: list[Sentence], numbers: dict[int, int]) -> str:
    """One paragraph; each run of sentences from one passage ends with that passage's number."""
    out = []
    for i, s in enumerate(sentences):
        text = s.text
        last_of_run = i + 1 == len(sentences) or sentences[i + 1].passage != s.passage
        if last_of_run:
            marker = f" [{numbers[s.passage]}]"
            text = text[:-1] + marker + "." if text.endswith(".") else text + marker
        out.append(text)
    return " ".join(out)


def compose(query: str, passages: list, **options) -> tuple[str, list]:
    """(answer text with inline citations, the passages it cites, numbered in citation order)."""
    chosen = select(query, passages, **options)
    order = list(dict.fromkeys(s.passage for s in chosen))
    numbers = {p: n for n, p in enumerate(order, 1)}
    return cite(chosen, numbers), [passages[p] for p in order]
