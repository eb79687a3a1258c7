"""Contrastive losses, one concept per file, each tested against a NumPy re-derivation."""
