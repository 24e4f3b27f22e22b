"""TensorFlow imported with Keras 2 (tf-keras), and its start-up noise silenced without losing stderr."""

from __future__ import annotations

import os

from toxhelpers import tf_setup


def test_tensorflow_runs_with_keras_2():
    """Hugging Face's TensorFlow models need Keras 2; TensorFlow 2.16+ would pick Keras 3."""
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
    assert tf_setup.tf.keras.__name__.startswith("tf_keras")
    assert tf_setup.tf_keras.layers.Dense is tf_setup.tf.keras.layers.Dense


def test_native_stderr_is_silenced_only_inside_the_block(capfd):
    with tf_setup._native_stderr_silenced():
        os.write(2, b"device probing noise\n")
    os.write(2, b"a real error\n")
    assert capfd.readouterr().err == "a real error\n"
