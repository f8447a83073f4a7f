"""Benchmarks and evaluations (run as scripts: .venv/bin/python bench/<name>.py)."""
