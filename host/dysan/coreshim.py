"""ctypes access to the portable C core (``firmware/build/shim/libdysan_core_shim.so``) for tests and
cross-checks: the C features, random-forest evaluation and input quantization, called on numpy arrays.

``build()`` runs ``make -C firmware core-shim``; the shim is a thin flat API (tests/core_shim.c).
"""

from __future__ import annotations

import ctypes as C
import subprocess
from pathlib import Path

import numpy as np

from . import contract
from .errors import DysanError
from .features import N_FEATURES

REPO = Path(__file__).resolve().parents[2]
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
