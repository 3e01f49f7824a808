"""ROUGE through Hugging Face `evaluate`, loaded from the metric module in tutor/metrics/rouge (offline)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

METRIC_DIR = Path(__file__).resolve().parent / "metrics" / "rouge"


@lru_cache(maxsize=1)
def metric():
    import evaluate

    return evaluate.load(str(METRIC_DIR))


def rouge(prediction: str, references: list[str]) -> dict[str, float]:
    """ROUGE-1/2/L F-measures of one prediction against its best-matching reference, rounded to 3 places."""
    if not prediction.strip():
        return {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    scores = metric().compute(predictions=[prediction], references=[list(references)], use_aggregator=False,
                              use_stemmer=True)
    return {key: round(values[0], 3) for key, values in scores.items()}


def rouge_many(predictions: list[str], references: list[list[str]]) -> dict[str, float]:
    """Corpus-level ROUGE-1/2/L F-measures (mean over examples)."""
    scores = metric().compute(predictions=predictions, references=references, use_aggregator=False, use_stemmer=True)
    return {key: round(sum(values) / max(1, len(values)), 4) for key, values in scores.items()}
