"""Emulated wearables that outlive the command that started them (``dysan flash --target qemu|host``).

:class:`dysan.device.QemuDevice` and :class:`~dysan.device.HostDevice` are context managers for tests: they
stop the firmware when the block ends and keep their files in a temporary folder. ``dysan flash`` instead
leaves the emulator running for the next commands (``dysan calibrate``, ``dysan stream``, each connecting
anew), so it starts the process detached (its own session, no terminal), keeps its files in a state folder
(``$XDG_STATE_HOME/dysan/emulators/<device id>/``, mode 0700; the provisioning page in it holds the key), and
records it in ``emulators/<device id>.json`` so ``dysan devices`` can list it and ``dysan flash --stop`` can
stop it -- by the process id it recorded, never by name.

* QEMU: ``-serial tcp:127.0.0.1:PORT,server=on,wait=on`` serves one client at a time and accepts the next
  one when it leaves, and the emulated device keeps running (and keeps its RAM "flash") in between. Its
  STATE region (auth counter, settings) is also kept in ``state.bin`` in the state folder (written back by
  the firmware through semihosting), so even a restarted QEMU keeps them, as a chip keeps its flash.
* The host build serves one client and exits when it leaves, so it runs under a tiny supervisor
  (``python -m dysan.tools.emulator supervise``) that restarts it on the same port with the same
  ``--regions`` file: every command sees the same device, state included -- and a restart is exactly what
  ``dysan stream`` must survive.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..device.provision import Identity, build_page, write_secret
from ..device.qemu import PROVISION_SYMBOL, QEMU_BINARY, QEMU_MACHINE, elf_symbols, free_loopback_port, state_file_loads
from ..errors import DysanError


def state_root() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dysan" / "emulators"


@dataclass
class Emulator:
    """A running (or recorded) emulator."""

    device_id: str
    target: str
    pid: int
    port: int
    image: str
    workdir: str
    started: float
    argv: list[str]

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False  # not ours
        cmdline = Path(f"/proc/{self.pid}/cmdline")
        if cmdline.exists():  # Linux: make sure the id was not reused by another program
            with contextlib.suppress(OSError):
                first = cmdline.read_bytes().split(b"\0")[0].decode(errors="replace")
                if Path(first).name != Path(self.argv[0]).name:
                    return False
        # a zombie child of this very process counts as gone
        with contextlib.suppress(ChildProcessError):
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                return False
        return True

    def as_dict(self) -> dict:
        return {**asdict(self), "url": self.url, "alive": self.alive()}


def _record_path(device_id: str) -> Path:
    return state_root() / f"{device_id}.json"


def running() -> list[Emulator]:
    """Recorded emulators whose process is still alive (stale records are removed)."""
    out = []
    root = state_root()
    if not root.is_dir():
        return out
    for f in sorted(root.glob("*.json")):
        try:
            emu = Emulator(**json.loads(f.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if emu.alive():
            out.append(emu)
        else:
            with contextlib.suppress(OSError):
                f.unlink()
    return out


def stop(device_id: str | None = None, timeout: float = 5.0) -> list[Emulator]:
    """Stops the recorded emulators (all, or the one of ``device_id``); returns those stopped."""
    stopped = []
    for emu in running():
        if device_id is not None and emu.device_id != device_id:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(emu.pid, signal.SIGTERM)  # its own process group: the supervisor and its child
        deadline = time.monotonic() + timeout
        while emu.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if emu.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(emu.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            _record_path(emu.device_id).unlink()
        stopped.append(emu)
    return stopped


def workdir_for(identity: Identity) -> Path:
    d = state_root() / identity.device_id_hex
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    d.chmod(0o700)
    return d


def write_provision(identity: Identity, workdir: Path) -> Path:
    """The provisioning page file (mode 0600: it holds the key)."""
    return write_secret(workdir / "provision.bin", build_page(identity))


def qemu_argv(elf: Path, port: int, provision: Path, icount: int | None = 0, address: str | None = None,
              state: Path | None = None) -> list[str]:
    """The QEMU command line (same choices as :class:`dysan.device.QemuDevice`, see its doc). ``address``: a
    placeholder for the provisioning page's address when the ELF is not built yet (dry runs). ``state``: the
    file that keeps the STATE region (auth counter, settings) across restarts (``flash_qemu.c``)."""
    extra: list[str] = []
    if state is not None and address is None:
        loads, extra = state_file_loads(elf, state)
        for i, (data, addr) in enumerate(loads):
            path = data if isinstance(data, Path) else state.with_name(f"{state.stem}.desc{i}.bin")
            if not isinstance(data, Path):
                path.write_bytes(data)
            extra += ["-device", f"loader,file={path},addr=0x{addr:x},force-raw=on"]
    if address is None:
        addr = elf_symbols(elf, [PROVISION_SYMBOL]).get(PROVISION_SYMBOL)
        if addr is None:
            raise DysanError(f"{elf}: no {PROVISION_SYMBOL} symbol (not a DySan QEMU image?)")
        address = f"0x{addr:x}"
    if "," in str(provision):
        raise DysanError(f"{provision}: QEMU option values cannot contain ','")
    return [QEMU_BINARY, "-M", QEMU_MACHINE, "-nographic", "-monitor", "none", "-nodefaults",
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on",
            *(["-icount", f"shift={icount}"] if icount is not None else []),
            "-kernel", str(elf), "-device", f"loader,file={provision},addr={address},force-raw=on", *extra]


def host_argv(binary: Path, port: int, provision: Path, regions: Path) -> list[str]:
    return [str(binary), "--listen", str(port), "--provision", str(provision), "--regions", str(regions)]


def supervisor_argv(child: list[str]) -> list[str]:
    return [sys.executable, "-m", "dysan.tools.emulator", "supervise", "--", *child]


def _wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    """Waits until something accepts on 127.0.0.1:port -- without connecting (QEMU would start its CPU and
    the host build would take us for its one client): the port is probed by trying to bind it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise DysanError(f"the emulator exited at start (status {proc.returncode}): {tail.strip()}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return  # taken: it listens
        time.sleep(0.05)
    raise DysanError(f"the emulator did not listen on 127.0.0.1:{port} within {timeout:.0f} s (log: {log})")


def start(target: str, image: Path, identity: Identity, *, port: int | None = None, icount: int | None = 0,
          fresh_regions: bool = True, timeout: float = 15.0) -> Emulator:
    """Starts a detached emulator of ``target`` ('qemu' or 'host') and records it; stops an older one of the
    same device first (a re-flash)."""
    if target == "qemu" and shutil.which(QEMU_BINARY) is None:
        raise DysanError(f"{QEMU_BINARY} not found: install QEMU (Debian: apt-get install qemu-system-arm)")
    if not image.is_file():
        raise DysanError(f"{image}: no such firmware image")
    stop(identity.device_id_hex)
    workdir = workdir_for(identity)
    provision = write_provision(identity, workdir)
    port = port or free_loopback_port()
    log = workdir / "emulator.log"
    if target == "qemu":
        state = workdir / "state.bin"
        if fresh_regions and state.exists():
            state.unlink()  # a flash starts from an erased STATE region, as the host build's regions do
        argv = qemu_argv(image, port, provision, icount, state=state)
    elif target == "host":
        regions = workdir / "regions.bin"
        if fresh_regions and regions.exists():
            regions.unlink()  # a flash starts from erased regions (the default bundle is copied in)
        argv = supervisor_argv(host_argv(image, port, provision, regions))
    else:
        raise DysanError(f"unknown emulator target {target!r}")
    with open(log, "wb") as logf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True,
                                cwd=workdir)
    emu = Emulator(identity.device_id_hex, target, proc.pid, port, str(image), str(workdir), time.time(), argv)
    try:
        _wait_listening(port, proc, log, timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    _record_path(emu.device_id).write_text(json.dumps(asdict(emu), indent=2))
    return emu


# -- the host build's supervisor -----------------------------------------------------------------------------


def supervise(child: list[str], max_quick_failures: int = 3) -> int:
    """Runs ``child`` again whenever it exits (the host build exits when its one client leaves), on the same
    port and regions file; gives up after ``max_quick_failures`` failures within a second of starting."""
    stopping = False
    current: subprocess.Popen | None = None

    def on_term(signum, frame):
        nonlocal stopping
        stopping = True
        if current is not None and current.poll() is None:
            current.terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    quick = 0
    while not stopping:
        t0 = time.monotonic()
        current = subprocess.Popen(child)
        rc = current.wait()
        if stopping:
            break
        if rc != 0 and time.monotonic() - t0 < 1.0:
            quick += 1
            if quick >= max_quick_failures:
                print(f"dysan-supervise: {child[0]} keeps failing (status {rc}); giving up", file=sys.stderr)
                return 1
            time.sleep(0.2)
        else:
            quick = 0
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dysan.tools.emulator")
    sub = p.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("supervise", help="restart a host-build device whenever it exits")
    sp.add_argument("child", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    child = args.child[1:] if args.child and args.child[0] == "--" else args.child
    if not child:
        p.error("supervise needs a command after --")
    return supervise(child)


if __name__ == "__main__":
    sys.exit(main())
