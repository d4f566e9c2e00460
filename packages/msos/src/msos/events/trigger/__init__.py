"""The incremental daily trigger over every object of a partition."""
