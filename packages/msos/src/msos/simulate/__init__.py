"""MSOS simulate."""
