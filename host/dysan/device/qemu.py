"""Run the firmware: in QEMU (``mps2-an386``, Cortex-M4F) or as a native host process, behind one serial API.

Both launchers are context managers that start the firmware, connect to its link through pyserial's
``socket://`` URL and always stop the process on exit. A test or a host tool written against
``device.serial`` therefore runs unchanged on the emulated chip and on the fast native build.

QEMU specifics (why the command line looks the way it does):

* ``-serial tcp:127.0.0.1:PORT,server=on,wait=on``: QEMU does not start the CPU until we connect, so the
  firmware's first bytes (its banner) are never lost.
* ``-icount shift=0``: one instruction = one virtual nanosecond, so the firmware's timers count executed
  instructions and ``dysan_port_cycles()`` is an instruction counter (the DWT cycle counter is not emulated).
* Real time (:mod:`.realtime`): ``-icount shift=4,sleep=off``: one instruction = 16 virtual ns, a 62.5 MHz
  core at one instruction per cycle, against the emulated IMU's 50 Hz timer; ``sleep=off`` lets virtual time
  jump over the core's idle periods, so ten minutes of a wearable's life take seconds, not ten minutes.
* The provisioning page is placed at boot by QEMU's generic loader at the address the ELF exports as
  ``__dysan_provision_start``, so a key is supplied without rebuilding the image.
* ``state_file``: the STATE region (auth counter, settings) lives in a host file, as flash would keep it across
  a power cycle: the loader places the file at ``__dysan_state_start``, and a descriptor naming it at
  ``__dysan_qemu_flashfile``; the firmware (``firmware/ports/qemu-m4/flash_qemu.c``) then writes every STATE
  write and erase back to the file through ARM semihosting (``-semihosting-config enable=on,target=native``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

import serial

from ..errors import DysanError
from .provision import Identity, build_page

QEMU_BINARY = "qemu-system-arm"
QEMU_MACHINE = "mps2-an386"
PROVISION_SYMBOL = "__dysan_provision_start"
STATE_SYMBOLS = ("__dysan_state_start", "__dysan_state_size", "__dysan_qemu_flashfile")
FLASHFILE_MAGIC = 0x46515944
"""First word of the STATE backing-file descriptor ("DYQF"; DYSAN_QEMU_FLASHFILE_MAGIC in flash_qemu.h)."""
FLASHFILE_PATH_MAX = 240
SEMIHOSTING_ARGS = ("-semihosting-config", "enable=on,target=native")
_LISTEN_PREFIX = "dysan-host: listening on 127.0.0.1:"


def qemu_available() -> bool:
    """True when ``qemu-system-arm`` is on PATH (tests skip with a reason otherwise)."""
    return shutil.which(QEMU_BINARY) is not None


def free_loopback_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (QEMU must be told a port; races are retried)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def elf_symbols(path: str | Path, names: Iterable[str] | None = None) -> dict[str, int]:
    """Values of the symbols of a 32-bit little-endian ELF (all, or only ``names``).

    Small on purpose: the launcher needs a few linker-exported addresses (the provisioning page) and must not
    depend on binutils being installed on the machine that only runs QEMU.
    """
    p = Path(path)
    data = p.read_bytes()
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise DysanError(f"{p}: not a 32-bit little-endian ELF file")
    (e_shoff,) = struct.unpack_from("<I", data, 0x20)
    e_shentsize, e_shnum = struct.unpack_from("<HH", data, 0x2E)
    wanted = set(names) if names is not None else None
    found: dict[str, int] = {}
    sections = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        if off + 40 > len(data):
            raise DysanError(f"{p}: truncated ELF section table")
        sections.append(struct.unpack_from("<IIIIIIIIII", data, off))
    for sh in sections:
        sh_type, sh_offset, sh_size, sh_link, sh_entsize = sh[1], sh[4], sh[5], sh[6], sh[9]
        if sh_type != 2 or sh_entsize != 16:  # SHT_SYMTAB
            continue
        str_off, str_size = sections[sh_link][4], sections[sh_link][5]
        strtab = data[str_off : str_off + str_size]
        for j in range(sh_size // 16):
            st_name, st_value = struct.unpack_from("<II", data, sh_offset + 16 * j)
            end = strtab.find(b"\0", st_name)
            name = strtab[st_name:end].decode("ascii", "replace")
            if name and (wanted is None or name in wanted):
                found[name] = st_value
    return found


def state_file_loads(elf: str | Path, state_file: str | Path) -> tuple[list[tuple[bytes | Path, int]], list[str]]:
    """What makes the QEMU image keep its STATE region in ``state_file``: loader images and QEMU arguments.

    The file is created erased (0xFF, the region's size) when missing; one of another size is refused (it was
    made for another memory map). Returns ``([(file, state address), (descriptor, descriptor address)],
    semihosting arguments)``.
    """
    syms = elf_symbols(elf, STATE_SYMBOLS)
    missing = [n for n in STATE_SYMBOLS if n not in syms]
    if missing:
        raise DysanError(f"{elf}: no {', '.join(missing)} (an image without file-backed STATE; rebuild it)")
    path = Path(state_file).expanduser().resolve()
    size = syms["__dysan_state_size"]
    raw = str(path).encode()
    if "," in str(path) or len(raw) > FLASHFILE_PATH_MAX:
        raise DysanError(f"{path}: a STATE file path must have no ',' and at most {FLASHFILE_PATH_MAX} bytes")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(b"\xff" * size)
    elif path.stat().st_size != size:
        raise DysanError(f"{path}: {path.stat().st_size} bytes, but this image's STATE region has {size} "
                         "(made for another memory map: move it away to start from an erased region)")
    desc = struct.pack("<II", FLASHFILE_MAGIC, len(raw)) + raw + b"\0"
    return [(path, syms["__dysan_state_start"]), (desc, syms["__dysan_qemu_flashfile"])], list(SEMIHOSTING_ARGS)


class _ProcessDevice:
    """Common part of the launchers: a child process whose link is a loopback TCP socket.

    stderr goes to a temporary file, not a pipe: a chatty child can never block on a full pipe, and the text
    is still there to quote when something fails.
    """

    def __init__(self, connect_timeout: float, read_timeout: float | None, connect: bool = True) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.connect = connect
        self.proc: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._serial: serial.SerialBase | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="dysan-dev-")
        self.workdir = Path(self._tmp.name)
        self._stderr_path = self.workdir / "stderr.txt"
        self._stderr_file = None

    # -- public API --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The pyserial URL of the link (``socket://127.0.0.1:PORT``), for tools that open their own."""
        if self.port is None:
            raise DysanError("device not started")
        return f"socket://127.0.0.1:{self.port}"

    @property
    def serial(self) -> serial.SerialBase:
        """The open link (pyserial object): ``read``/``write`` talk to the firmware."""
        if self._serial is None:
            raise DysanError("device not started" if self.connect else "started with connect=False: open url")
        return self._serial

    def stderr_text(self) -> str:
        """What the child wrote to stderr so far (QEMU's errors, the host build's diagnostics)."""
        try:
            return self._stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self) -> None:
        """Closes the link and stops the child, whatever state it is in."""
        if self._serial is not None:
            with contextlib.suppress(Exception):
                self._serial.close()
            self._serial = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def __enter__(self) -> _ProcessDevice:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        died = self.proc is not None and self.proc.poll() is not None
        self.close()
        if exc is not None and (died or self.stderr_text().strip()):
            exc.add_note(self._failure_note("device process " + ("had exited" if died else "stopped")))
        self._tmp.cleanup()

    def start(self) -> None:
        raise NotImplementedError

    # -- helpers -------------------------------------------------------------------------------------
    def _failure_note(self, what: str) -> str:
        rc = self.proc.returncode if self.proc is not None else None
        text = self.stderr_text().strip()
        tail = "\n".join(text.splitlines()[-20:]) if text else "(no stderr output)"
        return f"{what} (exit status {rc}); its stderr:\n{tail}"

    def _spawn(self, argv: Sequence[str]) -> None:
        self._stderr_file = open(self._stderr_path, "wb")  # noqa: SIM115 -- closed in close()
        self.proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr_file
        )

    def _wait_stderr(self, marker: str, what: str) -> str:
        """The first stderr line containing ``marker``, waiting for it (or for the child to die)."""
        deadline = time.monotonic() + self.connect_timeout
        while time.monotonic() < deadline:
            for line in self.stderr_text().splitlines():
                if marker in line:
                    return line
            if self.proc is not None and self.proc.poll() is not None:
                raise DysanError(self._failure_note(f"the device process exited before {what}"))
            time.sleep(0.01)
        raise DysanError(self._failure_note(f"no {what} within {self.connect_timeout} s"))

    def _connect(self, port: int) -> None:
        """Connects to the child's server socket, retrying until it listens (or dies, or time runs out)."""
        deadline = time.monotonic() + self.connect_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise DysanError(self._failure_note("the device process exited before accepting the link"))
            try:
                link = open_socket_link(port, self.read_timeout)
            except (serial.SerialException, OSError) as exc:
                last = exc
                time.sleep(0.02)
                continue
            self._serial = link
            self.port = port
            return
        raise DysanError(
            self._failure_note(f"no link on 127.0.0.1:{port} after {self.connect_timeout} s ({last})")
        )


