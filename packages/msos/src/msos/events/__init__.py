"""MSOS events: find, classify and model microlensing events in the light curves."""
