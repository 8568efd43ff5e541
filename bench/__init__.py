"""Benchmarks of Entra Sync Monitor against a naive baseline, on the Graph emulator and Azurite.

`python -m bench --help`; results in docs/benchmarks.md.
"""
