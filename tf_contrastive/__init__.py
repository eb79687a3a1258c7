"""tf_contrastive: contrastive self-supervised learning in TensorFlow 2 / Keras 3.

Importing the package before TensorFlow applies this machine's fast runtime
defaults (oneDNN, threads; see ``tf_contrastive.core.runtime``), which
TensorFlow reads only when it is imported. ``TF_CONTRASTIVE_RUNTIME=off``
leaves TensorFlow's own defaults.
"""

from tf_contrastive.core import runtime as _runtime

__version__ = "0.1.0"

_runtime.apply()
