"""Write tutor/tutoring/intent_examples.jsonl, what the message classifier learns from, from the labelled learner
messages in tests/data/learner_messages.jsonl, leaving out the held-out split it is measured on.

    python scripts/intent_examples.py   # after adding or relabelling messages; tests/test_moves.py checks it
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tutor.lessons import load_lessons  # noqa: E402
from tutor.tutoring.moves import EXAMPLES, HELD_OUT  # noqa: E402


def examples() -> list[dict]:
    lessons = load_lessons(ROOT / "lessons")
    rows = [json.loads(line) for line in (ROOT / "tests" / "data" / "learner_messages.jsonl").open() if line.strip()]
    out = []
    for row in rows:
        if row.get("split") in HELD_OUT:
            continue
        kind = lessons.get(row["lesson"]).exercise(row["exercise"]).kind if row.get("lesson") else None
        out.append({"message": row["message"], "intent": row["intent"], "kind": kind,
                    **({"previous": row["previous"]} if row.get("previous") else {})})
    return out


if __name__ == "__main__":
    rows = examples()
    EXAMPLES.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"wrote {len(rows)} examples to {EXAMPLES.relative_to(ROOT)}")
