"""Accuracy: reading graded answers, measuring agreement with human graders, fitting calibrations and models."""
