"""gdps."""
