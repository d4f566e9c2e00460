"""MSOS reference."""
