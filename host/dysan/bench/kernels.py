"""Our int8 kernels against CMSIS-NN's, op by op, on one Cortex-M4F in QEMU (part of ``dysan bench-firmware``).

``firmware/bench/nn_cmsis_bench.c`` runs a model image op by op: our kernel, then the CMSIS-NN kernel TFLM's
cmsis_nn ops call for the same op on a copy of the same input, byte-compares the outputs and counts
instructions around each call (SysTick under ``-icount shift=0``, calibrated against a known loop, as the
nn tests do). CMSIS-NN is compiled from ``../shared/vendor/tflm/tflm-cmsis-nn.tar.xz`` unpacked into
``firmware/build/vendor`` (git-ignored); where that tarball is absent the comparison is skipped with one line.

The parsing and the ratio arithmetic are plain functions (:func:`parse_output`, :func:`summarize`) so that a
unit test checks them without QEMU or the vendor sources.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DysanError
from ..export import model_image

REPO = Path(__file__).resolve().parents[3]
FIRMWARE = REPO / "firmware"
VENDOR_TAR = REPO.parent / "shared" / "vendor" / "tflm" / "tflm-cmsis-nn.tar.xz"
BENCH_ELF = FIRMWARE / "build" / "bench" / "nn_cmsis_bench.elf"
KIND_NAMES = {v: k for k, v in model_image.OP_KINDS.items()}
# MAC/instruction targets of the conv and fully-connected kernels (BRIEF.md section 4, raised goals).
TARGETS = {"conv_macs_per_instruction": 1.6, "fc_macs_per_instruction": 1.0, "total_ratio_vs_cmsis": 1.0}

_CAL = re.compile(r"calibration instructions (\d+) ticks (\d+)")
_OP = re.compile(r"op (\d+) kind (\d+) macs (\d+) ours (\d+) cmsis (-?\d+) match (-?\d+) fn (\S+)")
_OK = re.compile(r"^ok (\d+)$", re.M)
_INVOKE = re.compile(r"invoke ticks (\d+) arena (\d+) image (\d+)")
_CRC = re.compile(r"^out \d+ crc ([0-9a-f]+)$", re.M)


def vendor_tarball() -> Path | None:
    """The CMSIS-NN / TFLM tarball ($DYSAN_VENDOR_TFLM overrides), or None where ../shared/vendor is absent."""
    path = Path(os.environ.get("DYSAN_VENDOR_TFLM", VENDOR_TAR))
    return path if path.is_file() else None


def build(tarball: Path) -> Path:
    """Builds the bench ELF (unpacking the vendor tarball into firmware/build/vendor once)."""
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "-f", "bench.mk", "-j2", "nn-cmsis-bench",
                        f"BENCH_VENDOR_TAR={tarball}"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise DysanError(f"make -f bench.mk nn-cmsis-bench failed:\n{(r.stderr or r.stdout)[-2000:]}")
    return BENCH_ELF


def run_qemu(elf: Path, image: bytes, inputs: np.ndarray, timeout: float = 600.0) -> str:
    """Runs the bench on one model image and n x input_bytes int8 inputs; returns its stdout."""
    if shutil.which("qemu-system-arm") is None:
        raise DysanError("qemu-system-arm not found (tools/install-sysdeps.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "m.bin").write_bytes(image)
        np.ascontiguousarray(inputs, dtype=np.int8).tofile(d / "in.bin")
        semi = "enable=on,target=native,arg=nn_cmsis_bench,arg=m.bin,arg=in.bin"
        cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-icount", "shift=0",
               "-semihosting-config", semi, "-kernel", str(elf)]
        r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=timeout, check=False)
    if r.returncode != 0 or not _OK.search(r.stdout):
        raise DysanError(f"nn_cmsis_bench failed (rc {r.returncode}): {(r.stdout + r.stderr)[-800:]}")
    return r.stdout


def parse_output(stdout: str) -> list[dict]:
    """Per-op instructions per inference (ours, CMSIS-NN's) from the bench's output."""
    cal, ok = _CAL.search(stdout), _OK.search(stdout)
    if not cal or not ok:
        raise DysanError(f"unexpected nn_cmsis_bench output: {stdout[-400:]!r}")
    per_tick, n = int(cal.group(1)) / int(cal.group(2)), int(ok.group(1))
    if n < 1:
        raise DysanError("nn_cmsis_bench ran no input")
    ops = []
    for m in _OP.finditer(stdout):
        has = int(m.group(5)) >= 0
        ops.append({
            "index": int(m.group(1)), "kind": KIND_NAMES.get(int(m.group(2)), m.group(2)), "macs": int(m.group(3)),
            "ours": int(m.group(4)) * per_tick / n, "cmsis": int(m.group(5)) * per_tick / n if has else None,
            "match": None if not has else m.group(6) == "1", "cmsis_fn": m.group(7) if has else None,
        })
    return ops


def parse_invoke(stdout: str) -> dict:
    """Whole inferences (dysan_nn_invoke: op decode and copies included): instructions per inference, arena and
    image bytes."""
    cal, ok, inv = _CAL.search(stdout), _OK.search(stdout), _INVOKE.search(stdout)
    if not cal or not ok or not inv:
        raise DysanError(f"unexpected nn_cmsis_bench output: {stdout[-400:]!r}")
    per_tick = int(cal.group(1)) / int(cal.group(2))
    return {"instructions_per_inference": round(int(inv.group(1)) * per_tick / max(1, int(ok.group(1)))),
            "arena_bytes": int(inv.group(2)), "image_bytes": int(inv.group(3)), "output_crcs": _CRC.findall(stdout)}


def _mpi(macs: float, instr: float) -> float | None:
    return round(macs / instr, 3) if macs and instr else None


def summarize(models: dict[str, list[dict]]) -> dict:
    """Per-layer rows (ratio ours / CMSIS-NN, MAC per instruction) and totals over every model's layers.

    ``total`` compares the ops both implement (CMSIS-NN has no MEAN / LEAKY_RELU / QUANTIZE: TFLM runs its
    reference kernels there), ``ours_only`` adds up the rest of our instructions."""
    rows = []
    for name, ops in models.items():
        for op in ops:
            ratio = op["ours"] / op["cmsis"] if op["cmsis"] else None
            rows.append({"model": name, **{k: op[k] for k in ("index", "kind", "macs", "cmsis_fn", "match")},
                         "ours_instructions": round(op["ours"]),
                         "cmsis_instructions": None if op["cmsis"] is None else round(op["cmsis"]),
                         "ratio": None if ratio is None else round(ratio, 3),
                         "ours_macs_per_instruction": _mpi(op["macs"], op["ours"]),
                         "cmsis_macs_per_instruction": _mpi(op["macs"], op["cmsis"] or 0)})
    both = [r for r in rows if r["cmsis_instructions"] is not None]

    def group(kind: str) -> dict:
        sel = [r for r in both if r["kind"] == kind]
        m = sum(r["macs"] for r in sel)
        o = sum(r["ours_instructions"] for r in sel)
        c = sum(r["cmsis_instructions"] for r in sel)
        return {"macs": m, "ours_instructions": o, "cmsis_instructions": c, "ours_macs_per_instruction": _mpi(m, o),
                "cmsis_macs_per_instruction": _mpi(m, c), "ratio": round(o / c, 3) if c else None}

    o = sum(r["ours_instructions"] for r in both)
    c = sum(r["cmsis_instructions"] for r in both)
    conv, fc = group("CONV_2D"), group("FULLY_CONNECTED")
    total = {"ours_instructions": o, "cmsis_instructions": c, "ratio": round(o / c, 3) if c else None}
    return {
        "layers": rows, "conv": conv, "fc": fc, "total": total,
        "ours_only_instructions": sum(r["ours_instructions"] for r in rows if r["cmsis_instructions"] is None),
        "all_match": all(r["match"] for r in both),
        "targets": {
            "conv_macs_per_instruction": {"measured": conv["ours_macs_per_instruction"],
                                          "target": TARGETS["conv_macs_per_instruction"],
                                          "ok": (conv["ours_macs_per_instruction"] or 0)
                                          >= TARGETS["conv_macs_per_instruction"]},
            "fc_macs_per_instruction": {"measured": fc["ours_macs_per_instruction"],
                                        "target": TARGETS["fc_macs_per_instruction"],
                                        "ok": (fc["ours_macs_per_instruction"] or 0)
                                        >= TARGETS["fc_macs_per_instruction"]},
            "total_ratio_vs_cmsis": {"measured": total["ratio"], "target": TARGETS["total_ratio_vs_cmsis"],
                                     "ok": total["ratio"] is not None
                                     and total["ratio"] <= TARGETS["total_ratio_vs_cmsis"]},
        },
    }


def bundle_models(bundle_image: bytes, model: int = 0) -> dict[str, bytes]:
    """The S, P and D images of one model of a bundle."""
    from ..export import bundle_format

    _, table = bundle_format.unpack(bundle_image)
    if not 0 <= model < len(table):
        raise DysanError(f"the bundle has {len(table)} models, no model {model}")
    return {key: table[model][key] for key in ("S", "P", "D")}


def inputs_for(images: dict[str, bytes], n_inputs: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Random int8 inputs per model (the kernels' instruction counts do not depend on the values beyond
    activation clamps), the same for every implementation compared."""
    rng = np.random.default_rng(seed)
    return {name: rng.integers(-128, 128, size=(n_inputs, input_bytes(image)), dtype=np.int8)
            for name, image in images.items()}


def compare(images: dict[str, bytes], n_inputs: int = 5, seed: int = 0) -> dict:
    """Runs every image through the bench and returns :func:`summarize`'s report, or {"skipped": reason}."""
    tarball = vendor_tarball()
    if tarball is None:
        return {"skipped": f"CMSIS-NN comparison skipped: {VENDOR_TAR} not found (../shared/vendor is absent)"}
    elf = build(tarball)
    models, whole = {}, {}
    for name, x in inputs_for(images, n_inputs, seed).items():
        image = images[name]
        stdout = run_qemu(elf, image, x)
        ops = parse_output(stdout)
        whole[name] = parse_invoke(stdout)
        if any(op["match"] is False for op in ops):
            bad = [op["index"] for op in ops if op["match"] is False]
            raise DysanError(f"{name}: ops {bad} differ from CMSIS-NN's output")
        models[name] = ops
    out = summarize(models)
    out["ours_per_model"] = whole
    out["inputs_per_model"] = n_inputs
    out["vendor"] = str(tarball)
    return out


def compare_bundle(bundle_dir: Path, n_inputs: int = 5) -> dict:
    """Model 0 of an exported bundle (S, P, D): our kernels against CMSIS-NN's op by op, and the same models
    under the TFLM interpreter where its libraries are built (:mod:`dysan.bench.tflm`)."""
    from ..device.reference import Bundle
    from ..rundir import BundleDir
    from . import tflm

    images = bundle_models(BundleDir(bundle_dir).image.read_bytes())
    rep = compare(images, n_inputs)
    if "skipped" in rep:
        return rep
    files = next(Bundle(bundle_dir, verify=False)._model_entries())
    tflite = {k: (bundle_dir / files[k]).read_bytes() for k in images}
    try:  # the TFLM side builds third-party C++ under its own Makefile: a failure there is reported, not fatal
        rep["tflm"] = tflm.compare(tflite, inputs_for(images, n_inputs))
    except DysanError as e:
        rep["tflm"] = {"skipped": f"TFLM comparison failed: {e}"}
    for v in tflm.VARIANTS:  # TFLM's outputs against ours, input by input (checksums of the output bytes)
        if v in rep["tflm"]:
            for name, m in rep["tflm"][v]["models"].items():
                m["same_outputs_as_ours"] = m["output_crcs"] == rep["ours_per_model"][name]["output_crcs"]
    return rep


def input_bytes(image: bytes) -> int:
    """Bytes of a model image's input tensor (its header and tensor record, model_image's field tables)."""
    def fields(table: tuple[tuple[str, str], ...], offset: int) -> dict:
        fmt = "<" + "".join(f for _, f in table)
        return dict(zip([n for n, _ in table], struct.unpack_from(fmt, image, offset), strict=True))

    try:
        hdr = fields(model_image.HEADER_FIELDS, 0)
        return int(fields(model_image.TENSOR_FIELDS, hdr["tensors_off"] + hdr["input_tensor"] * model_image.TENSOR_SIZE)
                   ["nbytes"])
    except struct.error:
        raise DysanError("not a model image (truncated header or tensor table)") from None


def print_report(rep: dict) -> None:
    """The per-layer table and the totals."""
    from .. import ui

    if "skipped" in rep:
        ui.info(rep["skipped"])
        return
    rows = [[r["model"], r["index"], r["kind"], f"{r['macs']:,}", f"{r['ours_instructions']:,}",
             "-" if r["cmsis_instructions"] is None else f"{r['cmsis_instructions']:,}",
             "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
             "-" if r["ours_macs_per_instruction"] is None else f"{r['ours_macs_per_instruction']:.3f}",
             "-" if r["cmsis_macs_per_instruction"] is None else f"{r['cmsis_macs_per_instruction']:.3f}",
             {True: "yes", False: "NO", None: "-"}[r["match"]]] for r in rep["layers"]]
    t = rep["total"]
    rows.append(["total", "", "(ops CMSIS-NN has)", "", f"{t['ours_instructions']:,}", f"{t['cmsis_instructions']:,}",
                 f"{t['ratio']:.2f}", "", "", "yes" if rep["all_match"] else "NO"])
    _print_tflm(rep)
    ui.table(f"Our kernels vs CMSIS-NN per inference (QEMU Cortex-M4F, -icount shift=0; {rep['inputs_per_model']} "
             "inputs per model)", ["model", "op", "kind", "MACs", "ours", "CMSIS-NN", "ours/CMSIS", "ours MAC/instr",
                                   "CMSIS MAC/instr", "same bytes"], rows,
             caption=f"conv {rep['conv']['ours_macs_per_instruction']} MAC/instr (target >= 1.6), FC "
                     f"{rep['fc']['ours_macs_per_instruction']} (target >= 1.0); ops without a CMSIS-NN kernel "
                     f"(TFLM runs its reference): {rep['ours_only_instructions']:,} instructions of ours")


def _print_tflm(rep: dict) -> None:
    from .. import ui

    t = rep.get("tflm")
    if t is None:
        return
    if "skipped" in t or "building" in t:
        ui.info(t.get("skipped") or t["building"])
    variants = [v for v in ("ref", "cmsis_nn") if v in t]
    if not variants:
        return
    ours = rep["ours_per_model"]
    names = {"ref": "TFLM ref", "cmsis_nn": "TFLM+CMSIS-NN"}
    rows = []
    for name in ours:
        row = [name, f"{ours[name]['instructions_per_inference']:,}", f"{ours[name]['arena_bytes']:,}",
               f"{ours[name]['image_bytes']:,}"]
        for v in variants:
            m = t[v]["models"][name]
            row += [f"{m['instructions_per_invoke']:,}", f"{m['arena_used_bytes']:,}", f"{m['tflite_bytes']:,}",
                    "yes" if m.get("same_outputs_as_ours") else "NO"]
        rows.append(row)
    heads = [h for v in variants for h in (f"{names[v]} instr", f"{names[v]} arena B", ".tflite B", "= ours")]
    flash = ", ".join(f"{names[v]} {t[v]['elf_flash_bytes']:,} B" for v in variants)
    ui.table("Whole inferences: ours vs the TFLM interpreter", ["model", "ours instr", "ours arena B",
             "ours image B", *heads], rows,
             caption=f"ELF flash of the same bare-metal harness with each runtime, models not included: ours "
                     f"{t.get('ours_elf_flash_bytes', 0):,} B (nn_runner), {flash}")
