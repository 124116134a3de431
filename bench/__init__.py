"""Benchmarks: ``python -m bench.seed_workflow`` and ``python -m bench.pass_chain`` (see README.md)."""
