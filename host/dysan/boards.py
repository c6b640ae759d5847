"""The boards table: every ``dysan flash`` target, its PlatformIO env, USB ids, what is verified here, and the
nRF52840 flash layouts -- one definition read by ``dysan flash``, ``dysan devices``, the CLI help, the C port
(``firmware/ports/nrf52840/board_regions.h`` is generated from :data:`NRF_LAYOUTS` by ``dysan codegen``) and
the XIAO link (whose region ASSERTs preprocess that header).

Why the layouts live here and not in the C header: ``dysan flash`` checks every byte it would write (UF2
block addresses must fall inside the application region, below the bundle), the tests check the linked
image against the same numbers, and the port reads them at run time -- three readers, one writer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

PAGE = 4096
"""nRF52840 flash page (erase unit)."""


@dataclass(frozen=True)
class FlashLayout:
    """Where an nRF52840 core puts the application and where the port keeps its persistent regions.

    ``app_start``: the first byte of the application (after the bootloader / SoftDevice); the application
    must end at or below ``bundle``. ``flash_end``: the first byte the port must leave alone (InternalFS on
    the Adafruit core, the end of flash on mbed)."""

    core: str
    """The Arduino core's macro that selects this layout in C (``ARDUINO_ARCH_MBED``...)."""
    app_start: int
    bundle: int
    bundle_size: int
    rf: int
    rf_size: int
    state: int
    state_size: int
    provision: int
    provision_size: int
    flash_end: int
    reserved_below: str
    """What sits below ``app_start``."""
    reserved_above: str
    """What sits at ``flash_end`` and above."""

    def regions(self) -> dict[str, tuple[int, int]]:
        """Name -> (start, size), in address order: app, BUNDLE, RF, STATE, PROVISION."""
        return {"app": (self.app_start, self.bundle - self.app_start), "bundle": (self.bundle, self.bundle_size),
                "rf": (self.rf, self.rf_size), "state": (self.state, self.state_size),
                "provision": (self.provision, self.provision_size)}

    def problems(self) -> list[str]:
        """Overlaps, gaps at the top, unaligned regions: [] when the layout is sound."""
        out = []
        regions = list(self.regions().items())
        for (name, (start, size)), (nxt, (nstart, _)) in itertools.pairwise(regions):
            if start + size > nstart:
                out.append(f"{name} (0x{start:05X}+0x{size:X}) overlaps {nxt} at 0x{nstart:05X}")
        last, (lstart, lsize) = regions[-1]
        if lstart + lsize > self.flash_end:
            out.append(f"{last} ends at 0x{lstart + lsize:05X}, above the flash end 0x{self.flash_end:05X}")
        for name, (start, size) in regions[1:]:
            if start % PAGE or size % PAGE or size <= 0:
                out.append(f"{name} is not a whole number of {PAGE}-byte pages")
        return out


NRF_LAYOUTS: dict[str, FlashLayout] = {
    "nano33ble": FlashLayout(
        core="ARDUINO_ARCH_MBED", app_start=0x10000, bundle=0x60000, bundle_size=0x99000, rf=0xF9000,
        rf_size=0x4000, state=0xFD000, state_size=0x2000, provision=0xFF000, provision_size=0x1000,
        flash_end=0x100000, reserved_below="bootloader 0x00000-0x0FFFF", reserved_above="end of flash"),
    "xiao-sense": FlashLayout(
        core="ARDUINO_NRF52_ADAFRUIT", app_start=0x27000, bundle=0x67000, bundle_size=0x7F000, rf=0xE6000,
        rf_size=0x4000, state=0xEA000, state_size=0x2000, provision=0xEC000, provision_size=0x1000,
        flash_end=0xED000, reserved_below="S140 7.3.0 SoftDevice 0x00000-0x26FFF",
        reserved_above="InternalFS 0xED000-0xF3FFF, UF2 bootloader from 0xF4000"),
}


@dataclass(frozen=True)
class UsbId:
    vid: int
    pid: int
    what: str


@dataclass(frozen=True)
class Board:
    """One ``dysan flash`` target."""

    target: str
    name: str
    pio_env: str | None
    """The PlatformIO env of platformio.ini (None: built with make)."""
    flash_with: str
    """One line: how ``dysan flash`` puts the image on it."""
    verified: str
    """One line: what runs where this is tested."""
    dry_run_only: bool
    usb_ids: tuple[UsbId, ...] = ()
    uf2_family: int | None = None
    """UF2 family id its bootloader accepts (None: no UF2 bootloader)."""

    @property
    def layout(self) -> FlashLayout | None:
        return NRF_LAYOUTS.get(self.target)


