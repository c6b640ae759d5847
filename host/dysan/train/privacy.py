"""Privacy terms of the sanitizer against one or several adversaries (issue 15).

``ber`` (the paper's): ``|chance − softBER(adversary)|`` with chance = 1 − 1/K (0.5 for a binary
attribute: exactly DySan's ``|0.5 − softBER|``). It is *satisfied by a flip*: an adversary confidently right
on half the windows of each class and confidently wrong on the other half has BER 0.5, and an attacker
retrained on the sanitized data simply learns the flip.

``entropy``: per window, the KL divergence of the adversary's output from the uniform distribution,
``log K − H(softmax(logits))``, divided by ``log K`` (so it lies in [0, 1] for any K), averaged over the
windows. It is 0 only when every single window leaves the adversary undecided, so there is no half to flip.

Several adversaries (an ensemble of discriminators, a feature adversary, an identity adversary) give one
term each; the sanitizer is scored against the strongest (``max``) or their ``mean``.

**Moment matching** (:func:`moment_matching`): within each activity, the squared difference between the two
attribute groups' mean standardized window statistics (:mod:`dysan.nets.adversaries`), averaged over
statistics and over the activities present in both groups of the batch. An adversary-free term: it pulls
the groups' statistics together even where no adversary currently looks.
"""

from __future__ import annotations

import math

import tensorflow as tf

from ..errors import DysanError
from .losses import soft_ber

PRIVACY_LOSSES = ("ber", "entropy")
AGGREGATIONS = ("max", "mean")


def term(kind: str, logits, labels, n_classes: int):
    if kind == "ber":
        return tf.abs((1.0 - 1.0 / n_classes) - soft_ber(logits, labels, n_classes))
    if kind == "entropy":
        log_p = tf.nn.log_softmax(logits, axis=-1)
        neg_entropy = tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1)
        return tf.reduce_mean(1.0 + neg_entropy / math.log(n_classes))
    raise DysanError(f"unknown privacy loss {kind!r} (choose from {', '.join(PRIVACY_LOSSES)})")


def aggregate(how: str, terms: list):
    if len(terms) == 1:
        return terms[0]
    stacked = tf.stack(terms)
    if how == "max":
        return tf.reduce_max(stacked)
    if how == "mean":
        return tf.reduce_mean(stacked)
    raise DysanError(f"unknown adversary aggregation {how!r} (choose from {', '.join(AGGREGATIONS)})")


def moment_matching(z, y_act, y_sens, n_act: int):
    """Mean over activities (both groups present) of mean_j (mean z_j | group 0 − mean z_j | group 1)²."""
    a = tf.one_hot(tf.cast(y_act, tf.int32), n_act, dtype=z.dtype)
    g = tf.one_hot(tf.cast(y_sens, tf.int32), 2, dtype=z.dtype)
    w = a[:, :, None] * g[:, None, :]
    n = tf.reduce_sum(w, axis=0)
    means = tf.einsum("bag,bf->agf", w, z) / tf.maximum(n, 1.0)[:, :, None]
    diff2 = tf.reduce_mean(tf.square(means[:, 0] - means[:, 1]), axis=-1)
    valid = tf.cast(tf.logical_and(n[:, 0] > 0, n[:, 1] > 0), z.dtype)
    return tf.reduce_sum(valid * diff2) / tf.maximum(tf.reduce_sum(valid), 1.0)
