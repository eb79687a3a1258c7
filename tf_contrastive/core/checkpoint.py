"""Checkpoints that resume: model (with its banks and Z), optimizer, epoch.

``tf.train.CheckpointManager`` writes the data files first and the ``checkpoint``
index last (atomically, by rename), so a crash during a save leaves the previous
checkpoint the latest. A newest checkpoint that cannot be read (a disk error, a
file truncated by hand) is reported and the one before it restored; a run never
starts over silently while its index lists checkpoints.
"""

from __future__ import annotations

import os
import re

import keras
import tensorflow as tf

# What a damaged checkpoint raises on restore: TF's reader errors, a short read of a
# truncated data file (IndexError from the Python reader), or objects that do not match.
_UNREADABLE = (tf.errors.OpError, ValueError, AssertionError, IndexError, OSError)
# How TensorFlow reports a readable checkpoint whose variable has another shape.
_SHAPE_MISMATCH = re.compile(r"incompatible tensor with shape (\(.*?\)) when attempting to "
                             r"restore variable with shape (\(.*?\)) and name (\S+?)(:\d+)?\.")


class CheckpointMismatch(ValueError):
    """A readable checkpoint written for another config or dataset (not a damaged one)."""


def has_checkpoints(directory: str) -> bool:
    """Whether ``directory``'s index lists an epoch checkpoint or it holds a backup."""
    state = tf.train.get_checkpoint_state(directory)
    return bool(state and state.model_checkpoint_path) or (
        tf.train.latest_checkpoint(os.path.join(directory, "backup")) is not None)


class RunCheckpoint:
    """Owns the tf.train.Checkpoint of a run and the epoch counter it restores."""

    def __init__(self, directory: str, model: keras.Model,
                 optimizer: keras.optimizers.Optimizer, max_to_keep: int = 3,
                 restore_from: str | None = None):
        """Saves into ``directory``; restores from ``restore_from`` (default: the same).

        Non-chief workers save into a scratch directory but restore from the chief's.
        """
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self.epoch)
        self.directory = directory
        self.restore_from = restore_from or directory
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory,
                                                  max_to_keep=max_to_keep)
        # Mid-epoch backups (train.backup_every_steps), numbered by optimizer step.
        self.backup_manager = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(directory, "backup"), max_to_keep=1)
        self.restored: str | None = None

    @property
    def latest(self) -> str | None:
        """The checkpoint restored by ``restore_latest`` (else the index's newest)."""
        return self.restored or tf.train.latest_checkpoint(self.restore_from)

    def restore_latest(self) -> int:
        """Restores the newest readable checkpoint; returns the epoch to start at (0: none)."""
        self.restored = None
        state = tf.train.get_checkpoint_state(self.restore_from)
        if state is None or not state.model_checkpoint_path:
            return 0
        paths = [state.model_checkpoint_path] + [
            p for p in reversed(state.all_model_checkpoint_paths)
            if p != state.model_checkpoint_path]
        problems = []
        for path in paths:
            problem = self._restore(path, "trying the checkpoint before it")
            if problem:
                problems.append(f"{path}: {problem}")
                continue
            return int(self.epoch.numpy())
        raise RuntimeError(f"{self.restore_from}: none of the checkpoints in its index can be "
                           "restored (move the directory away to start over): "
                           + "; ".join(problems))

    def restore_position(self, steps_per_epoch: int,
                         saved_steps_per_epoch: int | None = None) -> tuple[int, int]:
        """Restores the newest state, epoch checkpoint or mid-epoch backup.

        Returns (epoch, step within it) to continue from; (0, 0) for a new run.
        A backup is used when it is further on than the newest epoch checkpoint.
        ``saved_steps_per_epoch``: the steps per epoch the checkpoints were written
        with, when this run's differ (a changed batch size); backups count optimizer
        steps of those epochs, and a mid-epoch one cannot be continued then.
        """
        epoch = self.restore_latest()
        backup = tf.train.latest_checkpoint(os.path.join(self.restore_from, "backup"))
        if backup is None:
            return epoch, 0
        saved = saved_steps_per_epoch or steps_per_epoch
        done = int(backup.rsplit("-", 1)[1])  # the optimizer step it was taken at
        if done <= epoch * saved:
            return epoch, 0
        if saved != steps_per_epoch:
            print(f"{backup} was taken at step {done % saved} of epoch {done // saved + 1} of "
                  f"{saved} steps; this run has {steps_per_epoch} steps per epoch, so it "
                  f"continues from the end of epoch {epoch} instead", flush=True)
            return epoch, 0
        if self._restore(backup, "using the epoch checkpoint"):
            return self.restore_latest(), 0
        return divmod(done, steps_per_epoch)

    def _restore(self, path: str, fallback: str) -> str | None:
        """Restores ``path`` (then ``restored`` names it); if it cannot be read, says so,
        with what happens instead, and returns the reason."""
        try:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        except ValueError as e:
            mismatch = _SHAPE_MISMATCH.search(str(e))
            if mismatch is None:
                return self._unreadable(path, fallback, e)
            saved, wanted, name = mismatch.group(1), mismatch.group(2), mismatch.group(3)
            hint = (" (a memory bank has one row per training example: the checkpoint's run "
                    "had another number of training examples, or another embedding_dim)"
                    if "bank" in name else "")
            raise CheckpointMismatch(
                f"{path}: variable {name} has shape {saved} in the checkpoint but {wanted} in "
                f"this run{hint}. The checkpoint is readable: it was written for another "
                "config or dataset. Resume with the run's config and data, or train in a new "
                "--workdir.") from e
        except _UNREADABLE as e:
            return self._unreadable(path, fallback, e)
        self.restored = path
        return None

    @staticmethod
    def _unreadable(path: str, fallback: str, e: Exception) -> str:
        reason = str(e).strip().splitlines()[0][:300]
        print(f"{path} cannot be restored ({type(e).__name__}: {reason}); {fallback}",
              flush=True)
        return reason

    def save_backup(self, step: int) -> str:
        return self.backup_manager.save(checkpoint_number=step)

    def save(self, epoch: int) -> str:
        self.epoch.assign(epoch)
        return self.manager.save(checkpoint_number=epoch)


