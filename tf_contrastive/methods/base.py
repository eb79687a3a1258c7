"""What every method model shares: the encoder call, loss trackers, a no-op build."""

from __future__ import annotations

import keras


class ContrastiveModel(keras.Model):
    """A method: ``encoder`` plus a ``train_step`` reporting Mean trackers by name.

    Every variable is created in the constructor (encoders are built, banks have
    a fixed size), so ``build`` has nothing to do.
    """

    def __init__(self, encoder: keras.Model, tracker_names: tuple[str, ...], **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.trackers = {n: keras.metrics.Mean(name=n) for n in tracker_names}

    def build(self, input_shape=None):
        self.built = True

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def loss_tracker(self) -> keras.metrics.Mean:
        return self.trackers["loss"]

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def report(self, **values) -> dict:
        """Updates the named trackers and returns every tracker's result."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {m.name: m.result() for m in self.metrics}
