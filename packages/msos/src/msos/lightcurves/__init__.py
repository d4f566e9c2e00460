"""MSOS lightcurves."""
