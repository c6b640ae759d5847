"""Loss variants of the sanitizer's objective: DySan's own and the baselines the paper compares with.

Every variant runs in the *same* training loop (Algorithm 1, :mod:`.loop`): the same networks (the run's
family), the same alternating steps of S, P and D, the same data, split and warm start. Only the sanitizer's
objective changes, so a difference in the results is a difference of objective, not of plumbing. Each
variant is three terms weighted by the grid point — privacy ``α``, utility ``λ`` and, where the variant has
a distortion term, ``1 − α − λ``:

``J_S = λ·L_act + α·L_sens + w_dist·L_dist``

========= =============================== ================================== ======================= ===========
variant   L_act (utility)                 L_sens (privacy)                   L_dist                  w_dist
========= =============================== ================================== ======================= ===========
dysan     softBER(P(S(x)), activity)      |0.5 − softBER(D(S(x)), sensitive)| mean |S(x) − x|  (L1)    1 − α − λ
gen       as dysan                        as dysan                           (none)                  0
olympus   CE(P(S(x)), activity)           KL(uniform ‖ D(S(x)))               (none)                  0
msda      CE(P(S(x)), activity)           −CE(D(S(x)), sensitive)            mean (S(x) − x)² (MSE)  1 − α − λ
========= =============================== ================================== ======================= ===========

(CE: cross-entropy; softBER: :func:`.losses.soft_ber`; KL(uniform ‖ p) = −log K − mean_k log p_k, which is
0 exactly when D's output is uniform.)

How each follows its paper, and where it departs (also in ``docs/evaluation.md``):

- **GEN** — DySan's objective without the distortion term, at α = 0.6, λ = 0.4 (the configuration the DySan
  authors compare with). Identical to grid point 0.6/0.4 of the ``dysan`` variant, whose distortion weight
  is already 0; ``gen`` drops the term for any point.
- **Olympus** (Raval, Machanavajjhala, Pan, PoPETs 2019): an obfuscator trained adversarially with a utility
  loss (cross-entropy of the utility classifier on obfuscated data) and a privacy loss that drives the
  attacker's prediction towards the uniform distribution (equally unsure of every private class); no
  distortion term. Departures: Olympus's utility classifier is the *app's given model*, fixed during
  training; here P is retrained alternately like every variant (warm-started on raw windows). The
  obfuscator is our family's sanitizer network, not Olympus's autoencoder. Default weights 0.5/0.5.
- **MSDA** (Malekzadeh, Clegg, Cavallaro, Haddadi, IoTDI 2019, "Mobile sensor data anonymization"): an
  anonymizing autoencoder with a weighted sum of a reconstruction loss (MSE), an activity-preserving loss
  (cross-entropy of the activity classifier) and an identity-removing loss (the identity classifier's
  cross-entropy, *maximized*). Departures: the private label is our binary sensitive attribute instead of
  the user's identity; the classifiers are retrained alternately (the paper trains the autoencoder against
  classifiers of the same architecture); the autoencoder is our family's sanitizer network. Default
  weights 0.4 (attribute) / 0.4 (activity) / 0.2 (reconstruction). The identity term is unbounded below by
  design; nothing caps it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from ..errors import DysanError
from .grid import GridPoint

Terms = Callable[..., tuple[tf.Tensor, tf.Tensor, tf.Tensor]]
"""``(x, s, p_logits, d_logits, y_act, y_sens, n_act, n_sens) -> (L_act, L_sens, L_dist)``."""


def _ce(logits, labels) -> tf.Tensor:
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits))


def _dysan_terms(x, s, p_logits, d_logits, y_act, y_sens, n_act: int, n_sens: int):
    from .losses import sanitizer_terms

    return sanitizer_terms(x, s, p_logits, d_logits, y_act, y_sens, n_act, n_sens)


def _olympus_terms(x, s, p_logits, d_logits, y_act, y_sens, n_act: int, n_sens: int):
    l_act = _ce(p_logits, y_act)
    log_p = tf.nn.log_softmax(d_logits, axis=-1)
    l_sens = tf.reduce_mean(-math.log(n_sens) - tf.reduce_mean(log_p, axis=-1))
    return l_act, l_sens, tf.reduce_mean(tf.abs(s - x))


def _msda_terms(x, s, p_logits, d_logits, y_act, y_sens, n_act: int, n_sens: int):
    return _ce(p_logits, y_act), -_ce(d_logits, y_sens), tf.reduce_mean(tf.square(s - x))


@dataclass(frozen=True)
class LossVariant:
    name: str
    label: str
    """How tables and figures name it."""
    terms: Terms
    uses_distortion: bool
    """False: the distortion weight is 0 whatever the grid point (the term is still logged)."""
    default_point: GridPoint | None
    """The grid point ``dysan train --loss NAME`` uses when no --grid is given (None: the full grid)."""
    summary: str

    def weights(self, point: GridPoint) -> tuple[float, float, float]:
        """``(λ, α, w_dist)``: the weights of L_act, L_sens and L_dist."""
        alpha, lam = float(point.alpha), float(point.lam)
        return lam, alpha, (1.0 - alpha - lam if self.uses_distortion else 0.0)


VARIANTS: dict[str, LossVariant] = {
    "dysan": LossVariant("dysan", "DySan", _dysan_terms, True, None,
                         "λ·softBER(P) + α·|0.5 − softBER(D)| + (1−α−λ)·L1"),
    "gen": LossVariant("gen", "GEN", _dysan_terms, False, GridPoint(0.6, 0.4),
                       "λ·softBER(P) + α·|0.5 − softBER(D)| (no distortion term)"),
    "olympus": LossVariant("olympus", "Olympus", _olympus_terms, False, GridPoint(0.5, 0.5),
                           "λ·CE(P) + α·KL(uniform ‖ D) (no distortion term)"),
    "msda": LossVariant("msda", "MSDA", _msda_terms, True, GridPoint(0.4, 0.4),
                        "λ·CE(P) − α·CE(D) + (1−α−λ)·MSE"),
}


def _orf_terms(x, s, p_logits, d_logits, y_act, y_sens, n_act: int, n_sens: int):
    raise DysanError("the ORF baseline has no adversarial objective: it is trained by dysan train --loss orf "
                     "(dysan.train.orf), not by the training loop")


# ORF (random-forest feature selection, the paper's reference [4]) is not trained by Algorithm 1: its entry
# names and labels it for the CLI and the evaluation; dysan.train.orf builds its S/P/D (see that module).
VARIANTS["orf"] = LossVariant("orf", "ORF", _orf_terms, False, GridPoint(0.5, 0.5),
                              "RF-selected components: keep k iff λ·importance_activity ≥ α·importance_attribute")
NOT_ADVERSARIAL = frozenset({"orf"})
"""Variants built by their own module instead of the training loop."""
DEFAULT = "dysan"


def get(name: str) -> LossVariant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise DysanError(f"unknown loss {name!r} (choose from {', '.join(VARIANTS)})") from None


def objective(variant: LossVariant, point: GridPoint, x, s, p_logits, d_logits, y_act, y_sens, n_act: int,
              n_sens: int):
    """``(J_S, L_act, L_sens, L_dist)`` of one batch under ``variant`` at ``point``."""
    from .losses import sanitizer_loss

    l_act, l_sens, l_dist = variant.terms(x, s, p_logits, d_logits, y_act, y_sens, n_act, n_sens)
    w_act, w_sens, _ = variant.weights(point)
    if variant.uses_distortion:  # exactly the expression DySan runs always used
        return sanitizer_loss(w_sens, w_act, l_act, l_sens, l_dist), l_act, l_sens, l_dist
    return w_act * l_act + w_sens * l_sens, l_act, l_sens, l_dist


