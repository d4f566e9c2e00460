"""MSOS photometry."""
