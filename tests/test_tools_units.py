"""The device tools' building blocks, without a device: key store, UF2, ESP32 partition offsets, stream writers
(CSV, Parquet, spool recovery, dequantization), replay sources, sensitive-value parsing."""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dysan import contract
from dysan.device.provision import Identity, build_page, new_identity
from dysan.errors import DysanError
from dysan.tools import keystore, uf2, writers
from dysan.tools.calibrate import parse_sensitive
from dysan.tools.flash import REPO, esp32_offsets
from dysan.tools.replay import open_replay, samples_for, windows_in


@pytest.fixture
def keys(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "keys"
    monkeypatch.setenv("DYSAN_KEYS", str(d))
    return d


# ---- key store ------------------------------------------------------------------------------------------------


def test_key_store_saves_0600_loads_and_never_overwrites(keys) -> None:
    ident, path, created = keystore.resolve(None)
    assert created and path == keys / f"{ident.device_id.hex()}.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert keystore.load(path) == ident and keystore.lookup(ident.device_id) == ident
    assert ident.key.hex() not in repr(ident)
    assert keystore.save(ident) == path  # the same identity again: fine
    other = Identity(ident.device_id, bytes(32))
    with pytest.raises(DysanError, match="refusing to overwrite"):
        keystore.save(other, path)
    assert keystore.load(path) == ident
    # --device-id finds it; an unknown one is a one-line error
    assert keystore.resolve(None, device_id=ident.device_id.hex())[0] == ident
    with pytest.raises(DysanError, match="no key for device"):
        keystore.resolve(None, device_id="00" * 8)


def test_key_file_must_not_be_readable_by_others(keys, tmp_path) -> None:
    ident = new_identity()
    path = keystore.save(ident, tmp_path / "k.key")
    path.chmod(0o644)
    with pytest.raises(DysanError, match="chmod 600"):
        keystore.load(path)


def test_key_file_may_be_a_provisioning_page(tmp_path) -> None:
    ident = new_identity()
    page = tmp_path / "page.bin"
    page.write_bytes(build_page(ident))
    page.chmod(0o600)
    assert keystore.load(page) == ident
    bad = tmp_path / "bad.key"
    bad.write_text("{\"format\": \"other\"}")
    bad.chmod(0o600)
    with pytest.raises(DysanError, match="not a DySan key file"):
        keystore.load(bad)


def test_resolve_creates_a_missing_key_file(tmp_path) -> None:
    ident, path, created = keystore.resolve(tmp_path / "dev.key", create=True)
    assert created and path.is_file() and keystore.resolve(path)[0] == ident
    with pytest.raises(DysanError, match="no such key file"):
        keystore.resolve(tmp_path / "missing.key")


# ---- UF2 and the ESP32 partition table ---------------------------------------------------------------------------


def _hex_record(addr: int, rtype: int, data: bytes) -> str:
    raw = bytes([len(data), addr >> 8, addr & 0xFF, rtype]) + data
    return ":" + (raw + bytes([(-sum(raw)) & 0xFF])).hex().upper()


def test_hex_to_uf2_places_every_byte_at_its_address() -> None:
    rng = np.random.default_rng(0)
    payload = bytes(rng.integers(0, 256, size=600, dtype=np.uint8))
    lines = [_hex_record(0, 0x04, (0x27000 >> 16).to_bytes(2, "big"))]
    for off in range(0, len(payload), 16):
        lines.append(_hex_record((0x27000 + off) & 0xFFFF, 0x00, payload[off:off + 16]))
    lines.append(_hex_record(0, 0x01, b""))
    image = uf2.hex_to_uf2("\n".join(lines))
    assert len(image) == 3 * uf2.BLOCK  # 600 bytes -> pages 0x27000, 0x27100, 0x27200
    blocks = uf2.read_uf2(image)
    got = b"".join(blocks[a] for a in sorted(blocks))
    assert sorted(blocks) == [0x27000, 0x27100, 0x27200]
    assert got[:600] == payload and got[600:] == b"\xff" * (768 - 600)
    assert int.from_bytes(image[28:32], "little") == uf2.FAMILY_NRF52840
    broken = lines[1][:-2] + "00"
    with pytest.raises(DysanError, match="checksum"):
        uf2.parse_hex("\n".join([lines[0], broken]))
    with pytest.raises(DysanError, match="malformed"):
        uf2.read_uf2(image[:512] + bytes(512))


def test_esp32_offsets_come_from_the_partition_table() -> None:
    offs = esp32_offsets(REPO / "firmware" / "ports" / "esp32" / "partitions.csv")
    assert offs["factory"] == 0x10000 and offs["dysan_prov"] == 0x27F000 and offs["dysan_bundle"] == 0x1D0000


# ---- writers ------------------------------------------------------------------------------------------------------


@dataclass
class W:
    seq: int
    model_id: int
    rf_label: int
    flags: int
    data: bytes


def _windows(n: int, seed: int = 0, first: int = 1) -> list[W]:
    rng = np.random.default_rng(seed)
    return [W(first + i, int(rng.integers(0, 2)), int(rng.integers(0, 4)), 6,
              bytes(rng.integers(-128, 128, size=750, dtype=np.int8).astype(np.uint8))) for i in range(n)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_writers_round_trip_int8_windows(tmp_path, suffix) -> None:
    wins = _windows(7)
    out = tmp_path / f"o{suffix}"
    with writers.open_writer(str(out)) as w:
        for i, win in enumerate(wins):
            w.write(0, int(i >= 4), win)
            w.flush()
    back = writers.read_windows(out)
    assert [(b["seq"], b["part"], b["model_id"], b["rf_label"], b["flags"], b["data"]) for b in back] == [
        (x.seq, int(i >= 4), x.model_id, x.rf_label, x.flags, x.data) for i, x in enumerate(wins)]
    assert not out.with_name(out.name + ".spool").exists()


def test_parquet_spool_survives_a_crash_and_the_next_run_keeps_it(tmp_path) -> None:
    out = tmp_path / "o.parquet"
    first = _windows(5, seed=1)
    w = writers.open_writer(str(out))
    for win in first:
        w.write(0, 0, win)
    w.flush()  # acknowledged from here on; then the process "dies" without close()
    w._spool.close()
    spool = out.with_name(out.name + ".spool")
    with open(spool, "ab") as f:
        f.write(b"DYSW" + b"\x01" * 10)  # a torn record after the last flush: never acknowledged
    w2 = writers.open_writer(str(out))
    assert w2.recovered == 5 and w2.first_boot == 1
    second = _windows(3, seed=2)
    for win in second:
        w2.write(w2.first_boot, 0, win)
    w2.close()
    back = writers.read_windows(out)
    assert [b["data"] for b in back] == [x.data for x in first + second]
    assert [b["boot"] for b in back] == [0] * 5 + [1] * 3


def test_csv_append_continues_the_boot_numbering(tmp_path) -> None:
    out = tmp_path / "o.csv"
    with writers.open_writer(str(out)) as w:
        w.write(0, 0, _windows(1)[0])
    w2 = writers.open_writer(str(out))
    assert w2.first_boot == 1
    w2.close()
    deq = writers.Dequantizer({"normalization": {"center": [0] * 6, "scale": [1.0] * 6},
                               "models": [{"index": 0, "files": {"S": {"quantization": {"output": [0.5, 3]}}}}]})
    with pytest.raises(DysanError, match="other columns"):
        writers.open_writer(str(out), deq)


def test_dequantized_values_are_physical_units(tmp_path) -> None:
    manifest = {"normalization": {"center": [100, 0, 2048, 0, 0, 0], "scale": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]},
                "models": [{"index": 0, "files": {"S": {"quantization": {"output": [0.25, -4]}}}}]}
    deq = writers.Dequantizer(manifest)
    q = np.full((contract.WINDOW, contract.N_CHANNELS), 4, dtype=np.int8)  # (4 - -4) * 0.25 = 2 normalized units
    v = deq(0, q)
    counts = np.array([100 + 20, 40, 2048 + 60, 80, 100, 120], dtype=np.float32)
    np.testing.assert_allclose(v[0], counts / np.asarray(contract.COUNTS_PER_UNIT, np.float32), rtol=1e-6)
    out = tmp_path / "d.csv"
    with writers.open_writer(str(out), deq) as w:
        w.write(0, 0, W(1, 0, 0, 0, q.tobytes()))
    head = out.read_text().splitlines()[0].split(",")
    assert head[-6:] == ["acc_x_g", "acc_y_g", "acc_z_g", "gyro_x_rad_per_s", "gyro_y_rad_per_s", "gyro_z_rad_per_s"]
    with pytest.raises(DysanError, match="model id 3"):
        deq(3, q)
    with pytest.raises(DysanError, match=r"FILE\.csv"):
        writers.open_writer(str(tmp_path / "x.txt"))


# ---- replay sources ----------------------------------------------------------------------------------------------


def test_replay_source_cuts_activities_and_streams_deterministically() -> None:
    src = open_replay("synthetic", "SY02")
    assert src.activities == ("walk", "jog", "stairs", "sit/stand")
    walk = src.activity_samples("walk")
    recs = [r for r in src.dataset.recordings if r.subject == "SY02" and r.activity == "walk"]
    np.testing.assert_array_equal(walk, np.concatenate([contract.to_counts(r.signal) for r in recs]))
    s = src.stream_samples(samples_for(30), chunk_s=4.0, skip_s=2.0)
    assert len(s) == samples_for(30) and windows_in(len(s)) == 30
    np.testing.assert_array_equal(s[:200], walk[100:300])  # 2 s skipped, then 4 s (200 samples) of walk
    np.testing.assert_array_equal(s[200:400], src.activity_samples("jog")[100:300])
    np.testing.assert_array_equal(s, src.stream_samples(samples_for(30), chunk_s=4.0, skip_s=2.0))
    assert src.sensitive("gender") == int(src.dataset.subjects["SY02"].gender == "M")
    with pytest.raises(DysanError, match="not in synthetic"):
        open_replay("synthetic", "SA99")
    with pytest.raises(DysanError, match="not a class"):
        src.activity_samples("swim")


def test_parse_sensitive_accepts_values_and_labels() -> None:
    assert parse_sensitive("1") == 1 and parse_sensitive("f") == 0 and parse_sensitive("M") == 1
    assert parse_sensitive("elderly", ("young", "elderly")) == 1
    with pytest.raises(DysanError, match=r"expected 0\.\.1"):
        parse_sensitive("2")
    assert parse_sensitive("2", ("19-30", "31-59", "60-75")) == 2  # more than two values: 0..K-1


def test_key_material_never_in_json_outputs(tmp_path, keys) -> None:
    """What flash reports (its --json) names the key file but never holds the key."""
    from dysan.tools.flash import FlashOptions, FlashResult, make_plan

    ident, path, _ = keystore.resolve(None)
    plan = make_plan(FlashOptions("esp32", key_file=path, port="/dev/ttyUSB0"))
    text = json.dumps(FlashResult(plan, ident, path, False).as_dict())
    assert ident.key.hex() not in text and str(path) in text


# ---- --port schemes: the test-only ones come through a registration hook -------------------------------------


def test_a_registered_link_scheme_opens_through_its_factory() -> None:
    from dysan.tools import link
    from dysan.transport.serial_link import SerialTransport

    seen: list[str] = []

    def factory(spec: str, *, policy, timeout, on_event) -> SerialTransport:
        seen.append(spec)
        t = SerialTransport("loop://", policy=policy, on_event=on_event)
        t.open()
        return t

    link.register_transport("unit-loop", factory)
    try:
        t = link.open_link(" unit-loop:anything?x=1")
        try:
            t.write(b"abc")
            assert t.read(16, timeout=1.0) == b"abc"
        finally:
            t.close()
        assert seen == ["unit-loop:anything?x=1"] and "unit-loop" in link.registered_schemes()
        link.register_transport("UNIT-LOOP", factory)  # the same factory again: fine
        with pytest.raises(ValueError, match="already registered"):
            link.register_transport("unit-loop", lambda *a, **k: None)
        for builtin in ("socket", "serial", "ble", "loop"):
            with pytest.raises(ValueError, match="built in"):
                link.register_transport(builtin, factory)
    finally:
        link.unregister_transport("unit-loop")
    with pytest.raises(DysanError, match=r"unknown link 'unit-loop:anything'"):
        link.open_link("unit-loop:anything")


def test_shipped_cli_knows_no_test_only_scheme(monkeypatch, capsys) -> None:
    """Without the test suite's registration (tests/conftest.py), `virtual-ble:` is an unknown link: exit 2, one
    line; the old test-only spelling `ble:...&hci=virtual` is no special case either (Bumble refuses the HCI)."""
    from dysan.cli import main
    from dysan.tools import link

    assert "virtual-ble" in link.registered_schemes()  # tests/conftest.py registered it for this session
    monkeypatch.setattr(link, "_FACTORIES", {})
    assert main(["monitor", "--port", "virtual-ble:DySan-X", "--seconds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown link 'virtual-ble:DySan-X'" in err and len(err.splitlines()) == 1, err
    assert "serial:PORT[@BAUD]" in err, err  # printed as raised (not eaten as console markup)
    with pytest.raises(DysanError, match="HCI virtual"):
        link.open_link("ble:DySan-X?backend=bumble&hci=virtual", timeout=1.0)


def test_no_shipped_module_imports_the_test_harness() -> None:
    """`dysan.testing` is for the test suite and the emulator harness: nothing else in the package imports it."""
    import ast

    pkg = REPO / "host" / "dysan"
    offenders = []
    for path in sorted(pkg.rglob("*.py")):
        if path.is_relative_to(pkg / "testing"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [f"{'.' * node.level}{node.module or ''}"] + [f"{node.module or ''}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) else [])
            if any("testing" in n.split(".") for n in names):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, f"shipped modules import dysan.testing: {offenders}"
