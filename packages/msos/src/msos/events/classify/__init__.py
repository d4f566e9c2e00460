"""Classification of detected brightenings: microlensing, variable stars, artefacts."""
