"""toxhelpers.dropout_states: tf-keras dropout drawing Keras's own masks from a state a checkpoint
can save, and its refusals (test_checkpointing.py runs it inside whole resumed fits)."""

from __future__ import annotations

import numpy as np
import pytest

from toxhelpers.dropout_states import DropoutStates
from toxhelpers.tf_setup import tf, tf_keras


def dropout_model(seed: int, layer: str = "dropout", twice: bool = False) -> tf_keras.Model:
    """Dense, then a random layer (applied twice with ``twice``), built after seeding."""
    tf_keras.utils.set_random_seed(seed)
    inputs = tf_keras.Input(shape=(16,))
    hidden = tf_keras.layers.Dense(16)(inputs)
    random_layer = tf_keras.layers.Dropout(0.5) if layer == "dropout" else tf_keras.layers.GaussianNoise(0.1)
    hidden = random_layer(hidden, training=True)
    if twice:
        hidden = random_layer(hidden, training=True)
    return tf_keras.Model(inputs, hidden)


def training_outputs(net: tf_keras.Model, seed: int, steps: int = 3, states: DropoutStates | None = None) -> list:
    """``steps`` calls of one traced training-mode function, as a fit's steps are."""
    tf_keras.utils.set_random_seed(seed)
    step = tf.function(lambda batch: net(batch, training=True))
    batch = np.ones((4, 16), np.float32)
    outputs = []
    for _ in range(steps):
        outputs.append(step(batch).numpy())
        if states is not None:
            states.stepped()
    return outputs


def test_attached_states_draw_the_masks_keras_draws_and_save_where_they_are():
    want = training_outputs(dropout_model(0), seed=7)
    states = DropoutStates()
    net = dropout_model(0)
    states.attach(net)
    got = training_outputs(net, seed=7, states=states)
    for mine, theirs in zip(got, want):
        np.testing.assert_array_equal(mine, theirs)
    assert len({(output == 0).sum() for output in got}) > 1  # masks differ from step to step
    saved = states.states()
    assert list(saved) == ["0"] and saved["0"].shape == (3,)
    # put back, the state goes on from where it was: the next mask is the uninterrupted run's 4th
    later = training_outputs(dropout_model(0), seed=7, steps=4)[-1]
    again = DropoutStates()
    resumed = dropout_model(0)
    again.attach(resumed)
    again.restore(saved)
    np.testing.assert_array_equal(training_outputs(resumed, seed=7, steps=1, states=again)[0], later)
    states.detach()
    assert type(net.layers[-1]._random_generator).__name__ == "RandomGenerator"


def test_a_dropout_layer_called_twice_in_one_step_is_refused():
    states = DropoutStates()
    net = dropout_model(0, twice=True)
    states.attach(net)
    with pytest.raises(ValueError, match="called twice in one training step"):
        training_outputs(net, seed=7, steps=1)


def test_a_layer_drawing_other_random_numbers_is_refused():
    states = DropoutStates()
    net = dropout_model(0, layer="noise")
    states.attach(net)
    with pytest.raises(ValueError, match="saves the random state of dropout only.*random_normal"):
        training_outputs(net, seed=7, steps=1)


def test_states_saved_by_another_model_are_refused():
    states = DropoutStates()
    states.attach(dropout_model(0))
    with pytest.raises(ValueError, match="not this model's random layers"):
        states.restore({"0": np.zeros(3, np.int64), "1": np.zeros(3, np.int64)})
