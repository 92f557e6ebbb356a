"""Data: subject discovery and splits, intensity normalisation, slice cache, phantoms."""
