"""Which checks each attempt failed (a JSON list of check names), for the instructor's dashboard and the
export; and indexes for its filters (time range, one lesson). Attempts made before this version failed
no recorded check: '[]'."""

SQLITE = [
    "ALTER TABLE attempts ADD COLUMN failed_checks TEXT NOT NULL DEFAULT '[]'",
    "CREATE INDEX attempts_by_time ON attempts (at)",
    "CREATE INDEX attempts_by_exercise ON attempts (lesson, exercise, at)",
]

POSTGRES = SQLITE  # the same statements mean the same in both
