"""The XIAO nRF52840 Sense image, built offline from the vendored Arduino core on every test run
(``make -C firmware xiao``, firmware/xiao.mk), its memory map checked against the regions the port and
``dysan flash`` assume (one definition: dysan.boards.NRF_LAYOUTS), the link-time overlap check shown to fail on
a deliberately oversized section, and the UF2 that ``dysan flash --target xiao-sense --dry-run`` writes
checked block by block against the linked image.

The build needs ../shared/vendor/xiao-nrf52840 and arm-none-eabi-gcc: those tests skip with a clear message
where either is absent. The vendor objects are cached (a static library keyed by tarball hash + flags), so
after the first run the build is a relink at most. The source-list, layout and UF2 unit tests need neither.
"""

from __future__ import annotations

import configparser
import glob
import importlib.util
import json
import re
import shlex
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from dysan import boards, codegen
from dysan.cli import main
from dysan.errors import DysanError
from dysan.tools import uf2

REPO = Path(__file__).resolve().parents[1]
FW = REPO / "firmware"
TARBALL = REPO.parent / "shared" / "vendor" / "xiao-nrf52840" / "seeed-nrf52-xiao.tar.xz"
XIAO = boards.NRF_LAYOUTS["xiao-sense"]
BUNDLE_ASSERT = "dysan: code + data reach the BUNDLE region"


