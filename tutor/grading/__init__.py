"""Grading a submission: the check types (checks, concept), the self-check and token budgets (judge), what a
model is trusted with (calibrate), and the grader that turns them into a ``Grade`` (grade)."""
from tutor.grading.calibrate import ModelCalibration
from tutor.grading.grade import CheckResult, EmptySubmission, Grade, Grader, feedback_markdown, fill_input
from tutor.grading.judge import parse_judge_verdict

__all__ = ["CheckResult", "EmptySubmission", "Grade", "Grader", "ModelCalibration", "feedback_markdown", "fill_input",
           "parse_judge_verdict"]
