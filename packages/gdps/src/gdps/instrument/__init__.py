"""The WFI grism/prism instrument model GDPS locates, models and calibrates spectra with."""

from gdps.instrument.model import Element, Instrument, load_instrument

__all__ = ["Element", "Instrument", "load_instrument"]