def _size_table():
    spec = importlib.util.spec_from_file_location("xiao_size_table", FW / "boards" / "xiao" / "size_table.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


size_table = _size_table()


def _make(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-C", str(FW), "--no-print-directory", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


# ---- one list of sources and flags: platformio.ini's [env:xiao_ble_sense] == firmware/xiao.mk -----------------


def _pio_env(env: str) -> dict[str, list[str]]:
    """build_src_filter (as evaluated file list), build_flags and build_src_flags of a platformio.ini env, with
    PlatformIO's ${section.option} interpolation and [env] inheritance."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(REPO / "platformio.ini")

    def get(section: str, option: str) -> str:
        for sec in (section, "env"):
            if cp.has_option(sec, option):
                raw = cp.get(sec, option)
                return re.sub(r"\$\{(\w+)\.(\w+)\}", lambda m: get(m.group(1), m.group(2)), raw)
        return ""

    src_dir = REPO / cp.get("platformio", "src_dir")
    files: set[str] = set()
    for sign, pattern in re.findall(r"([+-])<([^>]+)>", get(f"env:{env}", "build_src_filter")):
        hits = {str(Path(p).relative_to(src_dir)) for p in glob.glob(str(src_dir / pattern))}
        files = files | hits if sign == "+" else files - hits
    flags = [f for line in get(f"env:{env}", "build_flags").splitlines() for f in shlex.split(line, comments=True)]
    src_flags = [f for line in get(f"env:{env}", "build_src_flags").splitlines()
                 for f in shlex.split(line, comments=True)]
    return {"srcs": sorted(files), "flags": flags, "src_flags": src_flags}


def _xiao_print() -> dict[str, list[str]]:
    r = _make("-s", "xiao-print", timeout=60)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition(": ")
        out[key] = shlex.split(value)
    return out


def test_sources_and_flags_match_platformio() -> None:
    """`pio run -e xiao_ble_sense` and `make -C firmware xiao` compile the same files with the same include
    folders and source flags (make adds -Werror), so the offline build rehearses the PlatformIO one."""
    pio, mk = _pio_env("xiao_ble_sense"), _xiao_print()
    assert pio["srcs"] and sorted(mk["srcs"]) == pio["srcs"]
    assert any(s.startswith("ports/nrf52840/") for s in pio["srcs"])
    pio_inc = [f.replace("-Ifirmware/", "-I", 1) for f in pio["flags"] if f.startswith("-I")]
    assert mk["inc"] == pio_inc
    assert mk["src_flags"] == pio["src_flags"]
    assert [f for f in pio["flags"] if not f.startswith("-I")] == []


# ---- the layouts: one definition, sound, generated into the port header -----------------------------------------


def test_layouts_are_sound_and_the_port_header_is_generated_from_them() -> None:
    for target, layout in boards.NRF_LAYOUTS.items():
        assert layout.problems() == [], target
    text = (REPO / "firmware/ports/nrf52840/board_regions.h").read_text()
    assert text == codegen.render("firmware/ports/nrf52840/board_regions.h"), "run `dysan codegen`"
    assert f"#define DYSAN_NRF_BUNDLE_ADDR 0x{XIAO.bundle:06X}" in text
    bad = boards.FlashLayout(**{**XIAO.__dict__, "rf": XIAO.rf - 0x1000})
    assert any("overlaps rf" in p for p in bad.problems())


def test_ports_readme_table_is_the_layouts() -> None:
    """firmware/ports/README.md's nrf52840 table shows the layouts of boards.py (docs cannot drift)."""
    text = (FW / "ports" / "README.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| (code|BUNDLE|RF|STATE|PROVISION) \|.*$", text, re.M)}
    for target, layout in boards.NRF_LAYOUTS.items():
        cells = {name: rows[name].split("|")[2 if target == "nano33ble" else 3] for name in rows}
        assert f"0x{layout.app_start:05X}-0x{layout.bundle - 1:05X}" in cells["code"], target
        for name, (start, size) in layout.regions().items():
            if name != "app":
                assert f"0x{start:05X}, {size // 1024} KB" in cells[name.upper()], (target, name)


# ---- the UF2 checker refuses what a bootloader must not be given ----------------------------------------------


def _mem(start: int, n: int) -> dict[int, int]:
    return {start + i: (i * 7) & 0xFF for i in range(n)}


def test_uf2_verify_accepts_an_image_and_refuses_each_fault() -> None:
    mem = _mem(0x27000, 600)
    image = uf2.blocks_from_memory(mem)
    s = uf2.verify(image, lo=XIAO.app_start, hi=XIAO.bundle, expect=mem)
    assert (s.blocks, s.start, s.end, s.family) == (3, 0x27000, 0x27300, 0xADA52840)

    def patched(block: int, offset: int, value: int) -> bytes:
        b = bytearray(image)
        struct.pack_into("<I", b, block * uf2.BLOCK + offset, value)
        return bytes(b)

    faults = {"family": patched(1, 28, 0xE48BFF56), "flags": patched(0, 8, 0), "block 2": patched(2, 20, 7),
              "payload": patched(0, 16, 476), "outside": patched(2, 12, XIAO.bundle),
              "twice": patched(1, 12, 0x27000), "aligned": patched(1, 12, 0x27080), "magic": patched(0, 0, 0)}
    for what, bad in faults.items():
        with pytest.raises(DysanError):
            uf2.verify(bad, lo=XIAO.app_start, hi=XIAO.bundle, expect=mem)
            pytest.fail(f"a UF2 with a bad {what} passed")
    with pytest.raises(DysanError, match="differs"):
        uf2.verify(image, lo=XIAO.app_start, hi=XIAO.bundle, expect={**mem, 0x27001: 0})
    with pytest.raises(DysanError, match="lacks"):
        part = uf2.blocks_from_memory({a: v for a, v in mem.items() if a < 0x27200})
        uf2.verify(part, lo=XIAO.app_start, hi=XIAO.bundle, expect=mem)
    with pytest.raises(DysanError, match="outside"):  # an image reaching the bundle region
        uf2.verify(uf2.blocks_from_memory(_mem(XIAO.bundle - 256, 512)), lo=XIAO.app_start, hi=XIAO.bundle)


# ---- the real image ------------------------------------------------------------------------------------------------


@dataclass
class XiaoBuild:
    elf: Path
    hex: Path
    output: str
    seconds: float


@pytest.fixture(scope="module")
def xiao() -> XiaoBuild:
    if not TARBALL.is_file():
        pytest.skip(f"{TARBALL} absent: the XIAO nRF52840 Sense build needs ../shared/vendor/xiao-nrf52840")
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (tools/install-sysdeps.sh)")
    t0 = time.monotonic()
    r = _make("-j2", "xiao", f"XIAO_TARBALL={TARBALL}")
    seconds = time.monotonic() - t0
    if r.returncode != 0:
        pytest.fail(f"make -C firmware xiao failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return XiaoBuild(FW / "build/xiao/dysan.elf", FW / "build/xiao/dysan.hex", r.stdout + r.stderr, seconds)


def test_xiao_image_builds_warning_free_with_a_size_table(xiao: XiaoBuild) -> None:
    """Our sources compile with -Wall -Wextra -Werror against the real core headers (vendor headers are
    -isystem), the image links (--unresolved-symbols=report-all) and the size table is printed."""
    assert xiao.elf.is_file() and xiao.hex.is_file()
    assert "app (code+data)" in xiao.output and "BUNDLE" in xiao.output and "heap" in xiao.output
    ours = [line for line in xiao.output.splitlines() if "warning:" in line and "build/vendor" not in line]
    assert ours == []


def test_no_undefined_symbols(xiao: XiaoBuild) -> None:
    assert [u for u in size_table.undefined(xiao.elf) if not u.startswith("w ")] == []


def test_map_matches_the_regions_of_the_port_and_dysan_flash(xiao: XiaoBuild) -> None:
    rep = size_table.report(xiao.elf)
    assert size_table.problems(rep) == []
    fl = rep["flash"]
    # the link's symbols (from the generated header) are the table's numbers
    assert fl["app"]["start"] == XIAO.app_start and fl["bundle"]["start"] == XIAO.bundle
    for name, (start, size) in XIAO.regions().items():
        if name != "app":
            assert (fl[name]["start"], fl[name]["size"]) == (start, size), name
    assert fl["end"] == XIAO.flash_end
    # every loadable byte (ELF program headers) in the application region, none overlapping
    flash_segs = [(p, f) for _v, p, f, _m in rep["segments"] if f]
    assert flash_segs and min(p for p, _ in flash_segs) == XIAO.app_start
    assert max(p + f for p, f in flash_segs) == rep["image_end"] <= XIAO.bundle
    # RAM: statics above the SoftDevice's 24 KB, a heap left for FreeRTOS tasks and Bluefruit
    assert rep["ram"]["softdevice"] == 0x6000 and rep["ram"]["heap"] > 32 * 1024
    # the application runs on the Arduino loop task's 4 KB: our code's static bound must fit in it
    assert 0 < rep["ram"]["app_stack_bound"] < rep["ram"]["loop_task_stack"] == 4096
    assert rep["app_stack_chain"][0].startswith("setup") and "dysan_app_main" in rep["app_stack_chain"][1]
    assert rep["split"][".text"]["ours"] > 0 and rep["split"][".text"]["vendor"] > 0
    # the map file agrees with the ELF on where .text starts
    assert re.search(r"^\.text\s+0x00027000\s", (xiao.elf.with_suffix(".map")).read_text(), re.M)
    json.loads((FW / "build/xiao/size.json").read_text())  # written by make, readable


def _probe(kind: str, nbytes: int) -> subprocess.CompletedProcess:
    return _make("xiao-probe", f"PROBE={kind}", f"PROBE_BYTES={nbytes}", f"XIAO_TARBALL={TARBALL}", timeout=300)


@pytest.mark.parametrize("kind", ["rodata", "data"])
def test_oversized_section_fails_the_link(xiao: XiaoBuild, kind: str) -> None:
    """A section that takes the image past the BUNDLE start fails at link time. The .data case matters: the
    core's FLASH region runs to 0xED000 and its RAM checks pass, so only the region ASSERT catches it. The
    same probe 8 KB smaller links, so the ASSERT is the boundary and not a blanket failure."""
    rep = size_table.report(xiao.elf)
    spare = XIAO.bundle - rep["image_end"]
    if kind == "data":
        assert spare + 4096 < rep["ram"]["heap"], "the .data probe would overflow RAM first"
    over = _probe(kind, spare + 4096)
    assert over.returncode != 0 and BUNDLE_ASSERT in over.stderr, over.stderr[-2000:]
    under = _probe(kind, max(spare - 8192, 16))
    assert under.returncode == 0, under.stderr[-2000:]


def test_flags_are_the_vendor_platforms(xiao: XiaoBuild) -> None:
    """The board defines of xiao.mk are those of the core's boards.txt (xiaonRF52840Sense) and platform.txt."""
    vdirs = sorted((FW / "build/vendor").glob("xiao-*/src/vendor/seeed-nrf52"))
    assert vdirs
    boards_txt = dict(line.split("=", 1) for line in (vdirs[0] / "boards.txt").read_text().splitlines()
                      if line.startswith("xiaonRF52840Sense.") and "=" in line)
    b = {k.removeprefix("xiaonRF52840Sense."): v for k, v in boards_txt.items()}
    defs = " ".join(_xiao_print()["defs"])
    assert f"-DF_CPU={b['build.f_cpu']}" in defs and f"-DARDUINO_{b['build.board']}" in defs
    assert f"-DUSB_VID={b['build.vid']}" in defs and f"-DUSB_PID={b['build.pid']}" in defs
    assert "-DNRF52840_XXAA" in b["build.extra_flags"] and "-DNRF52840_XXAA" in defs
    assert b["build.ldscript"] == "nrf52840_s140_v7.ld"
    platform = (vdirs[0] / "platform.txt").read_text()
    nrf = re.search(r"^build\.flags\.nrf=(.*)$", platform, re.M)
    assert nrf is not None
    for d in re.findall(r"-D\w+(?:=\w+)?", nrf.group(1)):
        assert d in defs, d


def test_dry_run_writes_a_uf2_checked_against_the_image(xiao: XiaoBuild, capsys, tmp_path, monkeypatch) -> None:
    """`dysan flash --target xiao-sense --dry-run` (no PlatformIO here) packages the built image as UF2; every
    block is checked here independently of the converter: against objcopy's binary of the ELF."""
    monkeypatch.setenv("DYSAN_KEYS", str(tmp_path / "keys"))
    js = tmp_path / "plan.json"
    assert main(["flash", "--target", "xiao-sense", "--builder", "make", "--dry-run", "--uf2-drive",
                 str(tmp_path / "XIAO-SENSE"), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "$ make -C firmware -j2 xiao" in out and "# UF2: wrote" in out, out
    assert not (tmp_path / "keys").exists() and not (tmp_path / "XIAO-SENSE").exists()
    image = (FW / "build/xiao/dysan.uf2").read_bytes()
    binary = tmp_path / "dysan.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "--gap-fill", "0xff", str(xiao.elf), str(binary)],
                   check=True)
    data = binary.read_bytes()
    data += b"\xff" * (-len(data) % 256)
    n = len(data) // 256
    assert len(image) == n * 512
    for i in range(n):
        blk = image[i * 512:(i + 1) * 512]
        m0, m1, flags, addr, size, no, total, family = struct.unpack_from("<8I", blk)
        assert (m0, m1, struct.unpack_from("<I", blk, 508)[0]) == (0x0A324655, 0x9E5D5157, 0x0AB16F30)
        assert flags & 0x2000 and family == 0xADA52840
        assert (addr, size, no, total) == (XIAO.app_start + 256 * i, 256, i, n)
        assert blk[32:288] == data[256 * i:256 * (i + 1)]
        assert addr + 256 <= XIAO.bundle
    assert json.loads(js.read_text())["package"][0].startswith("# UF2: wrote")
