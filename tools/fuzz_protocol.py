#!/usr/bin/env python3
"""Fuzzes the Python protocol stack with atheris (libFuzzer for Python), like fuzz_frame.c does the C one.

    .venv/bin/python tools/fuzz_protocol.py --runs 1000000
    .venv/bin/python tools/fuzz_protocol.py --seconds 30

The first input byte picks the target, as in firmware/tests/fuzz_frame.c:
0 link bytes into FrameDecoder (split into chunks at input-chosen points); 1 a decoded frame without CRC,
which the harness completes with a correct CRC and COBS so mutations reach the message layer; 2 an id and
a payload for ``messages.decode``; 3 frame fields for ``Frame.encode``. Every frame that decodes goes
through ``receive.accept`` at both ends (auth verification with the golden test key) and must satisfy the
codec identities: an accepted payload re-encodes to the same bytes and a frame re-encodes to the same
wire bytes. Anything but a ProtocolError is a crash.

libFuzzer ends the process when it is done, so the tool runs the fuzzer in a child process and prints one
summary line: runs, crashes, hangs, time. Seeds are the golden vectors (tests/data/protocol_golden.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _worker(argv: list[str]) -> None:
    import atheris
    import numpy  # noqa: F401  (imported by dysan.contract; loaded here so it is not instrumented)
    from cobs import cobs

    with atheris.instrument_imports(include=["dysan"]):
        from dysan.protocol import framing, messages, receive
        from dysan.protocol.auth import Verifier
        from dysan.protocol.errors import ProtocolError
        from dysan.protocol.framing import Frame, FrameDecoder, crc32
        from dysan.protocol.schema import AUTH_TAG_SIZE, FLAG_AUTH, MAX_PAYLOAD
        from dysan.testing import golden

    def check_frame(f: Frame) -> None:
        assert f.encode() == Frame(f.msg_id, f.payload, f.seq, f.flags, f.counter, f.tag).encode()
        assert framing.decode_packet(f.encode()[:-1]) == f
        for at_device in (True, False):
            v = Verifier(golden.TEST_KEY, golden.TEST_DEVICE_ID, 42)
            try:
                acc = receive.accept(f, v, at_device=at_device)
            except ProtocolError as e:
                assert e.code is not None
                assert v.last_counter == 42
                continue
            assert messages.encode(acc.msg) == f.payload
            assert acc.authenticated == (v.last_counter == f.counter and (f.counter or 0) > 42)

    def feed(stream: bytes, cuts: bytes) -> None:
        dec = FrameDecoder()
        frames: list[Frame] = []
        pos = 0
        for cut in cuts:
            frames += dec.feed(stream[pos : pos + cut])
            pos += cut
        frames += dec.feed(stream[pos:])
        packets = sum(1 for part in stream.split(b"\x00")[:-1] if part)
        assert sum(dec.stats.values()) == packets
        for f in frames:
            check_frame(f)

    def one_input(data: bytes) -> None:
        if not data:
            return
        mode, body = data[0] & 3, data[1:]
        if mode == 0:
            n_cuts = body[0] % 8 if body else 0
            feed(body[1 + n_cuts :], body[1 : 1 + n_cuts])
        elif mode == 1:
            feed(cobs.encode(body + crc32(body).to_bytes(4, "little")) + b"\x00", b"")
        elif mode == 2:
            if not body:
                return
            try:
                msg = messages.decode(body[0], body[1:])
            except ProtocolError as e:
                assert e.code is not None
                return
            assert messages.encode(msg) == body[1:]
        else:
            if len(body) < 4 + AUTH_TAG_SIZE:
                return
            auth = body[0] & 1
            payload = body[4 + AUTH_TAG_SIZE :][:MAX_PAYLOAD]
            f = Frame(
                body[1],
                payload,
                int.from_bytes(body[2:4], "little"),
                FLAG_AUTH if auth else 0,
                len(payload) if auth else None,
                body[4 : 4 + AUTH_TAG_SIZE] if auth else None,
            )
            wire = f.encode()
            assert b"\x00" not in wire[:-1]
            assert FrameDecoder().feed(wire) == [f]
            check_frame(f)

    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def write_seeds(directory: Path) -> int:
    """Golden vectors as seeds, in modes 0 (wire), 1 (decoded frame without CRC) and 2 (id + payload)."""
    from cobs import cobs

    gold = json.loads((REPO / "tests" / "data" / "protocol_golden.json").read_text())
    n = 0
    for v in gold["vectors"]:
        wire = bytes.fromhex(v["frame"])
        raw = cobs.decode(wire[:-1])[:-4]
        seeds = {0: b"\x00" + wire, 1: raw, 2: bytes([v["id"]]) + bytes.fromhex(v["payload"])}
        for mode, body in seeds.items():
            (directory / f"{v['label']}_{mode}").write_bytes(bytes([mode]) + body)
            n += 1
    for r in gold["rejects"]:
        (directory / f"reject_{r['label']}").write_bytes(b"\x00\x00" + bytes.fromhex(r["stream"]))
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="atheris fuzzing of the Python protocol stack")
    ap.add_argument("--runs", type=int, default=None, help="number of inputs (default 100000)")
    ap.add_argument("--seconds", type=int, default=None, help="time limit instead of a run count")
    ap.add_argument("--timeout", type=int, default=10, help="seconds per input before it counts as a hang")
    ap.add_argument("--corpus", type=Path, default=None, help="corpus directory to keep (default: temporary)")
    args, extra = ap.parse_known_args(argv)
    if os.environ.get("DYSAN_FUZZ_WORKER") == "1":
        _worker([sys.argv[0], *extra])
        return 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("error: atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp) / "seeds"
        seeds.mkdir()
        write_seeds(seeds)
        corpus = args.corpus or Path(tmp) / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        artifacts = Path(tmp) / "artifacts"
        artifacts.mkdir()
        limit = [f"-max_total_time={args.seconds}"] if args.seconds else [f"-runs={args.runs or 100_000}"]
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            *limit,
            f"-timeout={args.timeout}",
            f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1",
            str(corpus),
            str(seeds),
        ]
        env = dict(os.environ, DYSAN_FUZZ_WORKER="1")
        start = time.monotonic()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - start
        log = r.stdout + r.stderr
        runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
        names = [p.name for p in artifacts.iterdir()]
        crashes = sum(n.startswith(("crash-", "oom-", "leak-")) for n in names)
        hangs = sum(n.startswith("timeout-") for n in names)
        if r.returncode != 0 and not crashes and not hangs and "Traceback" in log:
            crashes = 1  # an uncaught exception ends atheris with a traceback (its artifact is written too)
        cov = re.findall(r"cov: (\d+)", log)
        print(
            f"fuzz_protocol: runs={runs[-1] if runs else '?'} crashes={crashes} hangs={hangs} "
            f"time={elapsed:.1f}s cov={cov[-1] if cov else '?'} exit={r.returncode}"
        )
        if crashes or hangs or r.returncode != 0:
            print(log[-4000:])
            for p in artifacts.iterdir():
                print(f"artifact: {p.name}: {p.read_bytes()[:200].hex()}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
