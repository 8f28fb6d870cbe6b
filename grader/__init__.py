"""grader: grades free-text answers to technical interview questions."""

__version__ = "0.1.0"
