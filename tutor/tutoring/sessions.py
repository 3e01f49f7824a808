"""Sessions for the public API: a learner's place in the course and the recent conversation, kept on the
server between calls and found again by an unguessable token.

    store = SessionStore()
    token = store.create()                          # 32 URL-safe characters (192 random bits)
    with store.use(token) as entry:                 # SessionError with a clear message when unknown/expired
        entry.session.lesson_id, entry.history

Learners have no login, so a token is a bearer credential: whoever holds it continues that session. It is
never logged or shown in the UI, and the learner id saved with progress is derived from it one-way
(``learner_of``), so the progress database does not hold tokens either.

Bounds: at most ``CAPACITY`` sessions (least recently used dropped first) and ``TTL_S`` of inactivity each.
Each holds at most ``HISTORY_TURNS`` messages of at most ``MESSAGE_CHARS`` characters: 1,000 sessions x 16
messages x 2,000 characters is at most ~32 MB of text, the worst case for this store's memory.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

from tutor.errors import TutorError
from tutor.tutor import Session

CAPACITY = 1_000
TTL_S = 12 * 3600  # a study session with breaks; a learner back the next day starts a new session
HISTORY_TURNS, MESSAGE_CHARS = 16, 2_000  # 8 exchanges: enough for follow-ups, bounded for memory
TOKEN_BYTES = 24  # 192 bits: not guessable; token_urlsafe encodes 24 bytes as 32 characters
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")


class SessionError(TutorError):
    """An unknown, expired or malformed session id; the message says how to start a new session."""


@dataclass
class Entry:
    session: Session
    history: list[dict] = field(default_factory=list)
    used: float = 0.0

    def remember(self, message: str, reply: str) -> None:
        self.history += [{"role": "user", "content": message[:MESSAGE_CHARS]},
                         {"role": "assistant", "content": reply[:MESSAGE_CHARS]}]
        del self.history[:-HISTORY_TURNS]


def learner_of(token: str) -> str:
    """The learner id progress is saved under: one-way from the token, so the database holds no tokens."""
    return "api-" + hashlib.sha256(token.encode()).hexdigest()[:12]


class SessionStore:
    def __init__(self, capacity: int = CAPACITY, ttl_s: float = TTL_S, clock=time.monotonic):
        self.capacity, self.ttl_s, self.clock = capacity, ttl_s, clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def create(self) -> str:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        with self._lock:
            self._expire()
            self._entries[token] = Entry(Session(learner=learner_of(token)), used=self.clock())
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)  # the least recently used
        return token

    @contextmanager
    def use(self, token):
        """The entry for ``token``, marked as just used. Concurrent calls with one token each get the entry;
        the last to finish decides what is kept (a learner types one message at a time)."""
        token = check_token(token)
        with self._lock:
            self._expire()
            entry = self._entries.get(token)
            if entry is None:
                raise SessionError(
                    "This session does not exist or has ended: sessions end after "
                    f"{self.ttl_s / 3600:g} hours without a message, when the server restarts, or when more than "
                    f"{self.capacity:,} are open. Call again with an empty session_id (or /new_session) to start "
                    "a new one.")
            entry.used = self.clock()
            self._entries.move_to_end(token)
        yield entry

    def _expire(self) -> None:
        cutoff = self.clock() - self.ttl_s
        while self._entries:
            token, entry = next(iter(self._entries.items()))
            if entry.used >= cutoff:
                break
            del self._entries[token]


def check_token(token) -> str:
    """The token if it has the shape ``create`` gives, else SessionError saying what a session id looks like."""
    if not isinstance(token, str) or not _TOKEN.match(token.strip()[:64]):
        shown = type(token).__name__ if not isinstance(token, str) else f"{len(token):,} characters"
        raise SessionError(f"That session_id is not valid ({shown}): a session id is the 32-character token that "
                           "/new_session (or a chat call with an empty session_id) returned. Leave it empty to "
                           "start a new session.")
    return token.strip()
