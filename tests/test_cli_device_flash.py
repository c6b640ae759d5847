"""``dysan flash`` (dry runs of every target, a real flash of the host build), ``dysan devices`` and ``dysan
monitor`` from the command line.

The board targets (nano33ble, xiao-sense, esp32) need PlatformIO, the board tools and a board, none of which
exist here: their dry runs are checked command by command against what the tools expect, and a real run says
in one line that the tool is missing and the path is verified as a dry run only.
"""

from __future__ import annotations

import json
import shlex
import shutil
import stat
from pathlib import Path

import pytest

from dysan.cli import build_parser, main
from dysan.tools import emulator, flash, keystore
from test_device_support import build_firmware, synthetic, synthetic_bundle, synthetic_rf  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch) -> Path:
    """Key store and emulator state in tmp (never the user's ~/.config or ~/.local/state)."""
    monkeypatch.setenv("DYSAN_KEYS", str(tmp_path / "keys"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    yield tmp_path
    emulator.stop()


def _dry(capsys, *args: str) -> list[str]:
    assert main(["flash", "--dry-run", *args]) == 0
    out = capsys.readouterr().out
    return out.splitlines()


def _cmd(lines: list[str], start: str) -> list[str]:
    found = [line[2:] for line in lines if line.startswith(f"$ {start}")]
    assert len(found) == 1, (start, lines)
    return shlex.split(found[0])


def test_dry_run_nano33ble(capsys, tmp_path) -> None:
    ident = REPO / "firmware" / "build" / "generated" / "dysan_identity.c"
    before = ident.stat().st_mtime_ns if ident.exists() else None
    lines = _dry(capsys, "--target", "nano33ble", "--port", "/dev/ttyACM0", "--bundle", str(_bundle(tmp_path)))
    commands = [shlex.split(line[2:]) for line in lines if line.startswith("$ ")]
    assert commands == [["pio", "run", "-e", "nano33ble"],
                        ["pio", "run", "-e", "nano33ble", "-t", "upload", "--upload-port", "/dev/ttyACM0"]]
    steps = [line for line in lines if line.startswith("# ") and ". " in line]
    assert "dysan_identity.c" in steps[0] and "upload" in steps[-1] and "/dev/ttyACM0" in steps[-1]
    assert any("dry run only" in line for line in lines)
    assert not (tmp_path / "keys").exists(), "a dry run generated a key"
    assert (ident.stat().st_mtime_ns if ident.exists() else None) == before, "a dry run wrote the identity file"


def test_dry_run_xiao_uf2_and_nrfutil(capsys, tmp_path) -> None:
    lines = _dry(capsys, "--target", "xiao-sense", "--builder", "pio", "--uf2-drive", "/media/me/XIAO-SENSE")
    assert _cmd(lines, "pio run") == ["pio", "run", "-e", "xiao_ble_sense"]
    assert any("firmware.uf2" in line and "0xADA52840" in line for line in lines)
    assert any(line.startswith("# ") and "copy" in line and "/media/me/XIAO-SENSE" in line for line in lines)
    lines = _dry(capsys, "--target", "xiao-sense", "--builder", "pio", "--port", "/dev/ttyACM1")
    pio_build = REPO / ".pio" / "build" / "xiao_ble_sense"
    assert _cmd(lines, "adafruit-nrfutil dfu genpkg") == [
        "adafruit-nrfutil", "dfu", "genpkg", "--dev-type", "0x0052", "--application", str(pio_build / "firmware.hex"),
        str(pio_build / "firmware.zip")]
    assert _cmd(lines, "adafruit-nrfutil --verbose") == [
        "adafruit-nrfutil", "--verbose", "dfu", "serial", "--package", str(pio_build / "firmware.zip"), "-p",
        "/dev/ttyACM1", "-b", "115200", "--singlebank", "--touch", "1200"]


def test_dry_run_xiao_without_platformio_builds_with_make(capsys, monkeypatch) -> None:
    """No PlatformIO: the XIAO image comes from make -C firmware xiao (the vendored core), and the UF2 / DFU
    steps take its dysan.hex (the UF2 itself is produced and checked in tests/test_board_xiao.py)."""
    real_which = shutil.which
    monkeypatch.setattr(flash.shutil, "which", lambda name: None if name == "pio" else real_which(name))
    lines = _dry(capsys, "--target", "xiao-sense", "--uf2-drive", "/media/me/XIAO-SENSE")
    assert _cmd(lines, "make") == ["make", "-C", "firmware", "-j2", "xiao"]
    hex_file = REPO / "firmware" / "build" / "xiao" / "dysan.hex"
    assert any(f"convert {hex_file} to {hex_file.with_suffix('.uf2')}" in line and "0xADA52840" in line
               for line in lines)
    assert any(line.startswith("# UF2: ") for line in lines)  # written and checked, or "not built yet"
    lines = _dry(capsys, "--target", "xiao-sense", "--port", "/dev/ttyACM1")
    assert _cmd(lines, "adafruit-nrfutil dfu genpkg")[6] == str(hex_file)
    assert main(["flash", "--target", "esp32", "--builder", "make", "--dry-run"]) == 2
    assert "--builder 'make'" in capsys.readouterr().err


def test_dry_run_esp32_flashes_the_partition_layout(capsys, tmp_path) -> None:
    key = tmp_path / "esp.key"
    keystore.resolve(key, create=True)
    lines = _dry(capsys, "--target", "esp32", "--port", "/dev/ttyUSB0", "--key-file", str(key))
    pio_build = REPO / ".pio" / "build" / "esp32dev"
    argv = _cmd(lines, "esptool.py")
    assert argv[:argv.index("0x1000")] == [
        "esptool.py", "--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800", "--before", "default_reset",
        "--after", "hard_reset", "write_flash", "-z", "--flash_mode", "dio", "--flash_freq", "40m",
        "--flash_size", "detect"]
    pairs = dict(zip(argv[argv.index("0x1000")::2], argv[argv.index("0x1000") + 1::2], strict=True))
    assert pairs["0x1000"] == str(pio_build / "bootloader.bin")
    assert pairs["0x8000"] == str(pio_build / "partitions.bin")
    assert pairs["0x10000"] == str(pio_build / "firmware.bin")  # the factory partition of partitions.csv
    device_id = keystore.load(key).device_id_hex
    assert pairs["0x27f000"] == str(tmp_path / "state" / "dysan" / "boards" / device_id / "provision.bin")
    text = "\n".join(lines)
    assert keystore.load(key).key.hex() not in text


def _bundle(tmp_path: Path) -> Path:
    """A stand-in bundle folder (dry runs only read its files' presence and hash)."""
    bundle = tmp_path / "models" / "tiny"
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "bundle.bin").write_bytes(b"B" * 64)
    (bundle / "dysan_bundle.c").write_text("/* c */\n")
    (bundle / "manifest.json").write_text(json.dumps({"files": {}}))
    return bundle


def test_dry_run_qemu_with_a_bundle_builds_in_its_own_folder(capsys, tmp_path) -> None:
    bundle = _bundle(tmp_path)
    lines = _dry(capsys, "--target", "qemu", "--bundle", str(bundle), "--listen-port", "45678")
    bid = flash.bundle_id(bundle)
    assert _cmd(lines, "make") == ["make", "-C", "firmware", f"BUILD=build/flash-{bid}", "-j2", "qemu"]
    qemu = _cmd(lines, "qemu-system-arm")
    assert qemu[:3] == ["qemu-system-arm", "-M", "mps2-an386"]
    assert "tcp:127.0.0.1:45678,server=on,wait=on" in qemu and qemu[
        qemu.index("-icount"):qemu.index("-icount") + 2] == ["-icount", "shift=0"]
    assert qemu[qemu.index("-kernel") + 1] == str(REPO / "firmware" / f"build/flash-{bid}" / "qemu-m4" / "dysan.elf")
    assert any(a.startswith("loader,file=") and "provision.bin" in a and "force-raw=on" in a for a in qemu)
    assert any(f"build/flash-{bid}/generated/dysan_bundle.c" in line for line in lines)
    assert not (REPO / "firmware" / f"build/flash-{bid}").exists(), "a dry run wrote files"


def test_board_flash_without_platformio_says_dry_run_only(capsys, tmp_path) -> None:
    if shutil.which("pio"):
        pytest.skip("PlatformIO is installed here: the real path would run")
    rc = main(["flash", "--target", "esp32", "--port", "/dev/ttyUSB0", "--key-file", str(tmp_path / "b.key")])
    err = capsys.readouterr().err
    assert rc == 2 and "pio not found" in err and "dry run" in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert not (tmp_path / "b.key").exists(), "a key was generated for a flash that could not run"


def test_help_says_what_is_verified_only_by_dry_run(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["flash", "--help"])
    out = capsys.readouterr().out
    assert "VERIFIED ONLY AS A DRY RUN" in out and "nano33ble, xiao-sense and esp32" in out
    from dysan.boards import BOARDS

    for target, board in BOARDS.items():  # the help is the boards table
        assert f"  {target:<11} {board.flash_with[:40]}" in out.replace("\n", " ")


def test_unknown_bundle_folder_is_one_line(capsys, tmp_path) -> None:
    assert main(["flash", "--target", "qemu", "--bundle", str(tmp_path / "nope"), "--dry-run"]) == 2
    assert "no bundle.bin" in capsys.readouterr().err


def test_flash_host_then_devices_and_monitor(capsys, tmp_path) -> None:
    """A real flash of the native build: key generated in the store (0600, never printed), the device started
    detached; `dysan devices --probe` finds it answering, `dysan monitor` reads its INFO and STATS, and
    `dysan flash --stop` stops it."""
    build_firmware("host")
    js = tmp_path / "flash.json"
    assert main(["flash", "--target", "host", "--json", str(js)]) == 0
    out = capsys.readouterr()
    res = json.loads(js.read_text())
    url, device_id = res["url"], res["device_id"]
    assert out.out.strip().splitlines()[-1] == url and url.startswith("socket://127.0.0.1:")
    key = Path(res["key_file"])
    assert key.parent == tmp_path / "keys" and stat.S_IMODE(key.stat().st_mode) == 0o600
    secret = keystore.load(key).key.hex()
    assert secret not in out.out + out.err + js.read_text()

    dj = tmp_path / "devices.json"
    assert main(["devices", "--probe", "--no-ble", "--json", str(dj)]) == 0
    probed = {p["port"]: p for p in json.loads(dj.read_text())["probed"]}
    assert probed[url]["answers"] and probed[url]["info"]["device_id"] == device_id
    assert f"DySan {device_id}" in capsys.readouterr().out

    mj = tmp_path / "monitor.json"
    assert main(["monitor", "--port", url, "--seconds", "1.5", "--interval", "0.5", "--json", str(mj)]) == 0
    mon = json.loads(mj.read_text())
    assert mon["info"]["device_id"] == device_id and mon["info"]["bundle_valid"] == 0
    assert mon["stats"]["frames_ok"] > 0 and mon["rtt_ms"] is not None
    assert "sensitive_value" not in mon["info"], "an unsigned HELLO must not disclose the sensitive value"

    # not calibrated yet: stream says what is missing, in one line (its key came from the store, by device id)
    capsys.readouterr()
    assert main(["stream", "--port", url, "--replay", "synthetic", "--subject", "SY01", "--windows", "2"]) == 2
    err = capsys.readouterr().err
    assert "lacks: model bundle, calibration RF;" in err and err.startswith("error:"), err

    assert main(["flash", "--stop", "--device-id", device_id]) == 0
    assert not emulator.running()


def test_devices_reports_no_bluetooth_in_one_line(capsys) -> None:
    """Here (no adapter, no BlueZ) the BLE scan is one line saying why; with Bluetooth, a table or one line."""
    assert main(["devices", "--ble-timeout", "0.5"]) == 0
    out = capsys.readouterr()
    ble = [line for line in out.err.splitlines() if line.startswith("BLE:")]
    assert len(ble) == 1 or (not ble and "BLE devices" in out.out), out
    if ble:
        assert "Bluetooth unavailable" in ble[0] or "no BLE devices found" in ble[0]


def test_stream_to_stdout_dequantized(capsys, tmp_path, synthetic_bundle, synthetic_rf) -> None:  # noqa: F811
    """`dysan stream --out - --bundle DIR`: CSV on stdout in g and rad/s (the summary goes to stderr)."""
    import csv
    import io

    import numpy as np

    from dysan.tools.link import DeviceLink
    from dysan.tools.writers import Dequantizer
    from test_device_support import HOST_APP, TEST_IDENTITY

    build_firmware("host")
    key = keystore.save(TEST_IDENTITY, tmp_path / "k.key")
    emu = emulator.start("host", HOST_APP, TEST_IDENTITY)
    with DeviceLink(emu.url, key_file=key, require_key=True) as link:
        link.session.upload_bundle(synthetic_bundle.image)
        link.session.upload_rf(synthetic_rf)
        link.session.set_sensitive(0)
    capsys.readouterr()
    assert main(["stream", "--port", emu.url, "--key-file", str(key), "--replay", "synthetic", "--subject", "SY01",
                 "--windows", "6", "--bundle", str(synthetic_bundle.directory), "--out", "-"]) == 0
    out = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(out.out)))
    assert rows[0][-6:] == ["acc_x_g", "acc_y_g", "acc_z_g", "gyro_x_rad_per_s", "gyro_y_rad_per_s",
                            "gyro_z_rad_per_s"]
    assert len(rows) == 1 + 6 * 125 and "6 windows written" in out.err
    values = np.asarray([r[-6:] for r in rows[1:]], dtype=np.float64)
    # the reference's int8 windows, dequantized the documented way, are what was printed (to 6 digits)
    from dysan.device.reference import ReferencePipeline
    from dysan.tools.replay import open_replay, samples_for

    samples = open_replay("synthetic", "SY01").stream_samples(samples_for(6))
    want = ReferencePipeline(synthetic_bundle, synthetic_rf, 0).run(samples)
    deq = Dequantizer(synthetic_bundle.manifest)
    expect = np.concatenate([deq(w.model_id, np.frombuffer(w.data, np.int8).reshape(125, 6)) for w in want])
    np.testing.assert_allclose(values, expect, rtol=1e-5, atol=1e-6)
    assert [int(r[4]) for r in rows[1::125]] == [w.model_id for w in want]


