"""uts: the library of the UTS study (tags, audio, data, models, objectives, probes).

Pure Python + torch: it imports without ray, vllm or optuna (a test enforces it).
"""

__version__ = "0.1.0"
