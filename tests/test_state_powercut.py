"""The STATE region survives a power cut at every flash operation (firmware/tests/state_powercut_test.c).

The C harness replays a run of 520 signed commands (auth verify + counter commit + settings save, as the
application does), cutting the power at each of its ~700 flash writes and erases in three ways (not done,
half done, random bits), reboots from what is on flash and checks: the counter never goes back below the last
acknowledged command (which is refused when re-sent), no acknowledged setting is lost, and the device keeps
working through two more compactions with a second cut. This file builds it and checks its summary.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

FW = Path(__file__).resolve().parents[1] / "firmware"
SOURCES = ["tests/state_powercut_test.c", "core/src/dysan_state.c", "core/proto/dysan_auth.c",
           "core/proto/dysan_hmac.c", "core/proto/dysan_sha256.c", "core/proto/dysan_frame.c",
           "core/proto/dysan_msg.c"]


def _build(out: Path, *extra: str) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) on PATH")
    exe = out / "state_powercut_test"
    cmd = [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wconversion", "-Wsign-conversion", "-O2",
           "-Icore/include", "-Icore/proto", *extra, *SOURCES, "-o", str(exe)]
    r = subprocess.run(cmd, cwd=FW, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    return exe


def test_power_cut_at_every_flash_operation(tmp_path):
    exe = _build(tmp_path)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"commands=(\d+) flash_ops=(\d+) \(writes (\d+), erases (\d+) in the uncut run\) "
                  r"compactions=(\d+) \(counter log (\d+), settings log (\d+)\) cuts=(\d+) second_cuts=(\d+)",
                  r.stdout)
    assert m, r.stdout
    commands, ops, writes, erases, compactions, by_counter, by_settings, cuts, second = map(int, m.groups())
    assert commands == 520 and ops == writes + erases and erases >= 3
    # Both logs filled up at least once (the first counter compaction is the blank region's first write).
    assert by_counter >= 2 and by_settings >= 2 and compactions == by_counter + by_settings
    assert cuts == 3 * ops  # every operation, three ways
    assert second > ops // 2  # a third of the runs were cut a second time while recovering


# -- the same STATE on the emulated wearable, across a QEMU restart -------------------------------------------

def test_qemu_state_survives_a_restart(tmp_path):
    """QEMU keeps STATE in a host file (flash_qemu.c): signed commands through a compaction, QEMU killed
    (SIGKILL, no shutdown), restarted on the same file: counter and settings are back, an old command is
    refused as a replay. Without the file the same image starts blank (what the file adds)."""
    from dysan.device import QemuDevice, qemu_available
    from dysan.device.session import DeviceError, Session
    from dysan.protocol import encode, make
    from dysan.protocol.schema import ErrorCode, Mode
    from test_device_support import QEMU_APP, TEST_IDENTITY, build_firmware

    if not qemu_available():
        pytest.skip("qemu-system-arm is not installed")
    build_firmware("qemu")
    state = tmp_path / "state.bin"
    with QemuDevice(QEMU_APP, provision=TEST_IDENTITY, state_file=state) as dev:
        s = Session(dev.serial, TEST_IDENTITY, timeout=30.0)
        assert s.hello().auth_counter == 0
        for i in range(10):
            s.set_mode(Mode.IDLE if i % 2 else Mode.REPLAY)
        for seg in range(1, 50):  # > 42 settings records per page: a compaction (an erase) reaches the file too
            s.configure(seg % 7 + 1, seg % 3 + 1, 1000 + seg, 30000 - seg, stream_enable=bool(seg % 2))
        recorded = s.signer.sign(0x11, encode(make("SET_MODE", mode=int(Mode.IDLE))), 900)
        s.send_frame(recorded)
        s.reply(["CMD_OK"], 900)
        before = s.hello()
        dev.proc.kill()  # a power cut: no clean shutdown
        dev.proc.wait(timeout=10)
    assert before.auth_counter == 10 + 49 + 1
    assert (before.segment_len, before.candidates, before.weight_x, before.weight_y) == (49 % 7 + 1, 49 % 3 + 1,
                                                                                          1049, 29951)
    with QemuDevice(QEMU_APP, provision=TEST_IDENTITY, state_file=state) as dev:
        s = Session(dev.serial, TEST_IDENTITY, timeout=30.0)
        info = s.hello()
        for f in ("auth_counter", "segment_len", "candidates", "weight_x", "weight_y", "stream_enabled"):
            assert getattr(info, f) == getattr(before, f), f
        s.send_frame(recorded)
        with pytest.raises(DeviceError) as e:
            s.reply(["CMD_OK"], recorded.seq)
        assert e.value.code == ErrorCode.REPLAY
        s.set_mode(Mode.IDLE)  # and the device goes on from there
        assert s.hello().auth_counter == before.auth_counter + 1
    with QemuDevice(QEMU_APP, provision=TEST_IDENTITY) as dev:
        assert Session(dev.serial, TEST_IDENTITY, timeout=30.0).hello().auth_counter == 0


def test_flashed_qemu_emulator_keeps_state_across_a_restart(tmp_path, monkeypatch):
    """`dysan flash --target qemu` keeps STATE in its state folder: a restarted emulator keeps the counter."""
    from dysan.device import open_socket_link, qemu_available
    from dysan.device.session import Session
    from dysan.protocol.schema import Mode
    from dysan.tools import emulator
    from test_device_support import QEMU_APP, TEST_IDENTITY, build_firmware

    if not qemu_available():
        pytest.skip("qemu-system-arm is not installed")
    build_firmware("qemu")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    counters = []
    try:
        for fresh in (True, False):
            emu = emulator.start("qemu", QEMU_APP, TEST_IDENTITY, fresh_regions=fresh)
            link = open_socket_link(emu.port, 20.0)
            try:
                s = Session(link, TEST_IDENTITY, timeout=20.0)
                counters.append(s.hello().auth_counter)
                for _ in range(3):
                    s.set_mode(Mode.IDLE)
            finally:
                link.close()
            emulator.stop(TEST_IDENTITY.device_id_hex)
    finally:
        emulator.stop()
    assert counters == [0, 3]
    state = tmp_path / "dysan" / "emulators" / TEST_IDENTITY.device_id_hex / "state.bin"
    assert state.stat().st_size == 8192
