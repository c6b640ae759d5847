"""Generators of C sources from the Python definitions (one source of truth per fact).

``GENERATED`` maps each generated file (relative to the repository) to the ``module:function`` that renders
it. :func:`write_all` writes them (``dysan codegen``); :func:`stale` lists files that differ from what the
generators produce now, and a test fails on any, so a definition cannot change on one side only.
"""

from __future__ import annotations

import importlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

GENERATED: dict[str, str] = {
    "firmware/core/include/dysan_contract.h": "dysan.codegen.contract_h:render",
    "firmware/core/proto/dysan_msg.h": "dysan.protocol.cgen:render_h",
    "firmware/core/proto/dysan_msg.c": "dysan.protocol.cgen:render_c",
    "firmware/core/nn/dysan_nn_format.h": "dysan.export.model_image:render_c_header",
    "firmware/ports/common/dysan_provision.h": "dysan.device.provision:render_c_header",
    "firmware/core/include/dysan_bundle_format.h": "dysan.export.bundle_format:render_c_header",
    "firmware/core/include/dysan_rf_format.h": "dysan.calibration.rf:render_c_header",
    "firmware/ports/nrf52840/board_regions.h": "dysan.boards:render_c_regions",
}


def render(relpath: str) -> str:
    module, _, func = GENERATED[relpath].partition(":")
    return getattr(importlib.import_module(module), func)()


def write_all(root: Path = REPO) -> list[Path]:
    written = []
    for rel in GENERATED:
        target = root / rel
        text = render(rel)
        if not target.exists() or target.read_text() != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            written.append(target)
    return written


def stale(root: Path = REPO) -> list[str]:
    return [rel for rel in GENERATED if not (root / rel).exists() or (root / rel).read_text() != render(rel)]
