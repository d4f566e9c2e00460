"""The event search: a (t_0, t_eff) grid search of triggered light curves."""
