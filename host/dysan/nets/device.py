"""The ``device`` family: compact S, P, D designed against the wearable's budgets (BRIEF §4).

Every layer maps to one TFLM int8 op that quantizes well and that our C kernels implement bit-exactly:
Conv1D (-> CONV_2D, per-channel weights, fused ReLU), average pooling (-> AVERAGE_POOL_2D / MEAN), Dense
(-> FULLY_CONNECTED, fused ReLU) and one residual ADD. No batch norm (folded away anyway), no softmax
(classifiers emit logits: argmax is all the device needs), no transpose convolutions.

- Sanitizer S: ``x + h(x)`` with h = Conv1D(C, 5, same, ReLU) -> Conv1D(C, 5, same, dilation 2, ReLU) ->
  Conv1D(6, 5, same). The residual makes "change nothing" the easiest thing to learn, so distortion stays
  low unless the privacy term pays for it; the receptive field (17 samples, 0.34 s) covers one heel strike,
  where gait carries identity and gender. Default C = 16: ~0.28 M MAC per window.
- Predictor P / discriminator D (device scorers): Conv1D(12, 5, stride 2, ReLU) -> AvgPool(2) ->
  Conv1D(16, 5, ReLU) -> global average -> Dense(16, ReLU) -> Dense(classes). ~50 k MAC, ~2 k parameters:
  the device runs them on every candidate it scores, so they must be cheap.

``models summary`` reports the measured parameters, MACs and int8 bytes of each (see :mod:`.summary`).
"""

from __future__ import annotations

from .. import contract
from ..tfutil import import_tf

import_tf()  # before keras: silences TensorFlow's import banners

import keras  # noqa: E402
from keras import layers  # noqa: E402

INPUT_SHAPE = (contract.WINDOW, contract.N_CHANNELS)
DEFAULT_WIDTH = 16


def sanitizer(width: int = DEFAULT_WIDTH, batch_size: int | None = None, name: str = "S") -> keras.Model:
    inp = keras.Input(INPUT_SHAPE, batch_size=batch_size, name="window")
    h = layers.Conv1D(width, 5, padding="same", activation="relu6", name="enc")(inp)
    h = layers.Conv1D(width, 5, padding="same", dilation_rate=2, activation="relu6", name="mix")(h)
    h = layers.Conv1D(contract.N_CHANNELS, 5, padding="same", name="dec", kernel_initializer="zeros")(h)
    out = layers.Add(name="window_out")([inp, h])
    return keras.Model(inp, out, name=name)


def classifier(n_classes: int, batch_size: int | None = None, name: str = "P") -> keras.Model:
    inp = keras.Input(INPUT_SHAPE, batch_size=batch_size, name="window")
    x = layers.Conv1D(12, 5, strides=2, activation="relu6", name="conv1")(inp)
    x = layers.AveragePooling1D(2, name="pool1")(x)
    x = layers.Conv1D(16, 5, activation="relu6", name="conv2")(x)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    x = layers.Dense(16, activation="relu6", name="fc1")(x)
    out = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name=name)


def predictor(n_classes: int, batch_size: int | None = None, name: str = "P") -> keras.Model:
    return classifier(n_classes, batch_size=batch_size, name=name)


def discriminator(n_classes: int = 2, batch_size: int | None = None, name: str = "D") -> keras.Model:
    return classifier(n_classes, batch_size=batch_size, name=name)
