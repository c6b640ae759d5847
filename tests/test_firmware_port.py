"""The firmware platform: build system, QEMU Cortex-M4F port, host port, launchers, provisioning page.

The port smoke app (firmware/tests/port_echo.c, dysan_port.h only) is booted in QEMU and as a host process
and driven over its link. What is checked is what the application core will rely on: bytes are not lost
while the CPU is busy, regions behave like flash and stay in bounds, the identity comes from the
provisioning page placed without rebuilding, and on QEMU the cycle counter counts instructions exactly and
deterministically.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dysan.device import provision
from dysan.device.qemu import (
    HostDevice,
    QemuDevice,
    _ProcessDevice,
    elf_symbols,
    open_socket_link,
    qemu_available,
)
from dysan.errors import DysanError

REPO = Path(__file__).resolve().parents[1]
FW = REPO / "firmware"
ECHO_ELF = FW / "build" / "qemu-m4" / "port_echo.elf"
ECHO_HOST = FW / "build" / "host" / "port_echo"
COMMON_TEST = FW / "build" / "host" / "tests" / "port_test_common"

BUNDLE_SIZE, RF_SIZE, STATE_SIZE = 676 * 1024, 16 * 1024, 8 * 1024
QEMU_RX_RING = 4096  # DYSAN_QEMU_RX_RING in firmware/ports/qemu-m4/port_qemu.c

needs_qemu = pytest.mark.skipif(not qemu_available(), reason="qemu-system-arm is not installed")


def fnv1a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def make(*targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(FW), "-j2", *targets], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="session")
def built() -> None:
    """Builds the host and QEMU port images and the host unit tests once per session."""
    r = make("host", "qemu", "tests")
    if r.returncode != 0:
        pytest.fail(f"make -C firmware host qemu tests failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


class Link:
    """Line-oriented driver of port_echo over a launcher's serial link."""

    def __init__(self, dev: _ProcessDevice) -> None:
        self.dev = dev
        self.s = dev.serial

    def line(self) -> str:
        raw = self.s.readline()
        if not raw.endswith(b"\n"):
            raise AssertionError(f"no reply line (got {raw!r}); device stderr:\n{self.dev.stderr_text()}")
        return raw.decode("ascii", "replace").strip()

    def cmd(self, text: str, payload: bytes = b"") -> str:
        self.s.write(text.encode() + b"\n" + payload)
        return self.line()

    def fields(self, text: str) -> dict[str, str]:
        reply = self.cmd(text)
        return dict(tok.split("=", 1) for tok in reply.split() if "=" in tok)


def boot(kind: str, **kwargs: object) -> _ProcessDevice:
    if kind == "qemu":
        if not qemu_available():
            pytest.skip("qemu-system-arm is not installed")
        return QemuDevice(ECHO_ELF, **kwargs)  # type: ignore[arg-type]
    return HostDevice(ECHO_HOST, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["host", "qemu"])
def link(request: pytest.FixtureRequest, built: None) -> Iterator[Link]:
    with boot(request.param) as dev:
        lk = Link(dev)
        assert lk.line() == f"port_echo ready {'qemu-m4' if request.param == 'qemu' else 'host'}"
        yield lk


# ---- provisioning page (pure Python) ---------------------------------------------------------------------


def test_provision_page_roundtrip() -> None:
    ident = provision.new_identity()
    page = provision.build_page(ident)
    assert len(page) == provision.PAGE_SIZE == 4096
    assert page[provision.HEADER_LEN :] == b"\xff" * (4096 - provision.HEADER_LEN)
    assert page[:4] == b"DYSP"
    assert provision.parse_page(page) == ident
    assert ident.key.hex() not in repr(ident)


@pytest.mark.parametrize(
    ("offset", "why"),
    [(0, "no provisioning magic"), (4, "version"), (20, "CRC mismatch"), (48, "CRC mismatch")],
)
def test_provision_rejects_damaged_pages(offset: int, why: str) -> None:
    page = bytearray(provision.build_page(provision.new_identity()))
    page[offset] ^= 0x01
    with pytest.raises(DysanError, match=why):
        provision.parse_page(bytes(page))
    with pytest.raises(DysanError, match="too short"):
        provision.parse_page(bytes(page[:51]))
    with pytest.raises(DysanError):
        provision.Identity(device_id=b"\0" * 7, key=b"\0" * 32)


