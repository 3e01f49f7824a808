"""The short things a tutor says around the moves: redirects, offers, the line that ties an answer back to the
exercise, the next step that ends every reply, and the follow-up a question refers to."""
from __future__ import annotations

import re

NO_EXERCISE = ("There is no exercise in progress, so there is nothing to hint at yet. **Next:** pick a lesson "
               "with `/lessons` and `/lesson <id>`, or ask me a question about prompting.")
GUARDED = ("\n\n_(I left part of this out because it would give away your exercise's solution: work that part "
           "out in your own words.)_")
_THANKS = re.compile(r"\b(thanks?|thx|ty|tysm|cheers|that help)", re.I)
_ACK = re.compile(r"^\W*(ok(ay)?|k+|cool|nice|great|got it|i see|makes sense|alright|sure|perfect|understood|"
                  r"awesome|yes|yep|lol|haha\w*)\b", re.I)
_BYE = re.compile(r"\b(bye|goodbye|see (you|ya)|cya|good night)\b", re.I)
_FIRST_SENTENCE = re.compile(r"^(.+?[.!?])(\s|$)", re.S)
# A follow-up refers to the last topic: at most this many words of it are kept, so a chain of "why?"s does not
# grow the search query without bound (40 words ~ two questions).
TOPIC_WORDS = 40


def first_sentence(text: str) -> str:
    text = " ".join(text.split())
    match = _FIRST_SENTENCE.match(text)
    return match.group(1) if match else text


def _thing(exercise) -> str:
    return "prompt" if exercise.kind == "prompt" else "answer"


def where(lesson, exercise) -> str:
    return f"You are on **{lesson.title}**, exercise `{exercise.id}`: {first_sentence(exercise.task)}"


def next_step(lesson, exercise) -> str:
    if exercise is not None:
        return f"**Next:** write your {_thing(exercise)} and `/submit` it, or ask for a `/hint`."
    if lesson is not None:
        return "**Next:** type `/next` to go on, or ask me another question."
    return ("**Next:** type `/lessons` to pick a lesson, or ask me about prompting, for example "
            "*what are delimiters for?*")


def redirect(intent, lesson, exercise, previous_question: str = "") -> str:
    """One friendly line for a greeting, thanks or an off-topic message, then back to the lesson.
    ``previous_question``: the learner's last question answered from the readings, if any. A short follow-up
    to it can be misread as off-topic (about 1 in 5 do on new phrasings), so the reply says how to ask again."""
    if intent.name == "off_topic":
        opening = ("That is outside this course, so I will leave it there: I can only help with prompting and how "
                   "language models work.")
        if previous_question:
            shown = re.sub(r"[*_`\[\]<>#|\\]", "", " ".join(previous_question.split()))  # shown as text, not markup
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            opening += (f" If you meant it about your last question (*{shown}*), ask again with that topic in it "
                        "and I will answer from the readings.")
    elif _THANKS.search(intent.rest):
        opening = "You're welcome!"
    elif _BYE.search(intent.rest):
        opening = "Bye for now: your progress is saved, so you can pick up where you left off."
    elif _ACK.match(intent.rest):
        opening = "Good."
    else:
        opening = "Hi! I'm Ada, and I teach prompt engineering."
    if exercise is not None:
        return f"{opening} {where(lesson, exercise)}\n\n{next_step(lesson, exercise)}"
    return f"{opening}\n\n{next_step(lesson, exercise)}"


def offer_to_grade(exercise) -> str:
    thing = _thing(exercise)
    return (f"That looks like your {thing} for `{exercise.id}`. Shall I grade it? **Next:** send it again with "
            f"`/submit` in front (or paste it into *Your submission* and press **Submit for grading**). You can "
            f"also write \"is this right?\" before your {thing}, and I will grade it straight away.")


def last_question(history: list[dict]) -> str:
    """The learner's last question in ``history`` (commands are not questions)."""
    for m in reversed(history):
        content = str(m.get("content") or "").strip()
        if m.get("role") == "user" and content and not content.startswith("/"):
            return content
    return ""


def recent_replies(history: list[dict], replies: int = 3) -> str:
    """The tutor's last few replies, joined: what a follow-up answer should not repeat."""
    said = [str(m.get("content") or "") for m in history if m.get("role") == "assistant"]
    return "\n".join(said[-replies:])


def plain(history: list[dict]) -> list[dict]:
    """The conversation as the answering model should read it: each reply without its sources block."""
    return [{"role": m["role"], "content": str(m.get("content") or "").split("\n\n**Support:**")[0]}
            for m in history if m.get("role") in ("user", "assistant")]


def resolve(message: str, history: list[dict], session, followup: bool) -> str:
    """The search query for a message: a follow-up ("example please") is about the last topic, taken from the
    session (which the API keeps between calls) or else from the conversation."""
    if not followup:
        return message
    topic = session.topic or last_question(history)
    return " ".join(f"{topic} {message}".split()[-TOPIC_WORDS:]) if topic else message


def tie_back(lesson, exercise, session, related: bool) -> str:
    """One line from the answer back to the exercise: the attempt's open requirement, else the lesson's tactic
    when the answer is about this lesson's readings, else a pointer back to the task."""
    if session.last_failed:
        return f"**For your exercise:** your last attempt still needs this: {session.last_failed[0].detail.strip()}"
    if related:
        return f"**For your exercise** (`{exercise.id}`): {first_sentence(lesson.tactic)}"
    return f"**Back to your exercise:** {where(lesson, exercise)}"


def after_answer(result, lesson, exercise, session, related: bool, practise) -> str:
    """What follows an answer: the tie-back during an exercise, and the next step.

    ``related``: the answer cites one of the lesson's readings; ``practise``: the lesson (id, title) that
    practises the answer's main reading, or None."""
    if not result.sources:
        if exercise is not None:
            return f"\n\n**Back to your exercise:** {where(lesson, exercise)}\n\n{next_step(lesson, exercise)}"
        return "\n\n" + next_step(lesson, exercise)
    if exercise is not None:
        return f"\n\n{tie_back(lesson, exercise, session, related)}\n\n{next_step(lesson, exercise)}"
    if practise is not None and lesson is None:
        return f"\n\n**Next:** to practise this, try `/lesson {practise[0]}` (*{practise[1]}*), or ask a follow-up."
    return "\n\n" + next_step(lesson, exercise)
