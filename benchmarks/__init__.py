"""losskit benchmarks: ``python -m benchmarks`` (see ``runner.py``)."""
