"""MSOS psf."""
