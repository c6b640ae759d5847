"""``dysan flash``: build the firmware, provision the device key, put both on the target.

A flash is a :class:`FlashPlan` -- an ordered list of steps (commands to run, files to write, an emulator to
start, a bundle to upload over the link) -- built first and then either printed (``--dry-run``) or executed.
Building the plan touches nothing, so the dry run shows exactly what would run.

Targets and what is verified where: the boards table (:mod:`dysan.boards`) -- targets, PlatformIO envs,
USB ids and what runs here -- is the one list; ``dysan flash --help`` prints it. In short: qemu and host
run (the tests boot them and talk to them); nano33ble, xiao-sense and esp32 are dry runs only (no board
here), but the XIAO image itself is compiled, linked and map-checked from the vendored core
(``make -C firmware xiao``, used when PlatformIO is not installed) and its dry run produces and checks the
UF2 file every byte of which the bootloader would write (:func:`package_uf2`).

Why the nRF52840 boards get a compiled-in identity: their stock bootloaders (bossac on the Nano 33 BLE,
UF2 / serial DFU on the XIAO) write only the application, not the PROVISION page; the ports fall back to
``dysan_provision_image`` when the page is blank (firmware/ports/README.md). The generated file holds the
key, lives in ``firmware/build/generated/`` (ignored by git) and is never printed. The ESP32 gets the real
page: esptool writes any flash offset, here the ``dysan_prov`` partition.

Why a bundle build goes to its own build folder (``firmware/build/flash-<bundle hash>``): a bundle linked
into the shared ``firmware/build`` would become every test's default bundle (the host build copies it into
each fresh region store), so the bundle's ``dysan_bundle.c`` goes to that folder's ``generated/``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .. import boards
from ..device.provision import SECRET_UMASK, Identity, build_page, render_c_image, tighten_tree, write_secret
from ..errors import DysanError
from ..rundir import BundleDir
from . import emulator, keystore, uf2

REPO = Path(__file__).resolve().parents[3]
TARGETS = boards.TARGETS
EMULATED = boards.EMULATED
PIO_ENVS = boards.PIO_ENVS
DRY_RUN_ONLY = boards.DRY_RUN_ONLY
XIAO_BUILD = Path("firmware/build/xiao")
"""Where ``make -C firmware xiao`` puts dysan.elf/.hex (and the dry run the UF2), relative to the repo."""
ESP32_BOOTLOADER_OFFSET = 0x1000
"""Where the ESP32 (classic) ROM loads the second-stage bootloader from."""
ESP32_PARTITION_TABLE_OFFSET = 0x8000


@dataclass
class Step:
    """One thing a flash does. ``kind``: run (a command), write (a file), copy (to a drive), emulate (start the
    emulator), upload (the bundle over the link)."""

    kind: str
    text: str
    argv: list[str] | None = None
    cwd: Path | None = None
    path: Path | None = None
    secret: bool = False

    def show(self) -> str:
        if self.kind in ("run", "emulate") and self.argv:
            where = f"(cd {shlex.quote(str(self.cwd))} && " if self.cwd and self.cwd != REPO else ""
            cmd = " ".join(shlex.quote(a) for a in self.argv)
            return f"{where}{cmd}{')' if where else ''}"
        return self.text


@dataclass
class FlashPlan:
    target: str
    steps: list[Step]
    key_file: Path | None
    """The key file (None: a new identity will be generated and stored in the key store)."""
    image: Path | None = None
    bundle: Path | None = None
    port: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def dry_run_only(self) -> bool:
        return self.target in DRY_RUN_ONLY

    def lines(self) -> list[str]:
        out = [f"# dysan flash --target {self.target}" + (f" (bundle {self.bundle})" if self.bundle else "")]
        if self.key_file is None:
            out.append(f"# key: a new device key, stored in {keystore.key_dir()}/<device-id>.key (0600)")
        else:
            out.append(f"# key: {self.key_file}")
        for i, st in enumerate(self.steps, 1):
            prefix = "$ " if st.kind in ("run", "emulate") else "# "
            out.append(f"{prefix}{st.show()}" if prefix == "$ " else f"# {i}. {st.show()}")
        out += [f"# note: {n}" for n in self.notes]
        return out


@dataclass
class FlashOptions:
    target: str
    bundle: Path | None = None
    key_file: Path | None = None
    device_id: str | None = None
    port: str | None = None
    """Boards: the serial port to upload through (and to upload the bundle over)."""
    uf2_drive: Path | None = None
    method: str | None = None
    """xiao-sense: 'uf2' (copy to the bootloader drive) or 'nrfutil' (serial DFU)."""
    listen_port: int | None = None
    icount: int | None = 0
    jobs: int = 2
    builder: str | None = None
    """xiao-sense: 'pio' (PlatformIO) or 'make' (make -C firmware xiao, from ../shared/vendor); default: pio
    when it is installed, else make."""


def boards_root() -> Path:
    """Where the boards' provisioning page files are written (mode 0700 folders, 0600 files)."""
    return emulator.state_root().parent / "boards"


