"""ROUGE as a Hugging Face `evaluate` metric module kept in this repository.

`evaluate.load("rouge")` fetches its script from the Hub, which fails offline; `evaluate.load(<this folder>)`
loads this file instead. It wraps Google's `rouge_score`, with two choices made explicit:
- a Unicode-aware tokenizer (rouge_score's default drops everything outside [a-z0-9]);
- several references per prediction are allowed, and the best-matching one counts (`score_multi`).
"""
import re

import datasets
import evaluate
from nltk.stem.porter import PorterStemmer
from rouge_score import rouge_scorer, scoring

_WORD = re.compile(r"\w+", re.UNICODE)


class _Tokenizer:
    """Lower-cased Unicode words, Porter-stemmed when asked (rouge_score ignores use_stemmer once a tokenizer is
    given, so stemming lives here)."""

    def __init__(self, use_stemmer: bool):
        self.stem = PorterStemmer().stem if use_stemmer else None

    def tokenize(self, text):
        words = _WORD.findall(text.lower())
        return [self.stem(w) if self.stem and len(w) > 3 else w for w in words]


class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="ROUGE-1, ROUGE-2 and ROUGE-L F-measures (rouge_score), Unicode tokenization.",
            citation="Lin, C.-Y. (2004). ROUGE: A Package for Automatic Evaluation of Summaries.",
            inputs_description="predictions: list of str; references: list of str or list of list of str.",
            features=[
                datasets.Features({"predictions": datasets.Value("string"),
                                   "references": datasets.Sequence(datasets.Value("string"))}),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
        )

    def _compute(self, predictions, references, rouge_types=None, use_aggregator=True, use_stemmer=False):
        rouge_types = rouge_types or ["rouge1", "rouge2", "rougeL"]
        scorer = rouge_scorer.RougeScorer(rouge_types, tokenizer=_Tokenizer(use_stemmer))
        scores = []
        for reference, prediction in zip(references, predictions):
            if isinstance(reference, (list, tuple)):
                scores.append(scorer.score_multi(list(reference), prediction))
            else:
                scores.append(scorer.score(reference, prediction))
        if use_aggregator:
            aggregator = scoring.BootstrapAggregator()
            for score in scores:
                aggregator.add_scores(score)
            result = aggregator.aggregate()
            return {key: float(value.mid.fmeasure) for key, value in result.items()}
        return {key: [float(s[key].fmeasure) for s in scores] for key in rouge_types}
