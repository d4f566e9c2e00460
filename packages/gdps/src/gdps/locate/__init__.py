"""Where each source's spectrum falls on a dispersed exposure (the location table)."""
