"""The study's stages, one module each, in the order the study runs them.

Each module holds a frozen spec (one field per flag of its job), the flags themselves, and
`run(spec, store)`, the work. jobs/<name>.py only parses flags into the spec and calls run;
study and sweep compose stages as specs, never as command lines. Layers: stages import uts,
cluster, tuning and serve; nothing below imports stages, and nothing imports jobs.
"""
