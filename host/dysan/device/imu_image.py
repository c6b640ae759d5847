"""The emulated IMU's recording: what QEMU's loader places at ``__dysan_imu_start`` for the qemu-m4 port.

The port (``firmware/ports/qemu-m4/port_qemu.c``, "IMU") plays it back as a sensor would deliver it: a
hardware timer interrupt at ``rate_hz`` of virtual time moves the next sample into an emulated FIFO of
``fifo_depth`` samples, which the firmware drains from its main loop; a full FIFO loses the sample and counts
it. Layout, little-endian (the C side reads the same 16-byte header)::

    u32 magic 'DIMU' | u16 rate_hz | u16 fifo_depth (0: 32) | u32 n_samples | u32 reserved (0)
    n_samples x 6 int16 counts, contract channel order (acc x, y, z, gyro x, y, z)

Nothing loaded (QEMU's zero-filled RAM) has no magic: the port then has no IMU, as before.
"""

from __future__ import annotations

import struct

import numpy as np

from .. import contract
from ..errors import DysanError

MAGIC = 0x554D4944  # "DIMU"
HEADER = struct.Struct("<IHHII")
SYMBOL = "__dysan_imu_start"
SIZE_SYMBOL = "__dysan_imu_size"
FIFO_MAX = 64
"""Deepest emulated FIFO the port holds (``DYSAN_QEMU_IMU_FIFO_MAX``)."""
DEFAULT_FIFO = 32
"""The port's FIFO depth when the image says 0: the LSM9DS1's, the smallest of the supported boards' IMUs."""


def pack(samples: np.ndarray, *, rate_hz: int = contract.RATE_HZ, fifo_depth: int = 0) -> bytes:
    """The image of a recording ``(n, 6)`` int16 counts."""
    s = np.ascontiguousarray(samples, dtype=np.int16).reshape(-1, contract.N_CHANNELS)
    if len(s) == 0:
        raise DysanError("an IMU recording needs at least one sample")
    if not 0 <= fifo_depth <= FIFO_MAX:
        raise DysanError(f"fifo_depth must lie in 0..{FIFO_MAX} (0: the port's default, {DEFAULT_FIFO})")
    if not 1 <= rate_hz <= 0xFFFF:
        raise DysanError("rate_hz must lie in 1..65535")
    return HEADER.pack(MAGIC, rate_hz, fifo_depth, len(s), 0) + s.astype("<i2").tobytes()


def capacity(region_bytes: int) -> int:
    """Samples an image region of ``region_bytes`` holds."""
    return max(0, (region_bytes - HEADER.size) // (2 * contract.N_CHANNELS))