BOARDS: dict[str, Board] = {b.target: b for b in (
    Board("qemu", "emulated Cortex-M4F (QEMU mps2-an386)", None,
          "make -C firmware qemu (the bundle's C source linked in with --bundle), provisioning page placed by "
          "QEMU's loader, emulator started detached; prints socket://127.0.0.1:PORT",
          "runs: the tests boot it and talk to it", False),
    Board("host", "native build (POSIX)", None,
          "the same with the native build (restarted on the same port whenever its client leaves)",
          "runs", False),
    Board("nano33ble", "Arduino Nano 33 BLE Sense (Rev1 LSM9DS1 / Rev2 BMI270)", "nano33ble",
          "compiled-in identity, pio run, upload with bossac (pio run -t upload)",
          "dry run only: the mbed core (prebuilt libmbed.a) is not available offline", True,
          (UsbId(0x2341, 0x805A, "Arduino Nano 33 BLE (nRF52840)"),
           UsbId(0x2341, 0x005A, "Arduino Nano 33 BLE (nRF52840, bootloader)"))),
    Board("xiao-sense", "Seeed XIAO nRF52840 Sense (LSM6DS3TR-C)", "xiao_ble_sense",
          "compiled-in identity, pio run (or make -C firmware xiao without PlatformIO), UF2 copy to the "
          "bootloader drive or adafruit-nrfutil DFU",
          "image compiled, linked and map-checked here (make firmware-xiao, from ../shared/vendor); the UF2 is "
          "produced and checked; flashing is a dry run", True,
          (UsbId(0x2886, 0x8045, "Seeed XIAO nRF52840"),
           UsbId(0x2886, 0x0045, "Seeed XIAO nRF52840 (bootloader)")), uf2_family=0xADA52840),
    Board("esp32", "ESP32-DevKitC + MPU-6050", "esp32dev",
          "pio run, esptool.py write_flash of bootloader, partitions, app and provisioning page",
          "dry run only: no xtensa-esp32 toolchain here", True,
          (UsbId(0x10C4, 0xEA60, "CP210x USB-UART (typical ESP32 DevKit)"),
           UsbId(0x1A86, 0x7523, "CH340 USB-UART (typical ESP32 board)"),
           UsbId(0x1A86, 0x55D4, "CH9102 USB-UART (typical ESP32 board)"))),
)}

TARGETS: tuple[str, ...] = tuple(BOARDS)
EMULATED: tuple[str, ...] = tuple(t for t, b in BOARDS.items() if b.pio_env is None)
DRY_RUN_ONLY: tuple[str, ...] = tuple(t for t, b in BOARDS.items() if b.dry_run_only)
PIO_ENVS: dict[str, str] = {t: b.pio_env for t, b in BOARDS.items() if b.pio_env is not None}


def usb_guesses() -> dict[tuple[int, int], str]:
    """(VID, PID) -> what the port is, for every board of the table (``dysan devices``)."""
    return {(u.vid, u.pid): u.what for b in BOARDS.values() for u in b.usb_ids}


def board_for_usb(vid: int | None, pid: int | None) -> Board | None:
    """The board of the table behind a USB VID:PID (None: not one of ours, or not USB)."""
    for b in BOARDS.values():
        if any(u.vid == vid and u.pid == pid for u in b.usb_ids):
            return b
    return None


def _and(items: tuple[str, ...]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def help_text() -> str:
    """The targets block of ``dysan flash --help``."""
    lines = [f"  {t:<11} {b.flash_with}" for t, b in BOARDS.items()]
    lines += ["", f"VERIFIED ONLY AS A DRY RUN: {_and(DRY_RUN_ONLY)} (PlatformIO, the board tools and the\n"
              f"boards are not available where this is tested); {_and(EMULATED)} run for real in the tests."]
    lines += [f"  {t:<11} {b.verified}" for t, b in BOARDS.items() if b.dry_run_only]
    return "\n".join(lines)


def render_c_regions() -> str:
    """``firmware/ports/nrf52840/board_regions.h``: the layouts for the port and the XIAO link's ASSERTs.
    No ``u`` suffixes: the same macros are preprocessed into a GNU ld script."""
    lines = ["/* GENERATED by `dysan codegen` from host/dysan/boards.py (NRF_LAYOUTS) -- do not edit.",
             " * Plain hex (no u suffix): also preprocessed into the XIAO link's region checks (GNU ld). */",
             "#ifndef DYSAN_BOARD_REGIONS_H", "#define DYSAN_BOARD_REGIONS_H", ""]
    for i, (target, lay) in enumerate(NRF_LAYOUTS.items()):
        lines.append(f"#{'if' if i == 0 else 'elif'} defined({lay.core}) /* {target} */")
        for name, value, note in (
                ("APP_START", lay.app_start, lay.reserved_below),
                ("BUNDLE_ADDR", lay.bundle, ""), ("BUNDLE_SIZE", lay.bundle_size, f"{lay.bundle_size // 1024} KB"),
                ("RF_ADDR", lay.rf, ""), ("RF_SIZE", lay.rf_size, f"{lay.rf_size // 1024} KB"),
                ("STATE_ADDR", lay.state, ""), ("STATE_SIZE", lay.state_size, f"{lay.state_size // 1024} KB"),
                ("PROVISION_ADDR", lay.provision, ""),
                ("PROVISION_SIZE", lay.provision_size, f"{lay.provision_size // 1024} KB"),
                ("FLASH_END", lay.flash_end, lay.reserved_above)):
            lines.append(f"#define DYSAN_NRF_{name} 0x{value:06X}" + (f" /* {note} */" if note else ""))
    lines += ["#endif", "", f"#define DYSAN_NRF_PAGE {PAGE}", "", "#endif /* DYSAN_BOARD_REGIONS_H */", ""]
    return "\n".join(lines)
