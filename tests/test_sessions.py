"""The API's session store: unguessable tokens, LRU with a cap, idle expiry, bounded history, clear errors."""
from __future__ import annotations

import pytest

from tutor.tutoring.sessions import HISTORY_TURNS, MESSAGE_CHARS, SessionError, SessionStore, check_token, learner_of


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_session_keeps_its_place_between_calls():
    store = SessionStore()
    token = store.create()
    assert len(token) == 32 and token != store.create()
    with store.use(token) as entry:
        entry.session.lesson_id = "delimiters"
        entry.remember("hi", "Hi!")
    with store.use(token) as entry:
        assert entry.session.lesson_id == "delimiters" and entry.history[-1]["content"] == "Hi!"
        assert entry.session.learner == learner_of(token) and token not in entry.session.learner


def test_idle_sessions_expire_and_the_message_says_how_to_start_again():
    clock = Clock()
    store = SessionStore(ttl_s=60, clock=clock)
    token = store.create()
    clock.now += 59
    with store.use(token):
        pass
    clock.now += 61
    with pytest.raises(SessionError, match="does not exist or has ended.*empty session_id"):
        with store.use(token):
            pass
    assert len(store) == 0


def test_the_least_recently_used_session_goes_first_when_full():
    store = SessionStore(capacity=3)
    a, b, c = store.create(), store.create(), store.create()
    with store.use(a):  # a is now the most recently used
        pass
    d = store.create()
    assert len(store) == 3
    with pytest.raises(SessionError):
        with store.use(b):
            pass
    for token in (a, c, d):
        with store.use(token):
            pass


def test_history_is_bounded():
    store = SessionStore()
    token = store.create()
    with store.use(token) as entry:
        for n in range(50):
            entry.remember(f"question {n} " + "x" * 5_000, "answer")
        assert len(entry.history) == HISTORY_TURNS
        assert entry.history[0]["content"].startswith("question 42")
        assert max(len(m["content"]) for m in entry.history) <= MESSAGE_CHARS


@pytest.mark.parametrize("bad", ["", "nope", "x" * 1_000_000, "A" * 31, "A" * 33, "../../etc/passwd" + "A" * 16,
                                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", None, 42, ["A" * 32], {"id": "A" * 32}, float("nan")])
def test_malformed_ids_are_refused_with_what_a_session_id_looks_like(bad):
    with pytest.raises(SessionError, match="32-character token"):
        check_token(bad)


def test_an_unknown_but_well_formed_id_is_refused():
    with pytest.raises(SessionError, match="does not exist"):
        with SessionStore().use("A" * 32):
            pass
