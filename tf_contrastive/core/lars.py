"""LARS, layer-wise adaptive rate scaling (You, Gitman, Ginsburg 2017), as SimCLR trains with it.

Keras 3 ships no LARS. This one follows the SimCLR reference
(google-research/simclr ``lars_optimizer.py``, classic momentum, no Nesterov): for a
variable w with gradient g, learning rate lr, momentum m, weight decay wd and
trust coefficient eta,

    g' = g + wd * w                                  (L2 decay added to the gradient)
    r  = eta * ||w|| / ||g'||   (1 where ||w|| or ||g'|| is 0)
    v <- m * v + lr * r * g'                         (lr inside the momentum)
    w <- w - v

**Exclusions**, decided by the variable's path as the reference decides by name: a
variable whose ``path`` matches one of ``exclude`` (regular expressions, ``re.search``)
gets neither the decay nor the adaptation (r = 1): plain momentum SGD. The default,
``(bias|gamma|beta)`` as the path's last component, is every layer's bias and the batch
norms' scale and offset (Keras names them so in every normalisation layer); the
reference's ``('batch_normalization', 'bias')`` name its TF1 layers, which ours are
not called. The decision is taken once, in ``build``, on the model's variables:
inside a distributed update the optimizer sees per-device variables whose names are
not the model's paths.

The momentum slots are Keras optimizer variables, so tf.train.Checkpoint keeps them
(``optimizer.variables``) and a resumed run continues bit-identically; under
MirroredStrategy every replica applies the same all-reduced gradient, so the norms,
and hence the updates, agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import keras
from keras import ops

EXCLUDE_DEFAULT = (r"(^|/)(bias|gamma|beta)$",)


@keras.saving.register_keras_serializable(package="tf_contrastive")
class LARS(keras.optimizers.Optimizer):
    """Momentum SGD with a per-variable trust ratio and L2 decay (see the module).

    Args:
      learning_rate: a float or a LearningRateSchedule.
      momentum: m, in [0, 1).
      weight_decay: wd, added to the gradient of every variable not excluded.
      eta: the trust coefficient (the reference's ``eeta``, 0.001).
      exclude: regular expressions; a variable whose path matches any is left out
        of both the decay and the adaptation.
    """

    def __init__(
        self,
        learning_rate=0.1,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        eta: float = 0.001,
        exclude: Sequence[str] = EXCLUDE_DEFAULT,
        name: str = "lars",
        **kwargs,
    ):
        # Keras's own weight_decay is decoupled (w -= lr * wd * w): never set it here.
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0 <= momentum < 1:
            raise ValueError(f"LARS momentum must be in [0, 1), got {momentum}")
        if weight_decay < 0 or eta <= 0:
            raise ValueError(f"LARS needs weight_decay >= 0 and eta > 0, got {weight_decay}, {eta}")
        self.momentum = float(momentum)
        self.decay = float(weight_decay)
        self.eta = float(eta)
        self.exclude = tuple(exclude)

    def excluded(self, variable) -> bool:
        """Whether ``variable`` is left out of the decay and the adaptation."""
        path = getattr(variable, "path", None) or variable.name
        return any(re.search(pattern, path) for pattern in self.exclude)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")
        self._adapted = [not self.excluded(v) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        if self._adapted[index]:
            if self.decay:
                g = ops.add(g, ops.multiply(ops.cast(self.decay, variable.dtype), variable))
            w_norm, g_norm = ops.norm(ops.reshape(variable, [-1])), ops.norm(ops.reshape(g, [-1]))
            both = ops.logical_and(ops.greater(w_norm, 0), ops.greater(g_norm, 0))
            ratio = ops.where(both, self.eta * w_norm / ops.where(both, g_norm, 1.0), 1.0)
            lr = ops.multiply(lr, ops.cast(ratio, variable.dtype))
        v = self.momentums[index]
        self.assign(
            v,
            ops.add(ops.multiply(v, ops.cast(self.momentum, variable.dtype)), ops.multiply(lr, g)),
        )
        self.assign_sub(variable, v)

    def get_config(self):
        config = super().get_config()
        config.update(
            momentum=self.momentum,
            weight_decay=self.decay,
            eta=self.eta,
            exclude=list(self.exclude),
        )
        return config
