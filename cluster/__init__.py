"""Ray glue: Ray Data stage runners, Ray Train trainer set-up, storage and runtime helpers."""
