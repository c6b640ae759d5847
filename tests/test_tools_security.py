"""Refused uploads and mode changes leave the device as it was -- through the device tools, across restarts.

tests/test_device_host.py already checks that unsigned, wrongly signed and replayed SET_MODE / SET_SENSITIVE /
CONFIGURE / BUNDLE_BEGIN / RF_BEGIN / CALIB_START frames are refused one by one. This extends it to whole
flows, on the supervised host build that `dysan flash --target host` runs (its regions persist, it restarts):

* the verbs with a forged key file (right device id, wrong key): `dysan calibrate` and `dysan stream` stop
  with one line naming the refusal, and a forged RF upload is refused at its BEGIN;
* a complete RF upload recorded off the air (signed BEGIN, chunks, signed COMMIT) and replayed after the
  owner uploaded another RF -- also after a device restart -- changes nothing; so does a recorded
  SET_SENSITIVE, and an unsigned COMMIT;
* in every case the device keeps its model: the sanitized output for the same input is byte-identical to the
  output before the attack (and differs from the output under the RF the attacker tried to restore, so the
  check could fail).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from dysan.cli import main
from dysan.device.provision import Identity, build_page
from dysan.device.session import DeviceError, Session
from dysan.errors import DysanError
from dysan.protocol import Frame, Signer, encode, make
from dysan.protocol.schema import CHUNK_MAX, ErrorCode, XferState
from dysan.tools import emulator, keystore
from dysan.tools.link import DeviceLink
from dysan.tools.replay import open_replay, samples_for
from test_device_support import (  # noqa: F401 (fixtures)
    HOST_APP,
    TEST_IDENTITY,
    build_firmware,
    calibration_forest,
    synthetic,
    synthetic_bundle,
    synthetic_rf,
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module", autouse=True)
def _built() -> None:
    build_firmware("host")


@pytest.fixture
def device(tmp_path, monkeypatch, synthetic_bundle, synthetic_rf):  # noqa: F811
    """The supervised host build, ready: bundle, RF, sensitive value 1. Yields (emulator, owner's key file)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DYSAN_KEYS", str(tmp_path / "keys"))
    key = keystore.save(TEST_IDENTITY, tmp_path / "owner.key")
    emu = emulator.start("host", HOST_APP, TEST_IDENTITY)
    with DeviceLink(emu.url, key_file=key, require_key=True) as link:
        s = link.session
        s.upload_bundle(synthetic_bundle.image, version=1)
        s.upload_rf(synthetic_rf, version=1)
        s.set_sensitive(1)
    yield emu, key
    emulator.stop(TEST_IDENTITY.device_id_hex)


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    return open_replay("synthetic", "SY06").stream_samples(samples_for(40), chunk_s=6.0)


def _output(url: str, key: Path, samples: np.ndarray) -> list[tuple]:
    with DeviceLink(url, key_file=key, require_key=True) as link:
        return [(w.model_id, w.rf_label, w.flags, w.data) for w in link.session.replay(samples)]


def _forged_key(tmp_path: Path) -> Path:
    return keystore.save(Identity(TEST_IDENTITY.device_id, bytes(range(32))), tmp_path / "forged.key")


def test_verbs_with_a_forged_key_change_nothing(device, tmp_path, stream, capsys, synthetic) -> None:  # noqa: F811
    emu, owner = device
    before = _output(emu.url, owner, stream)
    forged = _forged_key(tmp_path)
    rc = main(["calibrate", "--port", emu.url, "--key-file", str(forged), "--replay", "synthetic", "--subject",
               "SY07", "--seconds-per-activity", "6", "--yes", "--session-file",
               str(tmp_path / "c.npz")])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert rc == 2 and last.startswith("error:") and "not the key of device" in last and "AUTH_FAILED" in last, err
    assert "Activity" not in err, "the key is checked before the calibration starts"
    rc = main(["stream", "--port", emu.url, "--key-file", str(forged), "--replay", "synthetic", "--subject", "SY07",
               "--windows", "5", "--out", str(tmp_path / "x.csv")])
    assert rc == 2 and "AUTH_FAILED" in capsys.readouterr().err
    # the host refuses the forged key before it signs anything: the device's INFO does not verify with it
    with pytest.raises(DysanError, match=r"not the key of device .*INFO does not verify"):
        DeviceLink(emu.url, key_file=forged).open()
    # and the device refuses what is signed with it anyway, one command at a time: SET_MODE, CALIB_START
    forger = keystore.load(forged)
    _ds, ws = synthetic
    other_rf = calibration_forest(ws.x, ws.activity, len(ws.classes), seed=9)
    with DeviceLink(emu.url) as link:
        s = link.session
        s.signer = Signer(forger.key, forger.device_id, counter=10_000)
        for msg in (make("SET_MODE", mode=3), make("CALIB_START", max_windows=4)):
            with pytest.raises(DeviceError) as e:
                s.command(msg)
            assert e.value.code == ErrorCode.AUTH_FAILED
        # a whole RF upload signed with the forged key: refused at BEGIN, nothing written
        with pytest.raises(DeviceError) as e:
            s.upload_rf(other_rf)
        assert e.value.code == ErrorCode.AUTH_FAILED
        info = s.hello()
    assert info.rf_loaded and info.sensitive_set and info.bundle_valid
    assert _output(emu.url, owner, stream) == before


def _recorded_rf_upload(signer, table: bytes, seq0: int) -> list[Frame]:
    """The frames of an RF upload as an eavesdropper records them: signed BEGIN, the chunks, signed COMMIT."""
    sha = hashlib.sha256(table).digest()
    frames = [signer.sign(0x33, encode(make("RF_BEGIN", total_size=len(table), sha256=sha, version=66)), seq0)]
    for i, off in enumerate(range(0, len(table), CHUNK_MAX)):
        frames.append(Frame(0x34, encode(make("RF_CHUNK", offset=off, data=table[off:off + CHUNK_MAX])), seq0 + 1 + i))
    frames.append(signer.sign(0x35, encode(make("RF_COMMIT", sha256=sha)), seq0 + 1 + len(frames)))
    return frames


def _send_all(s: Session, frames: list[Frame]) -> list:
    """Sends each frame and collects its answer (XFER_STATUS / CMD_OK, or the DeviceError it raised)."""
    out = []
    for f in frames:
        s.send_frame(f)
        try:
            out.append(s.reply(["XFER_STATUS", "CMD_OK"], f.seq))
        except DeviceError as exc:
            out.append(exc)
    return out


def test_replayed_rf_upload_and_commands_are_refused_even_after_a_restart(device, stream, synthetic,  # noqa: F811
                                                                          synthetic_rf) -> None:  # noqa: F811
    emu, owner = device
    _ds, ws = synthetic
    rf_b = calibration_forest(ws.x, ws.activity, len(ws.classes), seed=5)
    assert rf_b != synthetic_rf
    with DeviceLink(emu.url, key_file=owner, require_key=True) as link:
        s = link.session
        recorded = _recorded_rf_upload(s.signer, rf_b, 4000)
        answers = _send_all(s, recorded)  # the owner's genuine upload of RF B, overheard
        assert answers[-1].state == XferState.COMMITTED
        recorded_sensitive = s.signer.sign(0x12, encode(make("SET_SENSITIVE", value=0)), 4100)
        s.send_frame(recorded_sensitive)
        s.reply(["CMD_OK"], 4100)
        s.set_sensitive(1)
        s.upload_rf(synthetic_rf, version=2)  # then the owner goes back to RF A
    with_b = None
    output_a = _output(emu.url, owner, stream)
    with DeviceLink(emu.url, key_file=owner, require_key=True) as link:
        link.session.upload_rf(rf_b, version=3)  # only to know what RF B's output looks like
    with_b = _output(emu.url, owner, stream)
    with DeviceLink(emu.url, key_file=owner, require_key=True) as link:
        link.session.upload_rf(synthetic_rf, version=4)
    assert with_b != output_a, "RF A and RF B give the same output: the test could not see a change"

    def attack() -> None:
        with DeviceLink(emu.url) as link:  # the attacker has no key
            s = link.session
            answers = _send_all(s, recorded)
            assert isinstance(answers[0], DeviceError) and answers[0].code == ErrorCode.REPLAY
            for st in answers[1:-1]:  # chunks without a transfer in progress: ignored, nothing written
                assert not isinstance(st, DeviceError) and st.state != XferState.RECEIVING and st.next_offset == 0
            assert isinstance(answers[-1], DeviceError) and answers[-1].code == ErrorCode.REPLAY
            for f, code in ((recorded_sensitive, ErrorCode.REPLAY),
                            (Frame(0x35, encode(make("RF_COMMIT", sha256=hashlib.sha256(rf_b).digest())), 4200),
                             ErrorCode.AUTH_REQUIRED)):
                got = _send_all(s, [f])[0]
                assert isinstance(got, DeviceError) and got.code == code
            st = s.stats()  # this boot's counters (the supervised device restarts whenever a client leaves)
            assert (st.replays_refused, st.auth_failures) == (3, 1)
        assert _output(emu.url, owner, stream) == output_a, "the device's output changed"

    attack()
    # restart the device process (the supervisor brings it back with the same regions -- as it does whenever
    # a client leaves, so every link above met a freshly booted device): still refused
    kids = Path(f"/proc/{emu.pid}/task/{emu.pid}/children").read_text().split()
    os.kill(int(kids[0]), signal.SIGKILL)
    time.sleep(0.5)
    attack()
    with DeviceLink(emu.url, key_file=owner) as link:
        info = link.session.hello(signed=True)
    assert info.sensitive_value == 1 and info.rf_loaded


# -- files that hold a key keep mode 0600, whatever was there before ------------------------------------------

def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def test_key_writers_tighten_an_existing_looser_file(tmp_path, monkeypatch) -> None:
    """`O_CREAT | O_TRUNC, 0600` keeps an existing file's mode: every writer of a key fchmods to 0600."""
    from dysan.device import provision
    from dysan.tools import flash

    ident = provision.new_identity()
    for name, write in (("page.bin", lambda p: provision.write_page(p, ident)),
                        ("identity.c", lambda p: (flash._write_secret(p, provision.render_c_image(ident).encode()),
                                                  p)[1]),
                        ("emulator", lambda p: emulator.write_provision(ident, p))):
        target = tmp_path / name / "provision.bin" if name == "emulator" else tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"old, readable by everyone")
        target.chmod(0o644)
        out = write(target.parent if name == "emulator" else target)
        assert Path(out) == target and _mode(target) == 0o600, name
        assert b"old, readable" not in target.read_bytes(), name
    # a symlink is not followed (a key never lands in whatever file it points to)
    victim = tmp_path / "victim"
    victim.write_bytes(b"x")
    (tmp_path / "link.bin").symlink_to(victim)
    with pytest.raises(Exception, match="cannot write a key file"):
        provision.write_page(tmp_path / "link.bin", ident)
    assert victim.read_bytes() == b"x"


