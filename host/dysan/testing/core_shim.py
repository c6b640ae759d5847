"""ctypes access to the portable C core (``firmware/build/shim/libdysan_core_shim.so``) for tests and
cross-checks: the C features, random-forest evaluation and input quantization, called on numpy arrays.

``build()`` runs ``make -C firmware core-shim``; the shim is a thin flat API (firmware/tests/core_shim.c).
"""

from __future__ import annotations

import ctypes as C
import subprocess
from pathlib import Path

import numpy as np

from .. import contract
from ..errors import DysanError
from ..features import N_FEATURES

REPO = Path(__file__).resolve().parents[3]
SHIM = REPO / "firmware" / "build" / "shim" / "libdysan_core_shim.so"


def build() -> Path:
    r = subprocess.run(["make", "-C", str(REPO / "firmware"), "core-shim"], capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        raise DysanError(f"make core-shim failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return SHIM


def _ptr(a: np.ndarray, ctype):
    return a.ctypes.data_as(C.POINTER(ctype))


class CoreShim:
    def __init__(self, path: Path = SHIM) -> None:
        self.lib = C.CDLL(str(path))

    def features(self, windows: np.ndarray) -> np.ndarray:
        w = np.ascontiguousarray(windows, dtype=np.int16).reshape(-1, contract.WINDOW, contract.N_CHANNELS)
        out = np.zeros((len(w), N_FEATURES), dtype=np.int16)
        self.lib.shim_features(_ptr(w, C.c_int16), C.c_size_t(len(w)), _ptr(out, C.c_int16))
        return out

    def rf_predict(self, table: bytes, features: np.ndarray) -> np.ndarray:
        f = np.ascontiguousarray(features, dtype=np.int16).reshape(-1, N_FEATURES)
        out = np.zeros(len(f), dtype=np.int32)
        buf = (C.c_uint8 * len(table)).from_buffer_copy(table)
        rc = self.lib.shim_rf_predict(buf, C.c_size_t(len(table)), _ptr(f, C.c_int16), C.c_size_t(len(f)),
                                      _ptr(out, C.c_int32))
        if rc != 0:
            raise DysanError(f"C RF table load failed ({rc})")
        return out

    def rf_load_status(self, table: bytes) -> int:
        buf = (C.c_uint8 * max(1, len(table))).from_buffer_copy(table or b"\0")
        out = np.zeros(1, dtype=np.int32)
        f = np.zeros((1, N_FEATURES), dtype=np.int16)
        return int(self.lib.shim_rf_predict(buf, C.c_size_t(len(table)), _ptr(f, C.c_int16), C.c_size_t(0),
                                            _ptr(out, C.c_int32)))

    def quantize(self, counts: np.ndarray, center, mult, zp: int) -> np.ndarray:
        c = np.ascontiguousarray(counts, dtype=np.int16).reshape(-1, contract.N_CHANNELS)
        out = np.zeros(c.shape, dtype=np.int8)
        ce = np.asarray(center, dtype=np.int32)
        mu = np.asarray(mult, dtype=np.int32)
        self.lib.shim_quantize(_ptr(c, C.c_int16), C.c_size_t(len(c)), _ptr(ce, C.c_int32), _ptr(mu, C.c_int32),
                               C.c_int32(zp), _ptr(out, C.c_int8))
        return out

    # -- selection, bundle loader, pipeline (the application's core modules) ---------------------------------

    def schedule(self, n_windows: int, n_models: int, candidates: int, first_window: int = 0) -> np.ndarray:
        """``(n_windows, n_models)`` bool: the C round-robin schedule (``selection.schedule_mask``'s twin)."""
        mask = np.zeros((n_windows, n_models), dtype=np.uint8)
        self.lib.shim_schedule(C.c_uint32(n_windows), C.c_uint16(n_models), C.c_uint16(candidates),
                               C.c_uint32(first_window), _ptr(mask, C.c_uint8))
        return mask.astype(bool)

    def select_score(self, n: int, a: int, s: int, x_q15: int, y_q15: int) -> int:
        self.lib.shim_select_score.restype = C.c_int64
        return int(self.lib.shim_select_score(C.c_uint32(n), C.c_uint32(a), C.c_uint32(s), C.c_uint16(x_q15),
                                              C.c_uint16(y_q15)))

    def select(self, act_hits: np.ndarray, sens_hits: np.ndarray, segment: int, x_q15: int, y_q15: int,
               evaluated: np.ndarray, default_model: int = 0, rounds: int = 1) -> np.ndarray:
        """``selection.select`` computed by ``dysan_select.c`` (raises if its running leader disagrees)."""
        act = np.ascontiguousarray(act_hits, dtype=np.uint8)
        sens = np.ascontiguousarray(sens_hits, dtype=np.uint8)
        ev = np.ascontiguousarray(evaluated, dtype=np.uint8)
        n_windows, n_models = act.shape
        out = np.zeros(n_windows, dtype=np.int32)
        rc = self.lib.shim_select(_ptr(act, C.c_uint8), _ptr(sens, C.c_uint8), _ptr(ev, C.c_uint8),
                                  C.c_uint32(n_windows), C.c_uint16(n_models), C.c_uint16(segment),
                                  C.c_uint16(x_q15), C.c_uint16(y_q15), C.c_uint16(default_model),
                                  C.c_uint16(rounds), _ptr(out, C.c_int32))
        if rc != 0:
            raise DysanError(f"C selection failed ({rc})")
        return out.astype(np.int64)

    def schedule_rounds(self, segment: int, candidates: int, n_models: int) -> int:
        """``dysan_schedule_rounds`` (``selection.horizon_segments``' twin)."""
        self.lib.shim_schedule_rounds.restype = C.c_uint16
        return int(self.lib.shim_schedule_rounds(C.c_uint16(segment), C.c_uint16(candidates), C.c_uint16(n_models)))

    def bundle_load(self, image: bytes, arena_cap: int = 32 * 1024) -> tuple[int, dict]:
        """``dysan_bundle_load`` status and what it reports (models, classes, arena, failure location)."""
        buf = (C.c_uint8 * max(1, len(image))).from_buffer_copy(image or b"\0")
        info = np.zeros(6, dtype=np.int32)
        rc = int(self.lib.shim_bundle_load(buf, C.c_size_t(len(image)), C.c_size_t(arena_cap), _ptr(info, C.c_int32)))
        part = chr(info[4]) if info[4] else ""
        return rc, {"n_models": int(info[0]), "n_classes": int(info[1]), "max_arena": int(info[2]),
                    "model": int(info[3]), "part": part, "nn_err": int(info[5])}

    def pipeline(self, bundle: bytes, rf_table: bytes, sensitive: int, segment: int, candidates: int, x_q15: int,
                 y_q15: int, samples: np.ndarray, flush: bool = True) -> tuple[list[tuple[int, int, bytes]], dict]:
        """The device pipeline in-process over a stream of int16 samples ``(n, 6)``: the emitted windows as
        (model id, RF label, int8 bytes) and the pipeline's counters."""
        s = np.ascontiguousarray(samples, dtype=np.int16).reshape(-1, contract.N_CHANNELS)
        max_out = max(1, (len(s) - contract.WINDOW) // contract.HOP + 1) if len(s) >= contract.WINDOW else 1
        values = contract.WINDOW * contract.N_CHANNELS
        model = np.zeros(max_out, dtype=np.uint8)
        label = np.zeros(max_out, dtype=np.uint8)
        data = np.zeros((max_out, values), dtype=np.int8)
        n_out = np.zeros(1, dtype=np.uint32)
        stats = np.zeros(5, dtype=np.uint32)
        bbuf = (C.c_uint8 * len(bundle)).from_buffer_copy(bundle)
        rbuf = (C.c_uint8 * len(rf_table)).from_buffer_copy(rf_table)
        rc = self.lib.shim_pipeline(bbuf, C.c_size_t(len(bundle)), rbuf, C.c_size_t(len(rf_table)),
                                    C.c_uint8(sensitive), C.c_uint16(segment), C.c_uint16(candidates),
                                    C.c_uint16(x_q15), C.c_uint16(y_q15), _ptr(s, C.c_int16), C.c_size_t(len(s)),
                                    C.c_int(int(flush)), _ptr(model, C.c_uint8), _ptr(label, C.c_uint8),
                                    _ptr(data, C.c_int8), C.c_uint32(max_out), _ptr(n_out, C.c_uint32),
                                    _ptr(stats, C.c_uint32))
        if rc != 0:
            raise DysanError(f"C pipeline failed ({rc})")
        n = int(n_out[0])
        out = [(int(model[i]), int(label[i]), data[i].tobytes()) for i in range(n)]
        keys = ("windows", "candidates_scored", "sanitizer_runs", "reused", "emitted")
        return out, dict(zip(keys, (int(v) for v in stats), strict=True))