def test_provision_c_header_is_generated_from_python() -> None:
    header = FW / "ports" / "common" / "dysan_provision.h"
    assert header.read_text() == provision.render_c_header(), "regenerate: dysan codegen"


def test_provision_c_image_source(tmp_path: Path) -> None:
    ident = provision.new_identity()
    src = provision.render_c_image(ident)
    head = provision.build_page(ident)[: provision.HEADER_LEN]
    listed = bytes(int(tok, 16) for tok in src.replace(",", " ").split() if tok.startswith("0x"))
    assert listed == head


# ---- C helpers shared by the ports ----------------------------------------------------------------------


def test_port_common_unit_checks(built: None) -> None:
    r = subprocess.run([str(COMMON_TEST)], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("ok ")


def test_c_parser_agrees_with_python_layout(built: None, tmp_path: Path) -> None:
    ident = provision.new_identity()
    page_file = provision.write_page(tmp_path / "p.bin", ident)
    assert page_file.stat().st_mode & 0o777 == 0o600
    out = subprocess.run(
        [str(COMMON_TEST), "--page", str(page_file)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["rc=0", f"dev={ident.device_id.hex()}", f"key={ident.key.hex()}"]
    page = bytearray(page_file.read_bytes())
    page[provision.OFF_KEY] ^= 0x80
    page_file.write_bytes(bytes(page))
    out = subprocess.run(
        [str(COMMON_TEST), "--page", str(page_file)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "rc=-5"


# ---- build artefacts -------------------------------------------------------------------------------------


def test_qemu_image_exports_the_memory_map(built: None) -> None:
    syms = elf_symbols(ECHO_ELF)
    assert syms["__dysan_bundle_start"] == 0x00050000 and syms["__dysan_bundle_size"] == BUNDLE_SIZE
    assert syms["__dysan_rf_start"] == 0x000F9000 and syms["__dysan_rf_size"] == RF_SIZE
    assert syms["__dysan_state_start"] == 0x000FD000 and syms["__dysan_state_size"] == STATE_SIZE
    assert syms["__dysan_provision_start"] == 0x000FF000
    assert syms["__stack_limit"] == 0x20000000  # the stack starts RAM (overflow -> MPU fault below it)
    assert syms["__dysan_ram_used"] <= 256 * 1024
    assert syms["__dysan_code_used"] <= 320 * 1024


def test_firmware_link_refuses_malloc(built: None) -> None:
    r = make("check-no-malloc")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "malloc is refused at link time" in r.stdout


def test_board_ports_type_check_against_api_stand_ins() -> None:
    """The board ports are not compiled for real here (PlatformIO needs the internet); this only proves they
    still agree with dysan_port.h / ports/common and are valid C++ (firmware/ports/stubs/README.md)."""
    r = make("board-check")
    assert r.returncode == 0, r.stdout + r.stderr


def test_size_report(built: None) -> None:
    r = make("size")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "port_echo.elf" in r.stdout  # the arm-none-eabi-size table
    report = json.loads((FW / "build" / "qemu-m4" / "size.json").read_text())
    echo = report["port_echo.elf"]
    assert 0 < echo["code_flash"] <= echo["code_flash_limit"] == 320 * 1024
    assert echo["bundle_image"] == 0 and echo["bundle_limit"] == BUNDLE_SIZE
    assert echo["stack"] < echo["ram"] <= echo["ram_limit"] == 256 * 1024
    assert echo["data"] >= 4  # port_echo's initialized static


# ---- both ports ------------------------------------------------------------------------------------------


def test_ping_and_data_section(link: Link) -> None:
    reply = link.cmd("ping")
    assert reply.split()[0] == "pong"
    assert reply.endswith("data=5eed1234"), reply  # .data was copied from flash at boot


def test_echo_is_binary_clean(link: Link) -> None:
    payload = bytes(range(256)) + random.Random(1).randbytes(1500)
    assert link.cmd(f"echo {len(payload)}") == f"echo {len(payload)}"
    link.s.write(payload)
    assert link.s.read(len(payload)) == payload
    assert link.cmd("ping").startswith("pong")  # still in sync afterwards


def test_rx_is_buffered_while_the_cpu_is_busy(link: Link) -> None:
    """~4e7 instructions without reading the link while the host sends: nothing may be lost, and on QEMU the
    bytes must already be in the port's ring when the loop ends (a polled UART would hold at most one)."""
    payload = random.Random(2).randbytes(2000)
    link.s.write(f"busy 20000000 {len(payload)}\n".encode())
    assert link.line() == "busy start"
    link.s.write(payload)
    reply = link.line()
    f = dict(tok.split("=", 1) for tok in reply.split()[1:])
    assert int(f["total"]) == len(payload), reply
    assert int(f["fnv"], 16) == fnv1a(payload), reply
    minimum = 200 if link.dev.__class__ is QemuDevice else 1
    assert int(f["first"]) >= minimum, reply


def test_regions_behave_like_flash(link: Link) -> None:
    sizes = {r: int(link.fields(f"region {r}")["size"]) for r in range(4)}
    assert sizes == {0: BUNDLE_SIZE, 1: RF_SIZE, 2: STATE_SIZE, 3: 0}
    assert link.fields("region 3")["null"] == "1"

    for r in range(3):
        assert link.fields(f"erase {r}")["rc"] == "0"
        assert link.fields(f"sum {r} 0 {sizes[r]}")["ff"] == "1"
    assert link.fields("erase 3")["rc"] == "-1"

    data = b"\x0f" + random.Random(3).randbytes(299)
    assert link.cmd("write 2 100 300", data) == "write 2 rc=0"
    assert link.fields("read 2 100 256")["hex"] == data[:256].hex()
    assert link.fields("read 2 356 44")["hex"] == data[256:].hex()
    assert link.fields("sum 2 0 100")["ff"] == "1" and link.fields("sum 2 400 3696")["ff"] == "1"

    # The last bytes of a region are writable; one byte more is out of bounds and writes nothing.
    assert link.cmd(f"write 1 {RF_SIZE - 4} 4", b"\x01\x02\x03\x04") == "write 1 rc=0"
    assert link.cmd(f"write 1 {RF_SIZE - 3} 4", b"\x00\x00\x00\x00") == "write 1 rc=-2"
    assert link.cmd(f"write 1 {RF_SIZE + 1} 0") == "write 1 rc=-2"
    assert link.cmd("write 1 4294967295 1", b"\x00") == "write 1 rc=-2"
    assert link.fields(f"read 1 {RF_SIZE - 4} 4")["hex"] == "01020304"
    assert link.fields(f"read 1 {RF_SIZE - 3} 4")["rc"] == "-2"
    assert link.cmd("write 7 0 1", b"\x00") == "write 7 rc=-1"

    # Flash cannot turn a 0 bit into 1 without an erase: refused, region unchanged (not even the byte that
    # would have been fine); clearing more bits of a programmed byte is what flash can do.
    assert link.cmd("write 2 99 2", b"\x00\xf0") == "write 2 rc=-3"
    assert link.fields("read 2 99 2")["hex"] == "ff0f"
    assert link.cmd("write 2 100 1", b"\x0e") == "write 2 rc=0"
    assert link.fields("read 2 100 2")["hex"] == "0e" + data[1:2].hex()
    assert link.fields("erase 2")["rc"] == "0"
    assert link.fields("sum 2 0 4096")["ff"] == "1"
    assert link.cmd("write 2 100 2", b"\xff\xfe") == "write 2 rc=0"


@pytest.mark.parametrize("kind", ["host", "qemu"])
def test_identity_comes_from_the_provisioning_page(built: None, kind: str) -> None:
    ident = provision.new_identity()
    with boot(kind) as dev:
        lk = Link(dev)
        lk.line()
        assert lk.fields("id")["rc"] == "-5"  # never provisioned
    with boot(kind, provision=ident) as dev:  # QEMU: generic loader at __dysan_provision_start
        lk = Link(dev)
        lk.line()
        f = lk.fields("id")
        assert f["rc"] == "0" and f["dev"] == ident.device_id.hex()
        assert int(f["keyfnv"], 16) == fnv1a(ident.key)


def test_time_moves_forward(link: Link) -> None:
    a = link.fields("time")
    time.sleep(0.05)
    b = link.fields("time")
    assert int(b["cyc"]) > int(a["cyc"])
    assert int(b["ms"]) >= int(a["ms"]) + 20
    # cycles and millis run at the same rate (QEMU: virtual ns; host: ns).
    d_ms = int(b["ms"]) - int(a["ms"])
    d_cyc_ms = (int(b["cyc"]) - int(a["cyc"])) / 1e6
    assert abs(d_cyc_ms - d_ms) <= 5, (d_cyc_ms, d_ms)


def test_no_imu_on_emulated_ports(link: Link) -> None:
    assert link.cmd("imu") == "imu rc=0"


def test_idle_sleeps_and_wakes_on_input(link: Link) -> None:
    link.s.write(b"idlewait\n")
    time.sleep(0.3)
    link.s.write(b"A")
    f = dict(tok.split("=", 1) for tok in link.line().split()[1:])
    assert f["byte"] == "65"
    ms, calls = int(f["ms"]), int(f["calls"])
    assert 150 <= ms <= 10_000
    assert calls <= ms // 5 + 5, f  # each idle really waited (~10 ms), it did not spin


# ---- QEMU only -------------------------------------------------------------------------------------------


def _cycle_deltas(ns: list[int]) -> list[int]:
    with QemuDevice(ECHO_ELF) as dev:
        lk = Link(dev)
        lk.line()
        out = []
        rnd = random.Random()
        for n in ns:
            time.sleep(rnd.random() * 0.03)  # different idle time before each: a different timer phase
            f = lk.fields(f"cyc {n}")
            assert f["empty"] == "0", f  # two back-to-back calls: under one 40-instruction tick
            out.append(int(f["delta"]))
        return out


@needs_qemu
def test_qemu_cycles_count_instructions_deterministically(built: None) -> None:
    """The known loop is 2 instructions per iteration: the difference of two loop lengths, a multiple of 40
    instructions (one timer tick), must come out exactly; and the same counts on a second boot."""
    ns = [1000, 101000, 12345, 1003, 500000]
    first = _cycle_deltas(ns)
    assert first[1] - first[0] == 2 * 100000
    assert first[4] - first[0] == 2 * 499000
    assert all(d % 40 == 0 for d in first)  # resolution: one 25 MHz tick = 40 instructions
    assert 2 * 12345 - 40 < first[2] <= 2 * 12345 + 80
    assert first == _cycle_deltas(ns)


@needs_qemu
def test_qemu_rx_ring_full_applies_backpressure(built: None) -> None:
    """More bytes than the ring holds while busy: the ring fills, the UART stops taking bytes (QEMU keeps
    the rest in its socket), and everything arrives once the firmware reads again."""
    payload = random.Random(4).randbytes(QEMU_RX_RING + 2000)
    with QemuDevice(ECHO_ELF) as dev:
        lk = Link(dev)
        lk.line()
        lk.s.write(f"busy 100000000 {len(payload)}\n".encode())
        assert lk.line() == "busy start"
        lk.s.write(payload)
        f = dict(tok.split("=", 1) for tok in lk.line().split()[1:])
        assert int(f["first"]) == QEMU_RX_RING, f  # a full ring in one read: the ISR kept up while busy
        assert int(f["total"]) == len(payload) and int(f["fnv"], 16) == fnv1a(payload), f


@needs_qemu
def test_qemu_stack_overflow_is_caught(built: None) -> None:
    with QemuDevice(ECHO_ELF) as dev:
        lk = Link(dev)
        lk.line()
        assert lk.cmd("overflow 20") == "overflow returned"
        lk.s.write(b"overflow 1000\n")
        fault = lk.line() or lk.line()
        assert fault.startswith("!FAULT memmanage stack-overflow"), fault


@needs_qemu
def test_qemu_flash_is_read_only_to_stray_stores(built: None) -> None:
    with QemuDevice(ECHO_ELF) as dev:
        lk = Link(dev)
        lk.line()
        lk.s.write(b"wild\n")
        fault = lk.line() or lk.line()
        assert fault.startswith("!FAULT memmanage") and "mmfar=0x00050000" in fault, fault


@needs_qemu
def test_qemu_fpu_on_and_division_by_zero_trapped(built: None) -> None:
    with QemuDevice(ECHO_ELF) as dev:
        lk = Link(dev)
        lk.line()
        assert lk.cmd("fpu") == "fpu 4041"  # 1.5 * 2.25 + 1.5 / 2.25, hard-float ABI
        assert lk.cmd("div 7") == "div 142"
        lk.s.write(b"div 0\n")
        fault = lk.line() or lk.line()
        assert fault.startswith("!FAULT usagefault"), fault


@needs_qemu
def test_qemu_region_images_are_kept_blank_ones_erased(built: None) -> None:
    """An image placed with -device loader survives boot; regions nothing was loaded into read erased."""
    image = b"RF-IMAGE" + bytes(range(64))
    rf = elf_symbols(ECHO_ELF)["__dysan_rf_start"]
    with QemuDevice(ECHO_ELF, loads=[(image, rf)]) as dev:
        lk = Link(dev)
        lk.line()
        assert lk.fields(f"read 1 0 {len(image)}")["hex"] == image.hex()
        assert lk.fields(f"sum 1 {len(image)} {RF_SIZE - len(image)}")["ff"] == "0"  # QEMU RAM: zeros
        assert lk.fields(f"sum 2 0 {STATE_SIZE}")["ff"] == "1"


@needs_qemu
def test_qemu_launcher_reports_failures(built: None, tmp_path: Path) -> None:
    with pytest.raises(DysanError, match="not found"):
        QemuDevice(ECHO_ELF, qemu="qemu-system-arm-does-not-exist").start()
    with pytest.raises(DysanError, match="no such firmware image"):
        QemuDevice(tmp_path / "missing.elf").start()
    with pytest.raises(DysanError, match=r"(?s)exited.*stderr:.*-no-such-option"):
        QemuDevice(ECHO_ELF, extra_args=["-no-such-option"], connect_timeout=5).start()
    dev = QemuDevice(ECHO_ELF)
    with dev:
        proc = dev.proc
        assert dev.url.startswith("socket://127.0.0.1:")
    assert proc is not None and proc.poll() is not None  # killed on exit


@pytest.mark.parametrize("kind", ["host", "qemu"])
def test_launcher_can_leave_the_link_to_another_tool(built: None, kind: str) -> None:
    with boot(kind, connect=False) as dev:
        with pytest.raises(DysanError, match="connect=False"):
            _ = dev.serial
        assert dev.port is not None
        link = open_socket_link(dev.port, timeout=10)
        try:
            assert link.readline().startswith(b"port_echo ready")  # the banner survives our open()
            link.write(b"ping\n")
            assert link.readline().startswith(b"pong")
        finally:
            link.close()


# ---- host only -------------------------------------------------------------------------------------------


def test_host_regions_persist_in_a_file(built: None, tmp_path: Path) -> None:
    store = tmp_path / "regions.bin"
    with HostDevice(ECHO_HOST, regions=store) as dev:
        lk = Link(dev)
        lk.line()
        assert lk.fields("sum 1 0 16384")["ff"] == "1"  # a new file starts erased
        assert lk.cmd("write 1 10 5", b"hello") == "write 1 rc=0"
    assert store.stat().st_size == BUNDLE_SIZE + RF_SIZE + STATE_SIZE
    with HostDevice(ECHO_HOST, regions=store) as dev:
        lk = Link(dev)
        lk.line()
        assert lk.fields("read 1 10 5")["hex"] == b"hello".hex()
    store.write_bytes(b"\xff" * 100)
    with pytest.raises(DysanError, match="wrong size"):
        HostDevice(ECHO_HOST, regions=store).start()


def test_host_stdio_link_and_exit_on_eof(built: None) -> None:
    p = subprocess.run(
        [str(ECHO_HOST), "--stdio"], input=b"ping\nregion 2\n", capture_output=True, timeout=10, check=False
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines() == [
        "port_echo ready host",
        "pong host data=5eed1234",
        f"region 2 size={STATE_SIZE} null=0",
    ]


def test_host_exits_when_the_link_closes(built: None) -> None:
    dev = HostDevice(ECHO_HOST)
    dev.start()
    try:
        Link(dev).line()
        assert dev.proc is not None
        dev.serial.close()
        assert dev.proc.wait(timeout=5) == 0
    finally:
        dev.close()


def test_host_bad_options(built: None) -> None:
    p = subprocess.run([str(ECHO_HOST), "--listen", "99999"], capture_output=True, text=True, check=False)
    assert p.returncode == 2 and "bad port" in p.stderr
    p = subprocess.run([str(ECHO_HOST), "--help"], capture_output=True, text=True, check=False)
    assert p.returncode == 0 and "--provision" in p.stdout
    env = dict(os.environ, DYSAN_LINK="serial")
    p = subprocess.run([str(ECHO_HOST)], capture_output=True, text=True, check=False, env=env)
    assert p.returncode == 2 and "DYSAN_LINK" in p.stderr
    p = subprocess.run(
        [str(ECHO_HOST), "--provision", "/nonexistent/p.bin"], capture_output=True, text=True, check=False
    )
    assert p.returncode == 2 and "/nonexistent/p.bin" in p.stderr
