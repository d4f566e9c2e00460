"""MSOS catalog."""