def open_socket_link(port: int, timeout: float | None) -> serial.SerialBase:
    """pyserial's ``socket://127.0.0.1:PORT``, without losing the first bytes the device sends.

    pyserial's socket ``open()`` ends with ``reset_input_buffer()``, which reads and drops whatever already
    arrived: the banner a firmware sends the moment the link connects (QEMU starts the CPU when we connect;
    the host build writes right after ``accept``). So the reset is skipped during ``open()`` only.
    A connection to our own ephemeral port (TCP self-connect, possible while retrying before QEMU listens)
    is refused too: it would look like a device that echoes everything.
    """
    link = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=timeout, do_not_open=True)
    link.reset_input_buffer = lambda: None  # type: ignore[method-assign]
    try:
        link.open()
    finally:
        del link.reset_input_buffer
    sock = getattr(link, "_socket", None)
    if sock is not None and sock.getsockname() == sock.getpeername():
        link.close()
        raise serial.SerialException(f"self-connected to 127.0.0.1:{port} (nothing listens yet)")
    return link


class QemuDevice(_ProcessDevice):
    """The firmware ELF running in ``qemu-system-arm -M mps2-an386`` (Cortex-M4F), linked over TCP.

    ``provision``: an :class:`Identity`, a page image (bytes) or a page file to place at the ELF's
    ``__dysan_provision_start`` with QEMU's generic loader; None boots unprovisioned.
    ``loads``: more raw images to place at boot, as (data or file, address) pairs (e.g. a region image).
    ``state_file``: keep the STATE region in this host file across runs (created erased when missing), so the
    auth counter and the settings survive a restart as they would survive a power cycle on a chip.
    ``icount``: the ``-icount shift`` value (0: 1 instruction per virtual ns); None runs without icount.
    ``icount_sleep``: False adds ``sleep=off`` (virtual time skips idle periods instead of waiting them out).
    ``connect``: False starts QEMU and returns once it waits for a client, for a tool that opens :attr:`url`
    itself (QEMU serves one client; the CPU starts when it connects).
    """

    def __init__(
        self,
        elf: str | Path,
        *,
        provision: Identity | bytes | str | Path | None = None,
        loads: Sequence[tuple[bytes | str | Path, int]] = (),
        state_file: str | Path | None = None,
        icount: int | None = 0,
        icount_sleep: bool = True,
        connect: bool = True,
        connect_timeout: float = 10.0,
        read_timeout: float | None = 10.0,
        extra_args: Sequence[str] = (),
        qemu: str = QEMU_BINARY,
    ) -> None:
        super().__init__(connect_timeout, read_timeout, connect)
        self.elf = Path(elf)
        self.provision = provision
        self.loads = list(loads)
        self.state_file = state_file
        self.icount = icount
        self.icount_sleep = icount_sleep
        self.extra_args = list(extra_args)
        self.qemu = qemu
        self.argv: list[str] = []

    def _image_file(self, name: str, data: bytes | str | Path) -> Path:
        if isinstance(data, bytes | bytearray):
            path = self.workdir / name
            path.write_bytes(bytes(data))
            return path
        path = Path(data)
        if not path.is_file():
            raise DysanError(f"{path}: no such image file")
        return path

    def _loader_args(self) -> list[str]:
        images: list[tuple[Path, int]] = []
        if self.provision is not None:
            addr = elf_symbols(self.elf, [PROVISION_SYMBOL]).get(PROVISION_SYMBOL)
            if addr is None:
                raise DysanError(f"{self.elf}: no {PROVISION_SYMBOL} symbol (not a DySan QEMU image?)")
            page = build_page(self.provision) if isinstance(self.provision, Identity) else self.provision
            images.append((self._image_file("provision.bin", page), addr))
        loads = list(self.loads)
        args: list[str] = []
        if self.state_file is not None:
            state_loads, semihosting = state_file_loads(self.elf, self.state_file)
            loads += state_loads
            args += semihosting
        for i, (data, addr) in enumerate(loads):
            images.append((self._image_file(f"load{i}.bin", data), addr))
        for path, addr in images:
            if "," in str(path):
                raise DysanError(f"{path}: QEMU option values cannot contain ','")
            args += ["-device", f"loader,file={path},addr=0x{addr:x},force-raw=on"]
        return args

    def start(self) -> None:
        if shutil.which(self.qemu) is None:
            raise DysanError(
                f"{self.qemu} not found: install QEMU (Debian: apt-get install qemu-system-arm, "
                "or run tools/install-sysdeps.sh)"
            )
        if not self.elf.is_file():
            raise DysanError(f"{self.elf}: no such firmware image (build it: make -C firmware qemu)")
        loader = self._loader_args()
        for _attempt in range(3):
            port = free_loopback_port()
            self.argv = [
                self.qemu, "-M", QEMU_MACHINE, "-nographic", "-monitor", "none", "-nodefaults",
                "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on",
                *(["-icount", f"shift={self.icount}" + ("" if self.icount_sleep else ",sleep=off")]
                  if self.icount is not None else []),
                "-kernel", str(self.elf), *loader, *self.extra_args,
            ]  # fmt: skip
            self._spawn(self.argv)
            try:
                if self.connect:
                    self._connect(port)
                else:
                    self._wait_stderr(f"127.0.0.1:{port},server=on", "waiting for a client")
                    self.port = port
                return
            except DysanError:
                # Another process took the port between our probe and QEMU's bind: try a new one.
                if self.proc is not None and self.proc.poll() is not None and "in use" in self.stderr_text():
                    self.close()
                    continue
                self.close()
                raise
        raise DysanError("could not find a free loopback port for QEMU's serial link")


