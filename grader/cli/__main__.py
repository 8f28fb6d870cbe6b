"""`python -m grader.cli`: the same entry point as the `grader` script."""

from grader.cli import main

main()
