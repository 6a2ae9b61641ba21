"""Benchmarks: each bench_*.py measures a part side by side with the baseline it must approach."""