def bundle_id(bundle: Path) -> str:
    """First 8 hex digits of the bundle image's SHA-256 (names its build folder)."""
    return hashlib.sha256(BundleDir(bundle).image.read_bytes()).hexdigest()[:8]


def _check_bundle(bundle: Path) -> None:
    bd = BundleDir(bundle)
    for path in (bd.image, bd.manifest, bd.c_source):
        if not path.is_file():
            raise DysanError(f"{bundle}: no {path.name} (export a bundle with `dysan export RUN --out {bundle}`)")
    manifest = json.loads(bd.manifest.read_text())
    want = manifest.get("files", {}).get(bd.C_SOURCE)
    if want and hashlib.sha256(bd.c_source.read_bytes()).hexdigest() != want:
        raise DysanError(f"{bd.c_source} does not match the manifest (edited or stale export?)")


def esp32_offsets(partitions_csv: Path) -> dict[str, int]:
    """Partition name -> offset, from the ESP32 partition table CSV the PlatformIO env uses."""
    out = {}
    text = "\n".join(line for line in partitions_csv.read_text().splitlines() if not line.lstrip().startswith("#"))
    for row in csv.reader(io.StringIO(text)):
        cells = [c.strip() for c in row]
        if len(cells) >= 4 and cells[0]:
            out[cells[0]] = int(cells[3], 0)
    return out