class HostDevice(_ProcessDevice):
    """The native (POSIX) build of the firmware as a child process, linked over TCP on 127.0.0.1.

    The process picks its own free port (``--listen 0``) and prints it, so there is no port race.
    ``provision``: as for :class:`QemuDevice` (written to a file, passed with ``--provision``).
    ``regions``: a file persisting the regions across runs (``--regions``); None keeps them in RAM.
    ``connect``: False returns once the process listens, for a tool that opens :attr:`url` itself.
    """

    def __init__(
        self,
        binary: str | Path,
        *,
        provision: Identity | bytes | str | Path | None = None,
        regions: str | Path | None = None,
        connect: bool = True,
        connect_timeout: float = 10.0,
        read_timeout: float | None = 10.0,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(connect_timeout, read_timeout, connect)
        self.binary = Path(binary)
        self.provision = provision
        self.regions = Path(regions) if regions is not None else None
        self.extra_args = list(extra_args)
        self.env = env
        self.argv: list[str] = []

    def start(self) -> None:
        if not self.binary.is_file():
            raise DysanError(f"{self.binary}: no such program (build it: make -C firmware host)")
        argv = [str(self.binary), "--listen", "0"]
        if self.provision is not None:
            if isinstance(self.provision, Identity | bytes | bytearray):
                page = build_page(self.provision) if isinstance(self.provision, Identity) else self.provision
                path = self.workdir / "provision.bin"
                path.write_bytes(bytes(page))
            else:
                path = Path(self.provision)
            argv += ["--provision", str(path)]
        if self.regions is not None:
            argv += ["--regions", str(self.regions)]
        self.argv = argv + self.extra_args
        env = dict(os.environ)
        for var in ("DYSAN_LINK", "DYSAN_PROVISION", "DYSAN_REGIONS"):
            env.pop(var, None)  # options decide, not whatever the caller's shell exported
        env.update(self.env or {})
        self._stderr_file = open(self._stderr_path, "wb")  # noqa: SIM115 -- closed in close()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr_file, env=env
        )
        try:
            line = self._wait_stderr(_LISTEN_PREFIX, "listening")
            port = int(line.split(_LISTEN_PREFIX, 1)[1].strip())
            if self.connect:
                self._connect(port)
            else:
                self.port = port
        except BaseException:
            self.close()
            raise
