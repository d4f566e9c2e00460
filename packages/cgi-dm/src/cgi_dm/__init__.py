"""cgi-dm."""
