"""Memory banks and key queues: fixed-shape non-trainable feature tables."""

from tf_contrastive.memory.bank import MemoryBank
from tf_contrastive.memory.queue import KeyQueue

__all__ = ["KeyQueue", "MemoryBank"]
