"""Importing TensorFlow quietly and deterministically.

TensorFlow's C++ side prints absl/oneDNN banners to file descriptor 2 on import, before any Python logging
setting applies; in worker processes that noise would bury the progress display. ``import_tf`` silences
fd 2 for the duration of the import only (errors raised by the import still surface as exceptions).
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


def import_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        import keras  # noqa: F401  (imported here so its own banners are silenced too)
        import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tf


@contextmanager
def quiet() -> Iterator[None]:
    """Silence fds 1 and 2 (the TFLite converter prints from C++ and Python) and Python warnings.

    What was printed is kept and re-emitted on stderr if the body raises, so a failing conversion still
    shows its diagnostics.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    with tempfile.TemporaryFile() as sink:
        failed = False
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace")[-4000:])


def infer(model, x, batch: int = 1024):
    """``model(x)`` in batches, eagerly: the way to run a model that is used once or a few times.

    ``model.predict`` compiles a ``tf.function`` per model, and TensorFlow counts the traces of every such
    function under one key (their shared code object): evaluating many freshly trained models, each predicting
    once, then reads as "excessive retracing" and prints warnings. An eager call traces nothing; on the small
    networks here it is as fast as ``predict`` for a few thousand windows.
    """
    import numpy as np

    import_tf()
    outs = [np.asarray(model(x[lo:lo + batch], training=False)) for lo in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, *model.output_shape[1:]), dtype=np.float32)
