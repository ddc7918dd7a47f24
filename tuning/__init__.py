"""Optuna studies over K and lambda; each trial calls the pretraining entry as a library function."""
