"""Entry points: each `main(argv) -> int`, run as `python jobs/X.py` or `ray job submit -- python jobs/X.py`."""
