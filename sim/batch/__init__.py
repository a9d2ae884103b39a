"""Batches of runs: the plan, where runs go (executors), the results folder and its lock."""
