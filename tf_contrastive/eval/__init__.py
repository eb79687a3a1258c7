"""Evaluation protocols: weighted kNN (more to come: linear probe, Recall@K)."""
