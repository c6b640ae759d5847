"""The paper's networks (appendix A), in Keras — the ``paper`` family, host only, for comparison.

Input is a normalized window ``(125, 6)``. Where the appendix is ambiguous we take the reading that
makes a working network and say so:

- Discriminator: Conv1D(64, 6, ReLU) -> AvgPool(2) -> BatchNorm -> Dropout(0.5) -> *Flatten* -> Dense(64,
  ReLU) -> Dense(2). The appendix lists no Flatten, but its Dense(64) must see the whole window to emit one
  prediction per window.
- Predictor: Conv1D(100, 6) -> AvgPool(2) -> BatchNorm -> Conv1D(100, 5) -> AvgPool(2) -> Conv1D(160, 5) ->
  AvgPool(2) -> Conv1D(160, 5) -> AvgPool(2) -> Dropout(0.5) -> Flatten -> Dense(64, ReLU) -> Dense(classes).
- Sanitizer: Conv1D(64, 6) -> Conv1D(128, 5) -> Dense(128) -> Dense(64, LeakyReLU(0.01)) -> Dense(64) ->
  Dense(128) (per time step) -> Conv1DTranspose(128, 5) -> Conv1DTranspose(6, 6). The appendix ends on
  "Deconv1D(64, kernel 5, softmax)", which cannot give back a (125, 6) window; we end on 6 channels with
  kernel 6 so the output has the input's shape (125 -> 120 -> 116 -> 120 -> 125) and no softmax (a
  signal, not a distribution). About 20 M MAC per window, as BRIEF §3 measured.

Classifiers output logits (``from_logits=True`` losses): the softmax adds nothing to an argmax and TFLM's
int8 softmax would only add error.
"""

from __future__ import annotations

from .. import contract
from ..tfutil import import_tf

import_tf()  # before keras: silences TensorFlow's import banners

import keras  # noqa: E402
from keras import layers  # noqa: E402

INPUT_SHAPE = (contract.WINDOW, contract.N_CHANNELS)


def _input(batch_size: int | None) -> keras.KerasTensor:
    return keras.Input(INPUT_SHAPE, batch_size=batch_size, name="window")


def discriminator(n_classes: int = 2, batch_size: int | None = None, name: str = "D") -> keras.Model:
    x = inp = _input(batch_size)
    x = layers.Conv1D(64, 6, activation="relu")(x)
    x = layers.AveragePooling1D(2)(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9)(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    out = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name=name)


def predictor(n_classes: int, batch_size: int | None = None, name: str = "P") -> keras.Model:
    x = inp = _input(batch_size)
    x = layers.Conv1D(100, 6, activation="relu")(x)
    x = layers.AveragePooling1D(2)(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9)(x)
    for filters in (100, 160, 160):
        x = layers.Conv1D(filters, 5, activation="relu")(x)
        x = layers.AveragePooling1D(2)(x)
    x = layers.Dropout(0.5)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    out = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inp, out, name=name)


def sanitizer(batch_size: int | None = None, name: str = "S") -> keras.Model:
    x = inp = _input(batch_size)
    x = layers.Conv1D(64, 6)(x)
    x = layers.Conv1D(128, 5)(x)
    x = layers.Dense(128)(x)
    x = layers.Dense(64)(x)
    x = layers.LeakyReLU(negative_slope=0.01)(x)
    x = layers.Dense(64)(x)
    x = layers.Dense(128)(x)
    x = layers.Conv1DTranspose(128, 5)(x)
    out = layers.Conv1DTranspose(contract.N_CHANNELS, 6, name="window_out")(x)
    return keras.Model(inp, out, name=name)
