"""Binary focal loss: cross-entropy that stops rewarding examples the model already gets right.

For a comment with label y and predicted toxic probability p, let p_t be the probability given
to the true class (p if y = 1, else 1 - p). Cross-entropy is -log(p_t). Focal loss multiplies it
by (1 - p_t)^gamma, so confident, correct predictions (p_t near 1) contribute almost nothing and
training concentrates on the hard, misclassified comments. ``alpha`` weights the classes:
alpha for the toxic class, 1 - alpha for the non-toxic one. The article's alpha = 0.2 therefore
gives toxic comments a quarter of the weight of non-toxic ones: it *down*-weights the rare class,
leaning on gamma to pull the hard toxic examples back in. (Lin et al., 2017, used alpha = 0.25
with gamma = 2 for the same reason: the focusing term already favours the rare class.)
"""

from __future__ import annotations

from toxhelpers.tf_setup import tf, tf_keras

EPSILON = 1e-7


@tf_keras.utils.register_keras_serializable(package="toxhelpers")
class BinaryFocalLoss(tf_keras.losses.Loss):
    """Focal loss on sigmoid probabilities, finite for any p in [0, 1]."""

    def __init__(self, gamma: float = 2.0, alpha: float = 0.2, name: str = "binary_focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.gamma = float(gamma)
        self.alpha = float(alpha)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        y_true = tf.cast(tf.reshape(y_true, [-1]), tf.float32)
        # Clip so log() never sees 0: a saturated sigmoid must not turn the loss into inf/NaN.
        p = tf.clip_by_value(tf.cast(tf.reshape(y_pred, [-1]), tf.float32), EPSILON, 1.0 - EPSILON)
        p_true_class = y_true * p + (1.0 - y_true) * (1.0 - p)
        class_weight = y_true * self.alpha + (1.0 - y_true) * (1.0 - self.alpha)
        return -class_weight * tf.pow(1.0 - p_true_class, self.gamma) * tf.math.log(p_true_class)

    def get_config(self) -> dict:
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}
