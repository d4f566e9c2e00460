"""Detection efficiency: synthetic microlensing events injected into real light curves and
searched as ``msos events`` searches, counted as TP/FP/TN/FN."""
