"""Scoring: rubric terms (keywords), embedding similarity (semantic) and their combination."""

from grader.scoring.engine import Grader, Item, grader_from_settings

__all__ = ["Grader", "Item", "grader_from_settings"]
