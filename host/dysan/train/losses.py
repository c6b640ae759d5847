"""The sanitizer's loss J_S (BRIEF §1) with a differentiable balanced-error-rate surrogate.

``J_S = λ·L_act + α·L_sens + (1 − α − λ)·L_dist`` where

- ``L_act  = softBER(P(S(x)), activity)``           (0 when the predictor is always right),
- ``L_sens = |0.5 − softBER(D(S(x)), sensitive)|``  (0 when the discriminator is reduced to guessing),
- ``L_dist = mean |S(x) − x|``                       (L1, in normalized units).

Surrogate: the *soft* BER replaces the 0/1 hit of each window by the probability the classifier gives
to the true class: ``softBER = 1 − mean over classes present in the batch of (mean softmax probability of
the true class over that class's windows)``. It equals the BER when the classifier is certain, is
differentiable everywhere, and weighs classes equally like the BER (so a majority class cannot hide a
failure on a minority one). Classes absent from a batch are left out of the mean.
"""

from __future__ import annotations

import tensorflow as tf


def soft_ber(logits: tf.Tensor, labels: tf.Tensor, n_classes: int) -> tf.Tensor:
    probs = tf.nn.softmax(logits, axis=-1)
    onehot = tf.one_hot(tf.cast(labels, tf.int32), n_classes, dtype=probs.dtype)
    per_class_n = tf.reduce_sum(onehot, axis=0)
    per_class_hit = tf.reduce_sum(onehot * probs, axis=0) / tf.maximum(per_class_n, 1.0)
    present = tf.cast(per_class_n > 0, probs.dtype)
    recall = tf.reduce_sum(per_class_hit * present) / tf.maximum(tf.reduce_sum(present), 1.0)
    return 1.0 - recall


def hard_ber(pred: tf.Tensor, labels: tf.Tensor, n_classes: int) -> tf.Tensor:
    """The balanced error rate itself (for monitoring)."""
    onehot = tf.one_hot(tf.cast(labels, tf.int32), n_classes)
    hit = tf.cast(tf.equal(tf.cast(pred, tf.int32), tf.cast(labels, tf.int32)), tf.float32)[:, None] * onehot
    n = tf.reduce_sum(onehot, axis=0)
    present = tf.cast(n > 0, tf.float32)
    recall = tf.reduce_sum(tf.reduce_sum(hit, axis=0) / tf.maximum(n, 1.0) * present) / tf.maximum(
        tf.reduce_sum(present), 1.0
    )
    return 1.0 - recall


def sanitizer_terms(x, s, p_logits, d_logits, y_act, y_sens, n_act: int, n_sens: int = 2):
    """``(L_act, L_sens, L_dist)`` for one batch."""
    l_act = soft_ber(p_logits, y_act, n_act)
    l_sens = tf.abs(0.5 - soft_ber(d_logits, y_sens, n_sens))
    l_dist = tf.reduce_mean(tf.abs(s - x))
    return l_act, l_sens, l_dist


def sanitizer_loss(alpha: float, lam: float, l_act, l_sens, l_dist):
    return lam * l_act + alpha * l_sens + (1.0 - alpha - lam) * l_dist