def test_key_files_readable_by_others_are_refused(tmp_path) -> None:
    ident = Identity(device_id=bytes(8), key=bytes(range(32)))
    path = keystore.save(ident, tmp_path / "k.key")
    assert _mode(path) == 0o600 and keystore.load(path) == ident
    for mode in (0o640, 0o604, 0o660):
        path.chmod(mode)
        with pytest.raises(Exception, match="accessible by other users"):
            keystore.load(path)
    path.chmod(0o600)
    page = tmp_path / "page.bin"
    page.write_bytes(build_page(ident))
    page.chmod(0o644)
    with pytest.raises(Exception, match="accessible by other users"):
        keystore.load(page)


def test_a_build_with_the_key_compiled_in_leaves_nothing_readable(tmp_path, monkeypatch) -> None:
    """`dysan flash` for a board compiles dysan_identity.c: the build runs under umask 077 and every output
    (objects, images, an older build's files) ends up 0600 / 0700."""
    from dysan.tools import flash

    monkeypatch.setenv("DYSAN_KEYS", str(tmp_path / "keys"))
    monkeypatch.setattr(flash, "REPO", tmp_path)
    gen = tmp_path / "firmware" / "build" / "generated"
    out = tmp_path / ".pio" / "build" / flash.PIO_ENVS["nano33ble"]
    out.mkdir(parents=True)
    stale = out / "old.o"
    stale.write_bytes(b"an object from an earlier build")
    stale.chmod(0o644)
    seen: dict[str, int] = {}

    def fake_build(argv, **kw):
        mask = os.umask(0)
        os.umask(mask)
        seen["umask"] = mask
        (out / "firmware.elf").write_bytes(b"image with the key")
        return subprocess.CompletedProcess(argv, 0, "", "")

    plan = flash.FlashPlan("nano33ble", [
        flash.Step("write", "identity", path=gen / "dysan_identity.c", secret=True),
        flash.Step("run", "build", ["true"], cwd=tmp_path)], key_file=None)
    before = os.umask(0o022)
    try:
        flash.execute(plan, flash.FlashOptions(target="nano33ble"), runner=fake_build)
        assert os.umask(0o022) == 0o022, "execute() must restore the caller's umask"
    finally:
        os.umask(before)
    assert seen["umask"] == 0o077
    for p in (gen / "dysan_identity.c", out / "firmware.elf", stale):
        assert _mode(p) == 0o600, p
    assert _mode(out) & 0o077 == 0
