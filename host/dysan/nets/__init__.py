"""The networks of the sanitizer and its critics, and the one registry of network families.

- :mod:`.device`      the ``device`` family: compact S, P, D within the wearable's budgets (exportable);
- :mod:`.paper`       the ``paper`` family: the DySan paper's appendix networks (host only, for comparison);
- :mod:`.adversaries` the feature and identity adversaries of hardened training;
- :mod:`.summary`     parameters and MACs per window of each family (``dysan models summary``).

Training, export, the model summary and the benches all build S, P and D through :func:`builders` /
:func:`build`, so a new family (or a changed constructor) is registered here once. Keras is imported only
when a network is built: the CLI reads :data:`FAMILIES` for its option choices without paying for it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ..errors import DysanError

FAMILIES = ("device", "paper")
"""Every network family, the default first (``dysan train --family``)."""
ON_DEVICE = ("device",)
"""The families whose ops and sizes the wearable runs (``dysan export`` refuses the others)."""
SENSITIVE_CLASSES = 2
"""Classes of the discriminator D: the binary sensitive attribute."""


def check_family(family: str) -> None:
    if family not in FAMILIES:
        raise DysanError(f"unknown network family {family!r} (choose from {', '.join(FAMILIES)})")


def builders(family: str, n_act: int, n_sens: int = SENSITIVE_CLASSES,
             width: int | None = None) -> dict[str, Callable]:
    """``{"S", "P", "D"}`` -> a constructor of that network of ``family``, called with the Keras options
    (``batch_size=1`` for the int8 converter, ``name=...``). ``width``: the device sanitizer's hidden channels
    (default :data:`dysan.nets.device.DEFAULT_WIDTH`; the paper family has none)."""
    check_family(family)
    if family == "device":
        from . import device

        w = device.DEFAULT_WIDTH if width is None else width
        return {"S": partial(device.sanitizer, w), "P": partial(device.predictor, n_act),
                "D": partial(device.discriminator, n_sens)}
    from . import paper

    return {"S": partial(paper.sanitizer), "P": partial(paper.predictor, n_act),
            "D": partial(paper.discriminator, n_sens)}


def build(family: str, n_act: int, n_sens: int = SENSITIVE_CLASSES, width: int | None = None,
          batch_size: int | None = None) -> tuple:
    """``(S, P, D)`` of ``family``, freshly initialized, built in that order (the order seeds draw in, so
    a seeded run gets the same weights every time)."""
    make = builders(family, n_act, n_sens, width)
    return tuple(make[k](batch_size=batch_size) for k in ("S", "P", "D"))