def make_plan(opts: FlashOptions, repo: Path = REPO) -> FlashPlan:
    """The steps of a flash (nothing is touched; see the module doc)."""
    t = opts.target
    if t not in TARGETS:
        raise DysanError(f"unknown target {t!r} (one of {', '.join(TARGETS)})")
    bundle = Path(opts.bundle) if opts.bundle is not None else None
    if bundle is not None:
        _check_bundle(bundle)
    key_file = Path(opts.key_file).expanduser() if opts.key_file is not None else None
    if key_file is None and opts.device_id is not None:
        key_file = keystore.key_path(bytes.fromhex(opts.device_id))
    steps: list[Step] = []
    plan = FlashPlan(t, steps, key_file, bundle=bundle, port=opts.port)
    # the device id names the state folders; known when the key exists (reading it prints nothing)
    dev = keystore.load(key_file).device_id_hex if key_file is not None and key_file.exists() else "<device-id>"
    fw = repo / "firmware"
    if t in EMULATED:
        build = f"build/flash-{bundle_id(bundle)}" if bundle is not None else "build"
        if bundle is not None:
            gen = fw / build / "generated" / BundleDir.C_SOURCE
            steps.append(Step("write", f"copy {BundleDir(bundle).c_source} to {gen} (the default bundle, linked in)",
                              path=gen))
        steps.append(Step("run", "build", ["make", "-C", "firmware", f"BUILD={build}", f"-j{opts.jobs}",
                                           "qemu" if t == "qemu" else "host"], cwd=repo))
        plan.image = fw / build / ("qemu-m4/dysan.elf" if t == "qemu" else "host/dysan")
        state = str(emulator.state_root() / dev)
        steps.append(Step("write", f"write the provisioning page to {state}/provision.bin (0600, holds the key)",
                          secret=True))
        port = str(opts.listen_port) if opts.listen_port else "PORT"
        if t == "qemu":
            argv = emulator.qemu_argv(plan.image, 0, Path(f"{state}/provision.bin"), opts.icount,
                                      address=None if plan.image.is_file() else "<__dysan_provision_start>")
            argv = [a.replace("127.0.0.1:0,", f"127.0.0.1:{port},") for a in argv]
        else:
            argv = emulator.host_argv(plan.image, 0, Path(f"{state}/provision.bin"), Path(f"{state}/regions.bin"))
            argv[2] = port
        steps.append(Step("emulate", "start the emulator (detached) and print its serial URL", argv))
        return plan

    env = PIO_ENVS[t]
    pio_build = repo / ".pio" / "build" / env
    upload_port = opts.port or "PORT"
    if t in ("nano33ble", "xiao-sense"):
        steps.append(Step("write", "write firmware/build/generated/dysan_identity.c: the device identity compiled "
                          "into the image (the bootloader writes only the application; never commit this file)",
                          path=fw / "build" / "generated" / "dysan_identity.c", secret=True))
    builder = opts.builder or ("make" if t == "xiao-sense" and shutil.which("pio") is None else "pio")
    if builder not in ("pio", "make") or (builder == "make" and t != "xiao-sense"):
        raise DysanError(f"--builder {builder!r}: pio, or make for xiao-sense")
    if builder == "make":
        steps.append(Step("run", "build (the vendored Arduino core, no PlatformIO)",
                          ["make", "-C", "firmware", f"-j{opts.jobs}", "xiao"], cwd=repo))
        hex_file = repo / XIAO_BUILD / "dysan.hex"
        plan.notes.append("built with make -C firmware xiao (PlatformIO not installed): the same sources and "
                          "flags as platformio.ini's xiao_ble_sense, from ../shared/vendor/xiao-nrf52840")
    else:
        steps.append(Step("run", "build", ["pio", "run", "-e", env], cwd=repo))
        hex_file = pio_build / "firmware.hex"
    if t == "xiao-sense":
        plan.image = hex_file
    if t == "nano33ble":
        steps.append(Step("run", "upload (bossac, after PlatformIO's 1200-baud touch)",
                          ["pio", "run", "-e", env, "-t", "upload", "--upload-port", upload_port], cwd=repo))
    elif t == "xiao-sense":
        method = opts.method or ("uf2" if opts.uf2_drive is not None else "nrfutil")
        if method == "uf2":
            uf2_file = hex_file.with_suffix(".uf2")
            steps.append(Step("write", f"convert {hex_file} to {uf2_file} (UF2, family "
                              f"0x{uf2.FAMILY_NRF52840:08X}, checked)", path=uf2_file))
            drive = opts.uf2_drive or Path("/media/$USER/XIAO-SENSE")
            steps.append(Step("copy", f"copy {uf2_file} to {drive}/ (double-tap reset first: the bootloader drive)",
                              path=drive))
        elif method == "nrfutil":
            pkg = hex_file.with_suffix(".zip")
            steps.append(Step("run", "DFU package", ["adafruit-nrfutil", "dfu", "genpkg", "--dev-type", "0x0052",
                                                     "--application", str(hex_file), str(pkg)]))
            steps.append(Step("run", "serial DFU", ["adafruit-nrfutil", "--verbose", "dfu", "serial", "--package",
                                                    str(pkg), "-p", upload_port, "-b", "115200", "--singlebank",
                                                    "--touch", "1200"]))
        else:
            raise DysanError(f"--method {method!r}: uf2 or nrfutil")
    else:  # esp32
        offsets = esp32_offsets(fw / "ports" / "esp32" / "partitions.csv")
        for name in ("factory", "dysan_prov"):
            if name not in offsets:
                raise DysanError(f"firmware/ports/esp32/partitions.csv has no {name} partition")
        prov = boards_root() / dev / "provision.bin"
        steps.append(Step("write", f"write the provisioning page to {prov} (0600, holds the key)", secret=True))
        steps.append(Step("run", "flash bootloader, partition table, application and provisioning page", [
            "esptool.py", "--chip", "esp32", "--port", upload_port, "--baud", "460800", "--before", "default_reset",
            "--after", "hard_reset", "write_flash", "-z", "--flash_mode", "dio", "--flash_freq", "40m",
            "--flash_size", "detect",
            f"0x{ESP32_BOOTLOADER_OFFSET:x}", str(pio_build / "bootloader.bin"),
            f"0x{ESP32_PARTITION_TABLE_OFFSET:x}", str(pio_build / "partitions.bin"),
            f"0x{offsets['factory']:x}", str(pio_build / "firmware.bin"),
            f"0x{offsets['dysan_prov']:x}", str(prov)], cwd=repo))
    if bundle is not None:
        image = BundleDir(bundle).image
        steps.append(Step("upload", f"upload {image} over {upload_port} (signed BUNDLE_BEGIN/COMMIT, "
                          "after the board boots)", path=image))
    else:
        plan.notes.append("no --bundle: the board runs no sanitizer until a bundle is uploaded")
    plan.notes.append("PlatformIO and the board tools are not run in CI: this path is verified as a dry run only")
    return plan


