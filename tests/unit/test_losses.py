"""Binary focal loss against a hand computation, and its behaviour at the edges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toxhelpers.losses import BinaryFocalLoss


def hand_focal(y: int, p: float, gamma: float, alpha: float) -> float:
    p_t = p if y == 1 else 1 - p
    weight = alpha if y == 1 else 1 - alpha
    return -weight * (1 - p_t) ** gamma * math.log(p_t)


@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.2), (0.0, 0.5), (1.0, 0.75)])
def test_matches_hand_computation(gamma, alpha):
    labels = np.array([1, 1, 0, 0, 1], dtype=np.float32)
    probabilities = np.array([0.9, 0.1, 0.1, 0.9, 0.5], dtype=np.float32)
    loss = BinaryFocalLoss(gamma=gamma, alpha=alpha, reduction="none")(labels, probabilities).numpy()
    expected = [hand_focal(int(y), float(p), gamma, alpha) for y, p in zip(labels, probabilities)]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_default_reduction_is_the_mean():
    labels, probabilities = np.array([1.0, 0.0]), np.array([0.7, 0.4])
    expected = np.mean([hand_focal(1, 0.7, 2.0, 0.2), hand_focal(0, 0.4, 2.0, 0.2)])
    assert float(BinaryFocalLoss()(labels, probabilities)) == pytest.approx(expected, rel=1e-5)


def test_gamma_zero_alpha_half_is_half_cross_entropy():
    labels, probabilities = np.array([1.0, 0.0, 1.0]), np.array([0.8, 0.3, 0.05])
    cross_entropy = -np.mean(labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities))
    assert float(BinaryFocalLoss(gamma=0.0, alpha=0.5)(labels, probabilities)) == pytest.approx(cross_entropy / 2, rel=1e-5)


def test_finite_at_probabilities_zero_and_one():
    labels = np.array([1.0, 1.0, 0.0, 0.0])
    probabilities = np.array([0.0, 1.0, 0.0, 1.0])
    loss = BinaryFocalLoss(reduction="none")(labels, probabilities).numpy()
    assert np.isfinite(loss).all()
    assert loss[1] == pytest.approx(0.0, abs=1e-6) and loss[2] == pytest.approx(0.0, abs=1e-6)
    assert loss[0] > 1.0 and loss[3] > 1.0  # confidently wrong costs a lot, but finitely


def test_gradient_is_finite_at_saturation():
    import tensorflow as tf

    probabilities = tf.Variable([0.0, 1.0, 1.0, 0.0])
    with tf.GradientTape() as tape:
        loss = BinaryFocalLoss()(tf.constant([1.0, 0.0, 1.0, 0.0]), probabilities)
    assert np.isfinite(tape.gradient(loss, probabilities).numpy()).all()


def test_alpha_weights_the_toxic_class():
    focal = BinaryFocalLoss(gamma=0.0, alpha=0.2, reduction="none")
    toxic, clean = focal(np.array([1.0]), np.array([0.3])), focal(np.array([0.0]), np.array([0.7]))
    assert float(toxic[0]) == pytest.approx(0.25 * float(clean[0]), rel=1e-5)  # 0.2 vs 0.8


@pytest.mark.parametrize("kwargs,message", [({"gamma": -1}, "gamma"), ({"alpha": 1.5}, "alpha")])
def test_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BinaryFocalLoss(**kwargs)


def test_config_round_trip():
    loss = BinaryFocalLoss(gamma=3.0, alpha=0.4)
    again = BinaryFocalLoss.from_config(loss.get_config())
    assert (again.gamma, again.alpha) == (3.0, 0.4)
