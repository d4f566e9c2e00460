"""CGI-DM products: records of coronagraph data (the FITS files corgidrp reads and writes)."""
