"""The boards' IMU FIFO drivers (firmware/ports/common/imu_fifo.c) against register-level fakes on the host.

firmware/tests/test_imu_fifo.c models each IMU's FIFO as its datasheet and the public drivers cited in
firmware/ports/common/imu_defs.h describe it (LSM6DS3TR-C, LSM9DS1, BMI270, MPU-6050) on a simulated clock,
and checks the drivers under steady and bursty polling, overruns, a failed burst and partial frames: every
50 Hz sample delivered is a real sensor sample converted by the one LSB -> counts conversion, in order, on
the grid of the sensor's clock, and delivered + lost accounts for every tick. This is what can be checked
without the boards; what it cannot show (the chips behaving as modelled) is listed in firmware/ports/README.md.
"""

from __future__ import annotations

import subprocess

from test_device_support import FIRMWARE, build_firmware

PROGRAM = FIRMWARE / "build" / "host" / "tests" / "test_imu_fifo"


def test_imu_fifo_drivers_deliver_the_50hz_grid_and_count_every_loss() -> None:
    # The object first: the Makefile marks every target secondary, so an existing port library would not be
    # re-archived for a source file that joined it (fresh build trees are unaffected).
    build_firmware("build/host/obj/ports/common/imu_fifo.o")
    build_firmware("build/host/tests/test_imu_fifo")
    r = subprocess.run([str(PROGRAM)], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and r.stdout.startswith("ok "), r.stdout[-4000:] + r.stderr[-2000:]
    assert int(r.stdout.split()[1]) >= 200  # every scenario of every IMU ran
