"""Benchmarks of amzigo_lab (run with `python -m bench` or `make bench`)."""