def package_uf2(hex_file: Path, uf2_file: Path, target: str = "xiao-sense") -> uf2.Uf2Summary:
    """Converts the built image to UF2 and checks every block before it is kept (:func:`uf2.verify`): the
    board's family id, addresses inside the application region of its layout (above the SoftDevice, below
    the BUNDLE region: the bootloader must not touch the regions), the block count, and that the payloads
    are exactly the image's bytes. Used by the real flash and by the dry run, which writes nothing else."""
    board = boards.BOARDS[target]
    layout = board.layout
    if board.uf2_family is None or layout is None:
        raise DysanError(f"{target} has no UF2 bootloader")
    if not hex_file.is_file():
        raise DysanError(f"{hex_file}: not built (make firmware-xiao, or the plan's build step)")
    mem = uf2.parse_hex(hex_file.read_text())
    if not mem:
        raise DysanError(f"{hex_file}: holds no data")
    image = uf2.blocks_from_memory(mem, board.uf2_family)
    summary = uf2.verify(image, family=board.uf2_family, lo=layout.app_start, hi=layout.bundle, expect=mem)
    uf2_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = uf2_file.with_suffix(".uf2.tmp")
    tmp.write_bytes(image)
    tmp.replace(uf2_file)
    return summary


def dry_run_package(plan: FlashPlan) -> list[str]:
    """What the dry run of a UF2 board produces without a board: the UF2 of the image built now (identity
    not regenerated), checked byte for byte. Lines for the plan's output; [] for other targets."""
    if plan.target != "xiao-sense" or plan.image is None:
        return []
    uf2_file = plan.image.with_suffix(".uf2")
    if not plan.image.is_file():
        return [f"# UF2: {plan.image} not built yet (make firmware-xiao), so the UF2 was not produced"]
    summary = package_uf2(plan.image, uf2_file, plan.target)
    return [f"# UF2: wrote {uf2_file}: {summary.line()}; checked: family, addresses inside the application "
            f"region, block numbering, payload = image"]


@dataclass
class FlashResult:
    plan: FlashPlan
    identity: Identity
    key_file: Path
    key_created: bool
    emulator: emulator.Emulator | None = None

    @property
    def url(self) -> str | None:
        return self.emulator.url if self.emulator is not None else None

    def as_dict(self) -> dict:
        return {"target": self.plan.target, "device_id": self.identity.device_id_hex, "key_file": str(self.key_file),
                "key_created": self.key_created, "image": str(self.plan.image) if self.plan.image else None,
                "bundle": str(self.plan.bundle) if self.plan.bundle else None, "url": self.url,
                "emulator": self.emulator.as_dict() if self.emulator else None}


def execute(plan: FlashPlan, opts: FlashOptions, *, on_step=None, runner=subprocess.run) -> FlashResult:
    """Runs the plan: checks its tools are there, resolves (or generates) the key, then every step in order."""
    check_tools(plan)
    identity, key_file, created = keystore.resolve(plan.key_file, create=True) if plan.key_file is not None \
        else keystore.resolve(None)
    result = FlashResult(plan, identity, key_file, created)
    # A build that compiles the key in (dysan_identity.c) writes it into objects and images: build under a
    # umask that keeps them ours (0600 / 0700), and tighten what an earlier build left with wider modes.
    key_in_build = any(st.path is not None and st.path.name == "dysan_identity.c" for st in plan.steps)
    old_umask = os.umask(SECRET_UMASK) if key_in_build else None
    try:
        for st in plan.steps:
            if on_step is not None:
                on_step(st)
            if st.kind == "run":
                _run(st, runner)
            elif st.kind == "write":
                _write(st, plan, identity)
            elif st.kind == "copy":
                _copy(st, plan)
            elif st.kind == "emulate":
                assert plan.image is not None
                result.emulator = emulator.start(plan.target, plan.image, identity, port=opts.listen_port,
                                                 icount=opts.icount)
            elif st.kind == "upload":
                _upload(plan, key_file)
    finally:
        if old_umask is not None:
            os.umask(old_umask)
            for st in plan.steps:
                if st.path is not None and st.path.name == "dysan_identity.c":
                    tighten_tree(st.path.parent)
            if plan.target in PIO_ENVS:
                tighten_tree(REPO / ".pio" / "build" / PIO_ENVS[plan.target])
    return result


