"""Evaluation protocols: weighted kNN (and its per-epoch monitor), linear probes, Recall@K."""
