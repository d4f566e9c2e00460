"""Microlensing models of detected events: fits, errors and model selection."""
