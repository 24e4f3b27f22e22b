"""Import TensorFlow the way the lessons need it: with Keras 2 and without start-up noise.

Hugging Face's TensorFlow models are written for Keras 2 (the ``tf-keras`` package), while
TensorFlow 2.16+ defaults to Keras 3; ``toxhelpers/__init__`` sets ``TF_USE_LEGACY_KERAS=1``
before TensorFlow loads, and this module checks that it took effect.

TensorFlow's C++ runtime also prints device-probing lines (oneDNN, CUDA drivers) straight to the
process's stderr when it starts, ignoring ``TF_CPP_MIN_LOG_LEVEL``. They are noise on a CPU
machine, so the import and the device probe run with file descriptor 2 pointed at /dev/null.
Python exceptions are unaffected: they are raised after stderr is restored.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import toxhelpers  # noqa: F401  (sets TF_USE_LEGACY_KERAS)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _native_stderr_silenced():
    import tensorflow as tf

    tf.config.list_physical_devices()

import tf_keras  # noqa: E402

if not tf.keras.__name__.startswith("tf_keras"):
    raise ImportError(
        "TensorFlow was imported with Keras 3 before toxhelpers could select Keras 2. Import "
        "toxhelpers before tensorflow (or set TF_USE_LEGACY_KERAS=1), then restart the kernel."
    )

__all__ = ["tf", "tf_keras"]
