"""GDPS products: grism and prism spectra, their locations, redshifts and quality reports."""
