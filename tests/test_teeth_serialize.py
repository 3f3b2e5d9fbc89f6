"""Tests that kill the mutation survivors of benchmarks/mutation_run.py group serialize."""