def check_tools(plan: FlashPlan) -> None:
    """Fails (one line) when a command of the plan is not installed, or the UF2 drive it copies to is not
    mounted -- before anything is written, built or a key made."""
    for st in plan.steps:
        if st.kind == "run" and st.argv and shutil.which(st.argv[0]) is None:
            raise DysanError(_missing_tool(st.argv[0]))
        if st.kind == "copy" and st.path is not None and not st.path.is_dir():
            raise DysanError(f"{st.path}: no such drive (double-tap reset to show the XIAO's UF2 drive); "
                             "--dry-run shows and checks what would be copied")


def _run(st: Step, runner) -> None:
    assert st.argv is not None
    if shutil.which(st.argv[0]) is None:
        raise DysanError(_missing_tool(st.argv[0]))
    r = runner(st.argv, cwd=st.cwd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise DysanError(f"{' '.join(st.argv[:4])}... failed (status {r.returncode}):\n{tail}")


def _missing_tool(tool: str) -> str:
    boards_extra = " (the board tools: pip install -e '.[boards]')"
    hint = {"pio": boards_extra, "esptool.py": boards_extra, "adafruit-nrfutil": boards_extra}.get(tool, "")
    if tool in ("pio", "esptool.py", "adafruit-nrfutil"):
        return f"{tool} not found{hint}; this target is verified here only as a dry run (dysan flash --dry-run)"
    return f"{tool} not found{hint}"


def _write(st: Step, plan: FlashPlan, identity: Identity) -> None:
    if st.path is not None and st.path.name == BundleDir.C_SOURCE:
        assert plan.bundle is not None
        st.path.parent.mkdir(parents=True, exist_ok=True)
        src = BundleDir(plan.bundle).c_source.read_bytes()
        if not st.path.exists() or st.path.read_bytes() != src:
            st.path.write_bytes(src)
    elif st.path is not None and st.path.name == "dysan_identity.c":
        _write_secret(st.path, render_c_image(identity).encode())
    elif st.path is not None and st.path.suffix == ".uf2":
        package_uf2(st.path.with_suffix(".hex"), st.path, plan.target)
    elif "provision.bin" in st.text and plan.target == "esp32":
        d = boards_root() / identity.device_id_hex
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = d / "provision.bin"
        _write_secret(path, build_page(identity))
        for other in plan.steps:  # the esptool command names the real file
            if other.argv:
                other.argv = [str(path) if "provision.bin" in a else a for a in other.argv]
    # the emulators' provisioning page is written by emulator.start()


def _write_secret(path: Path, data: bytes) -> None:
    write_secret(path, data)  # 0600 even over an existing, looser file


def _copy(st: Step, plan: FlashPlan) -> None:
    assert st.path is not None
    if not st.path.is_dir():
        raise DysanError(f"{st.path}: no such drive (double-tap reset to show the XIAO's UF2 drive)")
    src = next(s.path for s in plan.steps if s.path is not None and s.path.suffix == ".uf2")
    shutil.copyfile(src, st.path / src.name)


def _upload(plan: FlashPlan, key_file: Path) -> None:
    from .link import DeviceLink

    if plan.port is None:
        raise DysanError("uploading the bundle needs --port (the board's serial port)")
    assert plan.bundle is not None
    with DeviceLink(plan.port, key_file=key_file, require_key=True, timeout=30.0) as link:
        assert link.session is not None
        link.session.upload_bundle(BundleDir(plan.bundle).image.read_bytes())


def stop_emulators(device_id: str | None = None) -> list[emulator.Emulator]:
    with contextlib.suppress(FileNotFoundError):
        return emulator.stop(device_id)
    return []