def test_devices_names_the_flash_target_of_each_board(capsys, monkeypatch) -> None:
    """`dysan devices` reads the boards table: a port with a board's USB id says which --target flashes it."""
    from dysan.tools import devices
    from dysan.transport.serial_link import PortInfo, guess_board

    def fake(usb_only: bool = True) -> list:
        ids = [("/dev/ttyACM0", 0x2886, 0x8045), ("/dev/ttyACM1", 0x2341, 0x805A), ("/dev/ttyUSB0", 0x1234, 0x1)]
        return [PortInfo(port, "", vid, pid, None, guess_board(vid, pid)) for port, vid, pid in ids]

    monkeypatch.setattr(devices, "list_serial_ports", fake)
    res = devices.list_devices(ble=False)
    assert [p["target"] for p in res.ports] == ["xiao-sense", "nano33ble", None]
    assert main(["devices", "--no-ble"]) == 0
    out = capsys.readouterr().out
    assert "dysan flash --target xiao-sense" in out and "dysan flash --target nano33ble" in out


def test_xiao_flash_without_its_drive_stops_before_writing_anything(capsys, tmp_path) -> None:
    """A real xiao-sense flash to a UF2 drive that is not mounted fails in one line before the identity is
    written, the image built or a key made."""
    ident = REPO / "firmware" / "build" / "generated" / "dysan_identity.c"
    before = ident.stat().st_mtime_ns if ident.exists() else None
    rc = main(["flash", "--target", "xiao-sense", "--builder", "make", "--uf2-drive", str(tmp_path / "nope"),
               "--key-file", str(tmp_path / "x.key")])
    err = capsys.readouterr().err
    assert rc == 2 and "no such drive" in err and len([ln for ln in err.splitlines() if ln.strip()]) == 1, err
    assert not (tmp_path / "x.key").exists()
    assert (ident.stat().st_mtime_ns if ident.exists() else None) == before
