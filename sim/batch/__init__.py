"""Batches of runs: the plan, one run, where runs go (executors), the runner, the combined tables and
the summary, the results folder and its lock."""
