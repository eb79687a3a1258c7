"""A tf.data service dispatcher or worker, for input-bound trainers.

Preprocessing (JPEG decoding, crops, colour jitter) moves off the trainers'
hosts onto separate CPU machines:

    # one dispatcher
    python -m tools.data_service --role=dispatcher --port=5050 --work_dir=/tmp/dispatcher
    # one or more workers, each on a machine with spare CPUs and the data
    python -m tools.data_service --role=worker --dispatcher=HOST:5050 --port=5051
    # the trainer
    python -m tf_contrastive.train --config=... --config.dataset.data_service=grpc://HOST:5050

Workers read the files themselves, so ``dataset.data_dir`` must be readable at
the same path from every worker. The process serves until killed; with
``--work_dir`` a restarted dispatcher recovers its registered datasets and jobs.
"""

from __future__ import annotations

import os
import socket

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from tf_contrastive.core import runtime  # noqa: E402  (before TensorFlow: oneDNN, threads)

_ROLE = flags.DEFINE_enum("role", None, ["dispatcher", "worker"], "Which server to run.")
_PORT = flags.DEFINE_integer("port", 0, "Port to bind (0 = any free port, printed at start).")
_DISPATCHER = flags.DEFINE_string("dispatcher", "", "Worker only: the dispatcher's host:port.")
_WORKER_HOST = flags.DEFINE_string(
    "worker_host", "", "Worker only: host name trainers use to reach this worker "
    "(default: this machine's host name).")
_WORK_DIR = flags.DEFINE_string(
    "work_dir", "", "Dispatcher only: journal directory, so a restart keeps its state.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    print(runtime.apply().line(), flush=True)
    import tensorflow as tf

    service = tf.data.experimental.service
    if _ROLE.value == "dispatcher":
        if _DISPATCHER.value:
            raise app.UsageError("--dispatcher is for --role=worker")
        server = service.DispatchServer(service.DispatcherConfig(
            port=_PORT.value, work_dir=_WORK_DIR.value or None,
            fault_tolerant_mode=bool(_WORK_DIR.value)))
    else:
        if not _DISPATCHER.value:
            raise app.UsageError("--role=worker needs --dispatcher=HOST:PORT")
        if _WORK_DIR.value:
            raise app.UsageError("--work_dir is for --role=dispatcher")
        host = _WORKER_HOST.value or socket.gethostname()
        server = service.WorkerServer(service.WorkerConfig(
            dispatcher_address=_DISPATCHER.value.removeprefix("grpc://"),
            worker_address=f"{host}:%port%", port=_PORT.value))
    # The bound port, for scripts that started us with --port=0.
    print(f"{_ROLE.value} serving at {server.target if _ROLE.value == 'dispatcher' else host}"
          f" port {server._server.bound_port()}", flush=True)
    server.join()


if __name__ == "__main__":
    flags.mark_flag_as_required("role")
    app.run(main)
