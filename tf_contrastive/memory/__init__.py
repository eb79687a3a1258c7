"""Memory banks: fixed-shape non-trainable feature tables addressed by instance id."""

from tf_contrastive.memory.bank import MemoryBank

__all__ = ["MemoryBank"]
