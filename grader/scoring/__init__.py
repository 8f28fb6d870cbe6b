"""Scoring: scorers of evidence (rubric, similarity, reference signals, trained model), one combiner."""

from grader.scoring.pipeline import MAX_ANSWER_CHARS, Grader, Item, grader_from_settings

__all__ = ["Grader", "Item", "MAX_ANSWER_CHARS", "grader_from_settings"]
