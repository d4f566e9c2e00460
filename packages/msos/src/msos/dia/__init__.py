"""MSOS dia."""
