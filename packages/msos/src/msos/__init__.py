"""msos."""
