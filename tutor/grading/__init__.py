"""Grading a submission: the rubric check types (checks) and the grader that turns checks, ROUGE and a model
self-check into a ``Grade`` (grade)."""
from tutor.grading.grade import (
    CheckResult,
    EmptySubmission,
    Grade,
    Grader,
    feedback_markdown,
    fill_input,
    parse_judge_verdict,
)

__all__ = ["CheckResult", "EmptySubmission", "Grade", "Grader", "feedback_markdown", "fill_input",
           "parse_judge_verdict"]