class SaveEveryEpoch(keras.callbacks.Callback):
    """Saves after every epoch (after the other callbacks have logged it)."""

    def __init__(self, run_checkpoint: RunCheckpoint):
        super().__init__()
        self.run_checkpoint = run_checkpoint

    def on_epoch_end(self, epoch, logs=None):
        self.run_checkpoint.save(epoch + 1)


class BackupEverySteps(keras.callbacks.Callback):
    """A mid-epoch backup every ``every`` optimizer steps (only the newest is kept).

    A run killed mid-epoch then continues from the backup's step instead of
    repeating the epoch, like Keras's BackupAndRestore with ``save_freq``, but
    with the memory banks, Z and the input position in it.
    """

    def __init__(self, run_checkpoint: RunCheckpoint, every: int):
        super().__init__()
        self.run_checkpoint, self.every = run_checkpoint, int(every)

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0:
            self.run_checkpoint.save_backup(step)


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops with an error naming the step when the loss is NaN or infinite.

    Raising (rather than Keras's TerminateOnNaN quietly stopping) means no
    checkpoint is written from the bad state: the last good one stays latest.
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not tf.math.is_finite(tf.convert_to_tensor(loss)):
            raise FloatingPointError(
                f"non-finite loss {float(loss)} at epoch {self.epoch + 1}, step {batch + 1}; "
                "training stopped, the last checkpoint is untouched")


def check_writable(workdir: str) -> None:
    """Fails before any training when the work dir cannot be written."""
    try:
        tf.io.gfile.makedirs(workdir)
        probe = os.path.join(workdir, ".write_probe")
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok" * 512)
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as e:
        raise OSError(f"--workdir {workdir}: not writable ({e})") from e
