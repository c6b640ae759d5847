"""``dysan export --size-report``: flash, RAM and MACs of every model and of the whole bundle.

Per model: flash bytes (its model image in the bundle), peak scratch RAM (the arena its static plan
needs), MACs per window. Totals: the bundle image, the largest arena (the device allocates one), the MACs
to sanitize a window and to score one candidate (S + P + D), and — when the firmware has been built —
the device flash budget: firmware code + bundle + calibration RF region against 768 KB.

Also :func:`int8_sizes`, the int8 size of one untrained network that ``dysan models summary`` reports.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..rundir import BundleDir

FLASH_BUDGET = 768 * 1024
RAM_BUDGET = 96 * 1024
REPO = Path(__file__).resolve().parents[3]


def int8_sizes(model, windows: int = 64, seed: int = 0) -> dict[str, int]:
    """``int8_bytes`` (constant tensors: int8 weights, int32 biases) and ``tflite_bytes`` of a batch-1 Keras
    model converted to full int8 on ``windows`` random normalized windows (:func:`dysan.nets.summary.summarize`
    takes it as its measurement: the networks sit below the exporter)."""
    import numpy as np

    from .. import contract
    from . import quantize

    rng = np.random.default_rng(seed)
    calib = rng.standard_normal((windows, contract.WINDOW, contract.N_CHANNELS)).astype(np.float32)
    flat = quantize.convert(model, calib)
    return {"int8_bytes": quantize.constant_bytes(flat), "tflite_bytes": len(flat)}


def size_report(out_dir: str | Path, rf_table_bytes: int | None = None) -> dict:
    out_dir = Path(out_dir)
    manifest = json.loads(BundleDir(out_dir).manifest.read_text())
    rows = []
    for m in manifest["models"]:
        for k in "SPD":
            f = m["files"][k]
            rows.append({"model": m["name"], "net": k, "flash_bytes": f["image_bytes"], "arena_bytes": f["arena_bytes"],
                         "macs": f["macs"], "tflite_bytes": f["bytes"]})
    s_macs = [r["macs"] for r in rows if r["net"] == "S"]
    cand = [sum(r["macs"] for r in rows if r["model"] == m["name"]) for m in manifest["models"]]
    totals = {
        "models": len(manifest["models"]),
        "bundle_bytes": manifest["bundle"]["bytes"],
        "model_images_bytes": sum(r["flash_bytes"] for r in rows),
        "max_arena_bytes": max(r["arena_bytes"] for r in rows),
        "sanitize_macs_per_window": max(s_macs),
        "score_macs_per_candidate": max(cand),
    }
    if rf_table_bytes is not None:
        totals["rf_table_bytes"] = rf_table_bytes
    size_json = REPO / "firmware" / "build" / "qemu-m4" / "size.json"
    if size_json.is_file():
        sizes = json.loads(size_json.read_text())
        app = sizes.get("dysan.elf")
        if app is not None:
            used = app["code_flash"] + manifest["bundle"]["bytes"] + (rf_table_bytes or 0)
            totals["firmware_code_bytes"] = app["code_flash"]
            totals["flash_total_bytes"] = used
            totals["flash_budget_bytes"] = FLASH_BUDGET
            totals["flash_within_budget"] = used <= FLASH_BUDGET
    return {"per_model": rows, "totals": totals}
