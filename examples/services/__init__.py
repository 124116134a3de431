"""Example HTTP services used by the demo, the acceptance tests and the benchmarks."""
