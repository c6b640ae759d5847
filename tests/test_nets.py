"""dysan.nets: the one family registry and ``build`` that training, export and the summaries use."""

from __future__ import annotations

import numpy as np
import pytest

from dysan import contract, nets
from dysan.errors import DysanError


def test_registry_and_unknown_family():
    assert nets.FAMILIES[0] == "device" and set(nets.ON_DEVICE) <= set(nets.FAMILIES)
    with pytest.raises(DysanError, match="unknown network family 'tiny'"):
        nets.builders("tiny", n_act=4)


@pytest.mark.parametrize("family", nets.FAMILIES)
def test_build_shapes_and_seeded_weights(family):
    import keras

    keras.utils.set_random_seed(3)
    s, p, d = nets.build(family, n_act=5, width=8, batch_size=1)
    window = (1, contract.WINDOW, contract.N_CHANNELS)
    assert (s.name, p.name, d.name) == ("S", "P", "D")
    assert tuple(s.output.shape) == window
    assert tuple(p.output.shape) == (1, 5) and tuple(d.output.shape) == (1, nets.SENSITIVE_CLASSES)
    # the builders' constructors take the Keras options; the same seed gives the same weights (S, P, D order)
    keras.utils.set_random_seed(3)
    again = nets.builders(family, n_act=5, width=8)
    for model, key in ((s, "S"), (p, "P"), (d, "D")):
        twin = again[key](batch_size=1)
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights(), strict=True))
    if family == "device":
        assert s.get_layer("enc").filters == 8  # width reaches the device sanitizer
