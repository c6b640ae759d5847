#!/usr/bin/env python3
"""Memory map of the XIAO nRF52840 Sense image, beside the QEMU image's: printed by ``make -C firmware xiao``
and checked by tests/test_board_xiao.py (standard library + binutils only, so make runs it without the venv).

Everything comes from the linked files, nothing is restated: the region addresses are the ``__dysan_*``
symbols the link check (boards/xiao/dysan_regions.ld.in) defines from the port's header, the RAM split is
the core script's ``__data_start__``/``__bss_end__``/``__HeapBase``/``__HeapLimit``/``__StackLimit``/
``__StackTop``, what is ours vs the vendor's comes from the link map (input sections by object file), and
the loadable bytes are the ELF's program headers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

NM = "arm-none-eabi-nm"
READELF = "arm-none-eabi-readelf"
RAM_BASE = 0x20000000
LOOP_STACK = 256 * 4 * 4
"""The Arduino loop task's stack (cores/nRF5/main.cpp: LOOP_STACK_SZ = 256*4 words), taken from the heap;
the application (dysan_app_main, called from setup()) runs on it."""
REGIONS = ("bundle", "rf", "state", "provision")


def symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run([NM, str(elf)], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = int(parts[0], 16)
    return syms


def undefined(elf: Path) -> list[str]:
    """Undefined symbols of the linked image, weak ones included ('w <name>' / 'U <name>')."""
    out = subprocess.run([NM, "-u", str(elf)], capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def load_segments(elf: Path) -> list[tuple[int, int, int, int]]:
    """PT_LOAD segments: (vaddr, paddr, filesz, memsz)."""
    out = subprocess.run([READELF, "-lW", str(elf)], capture_output=True, text=True, check=True).stdout
    segs = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[2], 16), int(f[3], 16), int(f[4], 16), int(f[5], 16)))
    return segs


_INPUT = re.compile(r"^\s*(?:\S+\s+)?0x([0-9a-f]{8})\s+0x([0-9a-f]+)\s+(\S.*\.(?:o|obj)\)?)\s*$")
_OUTPUT = re.compile(r"^(\.\w[\w.]*)\s+0x[0-9a-f]+\s+0x[0-9a-f]+")


def map_split(map_file: Path, ours: str = "build/xiao/obj/") -> dict[str, dict[str, int]]:
    """{output section: {"ours": bytes, "vendor": bytes}} for .text, .data and .bss, from the link map's
    input sections (ours: objects compiled from this repository)."""
    out: dict[str, dict[str, int]] = {s: {"ours": 0, "vendor": 0} for s in (".text", ".data", ".bss")}
    section = None
    in_map = False
    for line in map_file.read_text(errors="replace").splitlines():
        if line.startswith("Linker script and memory map"):
            in_map = True
            continue
        if not in_map:
            continue
        m = _OUTPUT.match(line)
        if m:
            section = m.group(1) if m.group(1) in out else None
            continue
        if section is None:
            continue
        m = _INPUT.match(line)
        if m and not line.lstrip().startswith("*fill*"):
            size = int(m.group(2), 16)
            out[section]["ours" if m.group(3).startswith(ours) else "vendor"] += size
    return out


_CI_NODE = re.compile(r'^node: \{ title: "([^"]+)" label: "([^"]*)"')
_CI_EDGE = re.compile(r'^edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_CI_BYTES = re.compile(r"\\n(\d+) bytes \((static|dynamic[^)]*)\)")


def address_taken(obj_dir: Path) -> set[str]:
    """Names of our functions whose address is stored somewhere (op tables, HAL structs, callbacks): the
    targets of absolute relocations (R_ARM_ABS32 / MOVW / MOVT) that name a function or its section."""
    out: set[str] = set()
    for obj in sorted(obj_dir.rglob("*.o")):
        text = subprocess.run([READELF, "-rsW", str(obj)], capture_output=True, text=True, check=True).stdout
        funcs = {f[7] for f in (line.split() for line in text.splitlines()) if len(f) >= 8 and f[3] == "FUNC"}
        debug = False
        for line in text.splitlines():
            if line.startswith("Relocation section"):
                debug = ".rel.debug" in line or ".rel.ARM" in line  # debug info and unwind tables name every function
                continue
            f = line.split()
            if not debug and len(f) >= 5 and re.match(r"R_ARM_(ABS32|THM_MOVW_ABS_NC|THM_MOVT_ABS)$", f[2]):
                name = f[4].removeprefix(".text.")
                if name in funcs or f[4].startswith(".text."):
                    out.add(name)
    return out


def stack_bound(obj_dir: Path, root: str = "setup") -> tuple[int, list[str]]:
    """An upper bound of the stack our code needs below ``root`` (Arduino's setup(), which runs the
    application on the loop task), from GCC's call graphs (-fcallgraph-info=su: one .ci per object) and
    frame sizes: the deepest chain of frames, where an indirect call (the NN op table, the flash HAL) may
    reach any of our functions whose address is taken (:func:`address_taken`). Recursion adds nothing (the
    core has none); vendor callees (USB, Bluefruit, the flash driver) are not in our graphs and not counted.
    Returns (bytes, the chain)."""
    frames: dict[str, int] = {}
    edges: dict[str, set[str]] = {}
    for ci in sorted(obj_dir.rglob("*.ci")):
        for line in ci.read_text(errors="replace").splitlines():
            m = _CI_NODE.match(line)
            if m:
                b = _CI_BYTES.search(m.group(2))
                if b is not None:
                    frames[m.group(1)] = int(b.group(1))
                continue
            m = _CI_EDGE.match(line)
            if m:
                edges.setdefault(m.group(1), set()).add(m.group(2))
    by_name: dict[str, list[str]] = {}
    for t in frames:
        by_name.setdefault(t.split(":")[-1], []).append(t)
    taken = address_taken(obj_dir)
    indirect = [t for t in frames if t.split(":")[-1] in taken]
    memo: dict[str, tuple[int, list[str]]] = {}
    active: set[str] = set()

    def callees(t: str) -> list[str]:
        out: list[str] = []
        for d in edges.get(t, ()):
            out += indirect if d == "__indirect_call" else [d] if d in frames else by_name.get(d.split(":")[-1], [])
        return out

    def deepest(t: str) -> tuple[int, list[str]]:
        if t in memo:
            return memo[t]
        if t in active:
            return 0, []
        active.add(t)
        sub = max((deepest(c) for c in callees(t)), default=(0, []), key=lambda x: x[0])
        active.discard(t)
        memo[t] = (frames[t] + sub[0], [f"{t.split(':')[-1]} {frames[t]}", *sub[1]])
        return memo[t]

    roots = by_name.get(root, [])
    if not roots:
        return 0, []
    return max((deepest(r) for r in roots), key=lambda x: x[0])


def report(elf: Path) -> dict:
    """The XIAO image's flash and RAM use, and the regions, as numbers (see the module doc)."""
    s = symbols(elf)
    missing = [k for k in ("__dysan_app_start", "__dysan_bundle_start", "__dysan_image_end", "__data_start__",
                           "__bss_end__", "__HeapBase", "__HeapLimit", "__StackLimit", "__StackTop") if k not in s]
    if missing:
        raise SystemExit(f"error: {elf}: no {', '.join(missing)} (not linked with boards/xiao/dysan_regions.ld?)")
    flash = {"app": {"start": s["__dysan_app_start"], "size": s["__dysan_bundle_start"] - s["__dysan_app_start"],
                     "used": s["__dysan_image_end"] - s["__dysan_app_start"]}}
    for r in REGIONS:
        flash[r] = {"start": s[f"__dysan_{r}_start"], "size": s[f"__dysan_{r}_size"]}
    flash["end"] = s["__dysan_flash_end"]
    ram = {"softdevice": s["__data_start__"] - RAM_BASE, "statics": s["__bss_end__"] - s["__data_start__"],
           "heap": s["__HeapLimit"] - s["__HeapBase"], "msp_stack": s["__StackTop"] - s["__StackLimit"],
           "loop_task_stack": LOOP_STACK, "start": s["__data_start__"], "end": s["__StackTop"],
           "total": s["__StackTop"] - RAM_BASE}
    out = {"elf": str(elf), "flash": flash, "ram": ram, "image_end": s["__dysan_image_end"],
           "segments": [list(x) for x in load_segments(elf)]}
    map_file = elf.with_suffix(".map")
    if map_file.is_file():
        out["split"] = map_split(map_file)
    need, chain = stack_bound(elf.parent / "obj")
    if need:
        ram["app_stack_bound"] = need
        out["app_stack_chain"] = chain
    return out


def problems(rep: dict) -> list[str]:
    """Why the image does not fit the regions the port assumes ([] when it does): every loadable byte in flash
    lies in [app start, bundle start), RAM segments lie in [RAM start, stack top), segments do not overlap,
    and the regions are in order without overlap up to the flash end."""
    out = []
    fl, ram = rep["flash"], rep["ram"]
    app_lo, app_hi = fl["app"]["start"], fl["bundle"]["start"]
    spans = []
    for vaddr, paddr, filesz, memsz in rep["segments"]:
        if filesz:
            spans.append(("load image", paddr, paddr + filesz))
            if not (app_lo <= paddr and paddr + filesz <= app_hi):
                out.append(f"flash bytes 0x{paddr:05X}-0x{paddr + filesz:05X} outside the app region "
                           f"0x{app_lo:05X}-0x{app_hi:05X}")
        if vaddr >= RAM_BASE:
            spans.append(("RAM", vaddr, vaddr + memsz))
            if not (ram["start"] <= vaddr and vaddr + memsz <= ram["end"]):
                out.append(f"RAM 0x{vaddr:08X}-0x{vaddr + memsz:08X} outside 0x{ram['start']:08X}-"
                           f"0x{ram['end']:08X}")
    spans.sort(key=lambda x: x[1])
    for (na, a0, a1), (nb, b0, _b1) in itertools.pairwise(spans):
        if b0 < a1 and (a0 < RAM_BASE) == (b0 < RAM_BASE):
            out.append(f"{na} 0x{a0:X}-0x{a1:X} overlaps {nb} at 0x{b0:X}")
    order = ["app", *REGIONS]
    for a, b in itertools.pairwise(order):
        if fl[a]["start"] + fl[a]["size"] > fl[b]["start"]:
            out.append(f"region {a} overlaps {b}")
    last = fl[order[-1]]
    if last["start"] + last["size"] > fl["end"]:
        out.append("the provisioning page reaches past the flash end")
    if ram.get("app_stack_bound", 0) >= ram["loop_task_stack"]:
        out.append(f"our code may need {ram['app_stack_bound']} B of stack, more than the loop task's "
                   f"{ram['loop_task_stack']} B")
    if rep["image_end"] > app_hi:
        out.append(f"image ends at 0x{rep['image_end']:05X}, in the BUNDLE region at 0x{app_hi:05X}")
    return out


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def qemu_report(elf: Path) -> dict:
    """The QEMU image's regions and use, from the symbols of ports/qemu-m4/mps2_an386.ld."""
    s = symbols(elf)
    out = {"code_used": s["__dysan_code_used"], "code_size": s["__dysan_bundle_start"],
           "ram_used": s["__dysan_ram_used"], "stack": s.get("__dysan_stack_size", 0),
           "statics": s["__dysan_ram_used"] - s.get("__dysan_stack_size", 0) - s.get("__dysan_handler_stack_size", 0)}
    for r in REGIONS:
        out[r] = {"start": s[f"__dysan_{r}_start"], "size": s[f"__dysan_{r}_size"]}
    return out


def table(rep: dict, qemu: dict | None = None) -> str:
    """The size table, XIAO beside QEMU (when its image is built)."""
    fl, ram = rep["flash"], rep["ram"]
    q = qemu or {}
    nq = "(not built: make -C firmware qemu)"
    rows = [("flash", "XIAO nRF52840 Sense (build/xiao/dysan.elf)", "QEMU mps2-an386 (build/qemu-m4/dysan.elf)"),
            ("  below app", "0x00000 S140 SoftDevice " + _kb(fl["app"]["start"]), "-")]
    used = fl["app"]["used"]
    split = rep.get("split", {})
    ours = sum(split.get(s, {}).get("ours", 0) for s in (".text", ".data"))
    rows.append(("  app (code+data)", f"0x{fl['app']['start']:05X} {used:,} / {fl['app']['size']:,} B "
                 f"({100 * used / fl['app']['size']:.1f} %; ours {ours:,})",
                 f"0x00000 {q['code_used']:,} / {q['code_size']:,} B" if q else nq))
    for r in REGIONS:
        rows.append((f"  {r.upper()}", f"0x{fl[r]['start']:05X} {_kb(fl[r]['size'])}",
                     f"0x{q[r]['start']:05X} {_kb(q[r]['size'])}" if q else "-"))
    rows.append(("  spare to BUNDLE", f"{fl['bundle']['start'] - rep['image_end']:,} B",
                 f"{q['code_size'] - q['code_used']:,} B" if q else "-"))
    rows.append(("RAM", f"0x{RAM_BASE:08X}-0x{ram['end'] - 1:08X} ({_kb(ram['total'])})",
                 f"{q['ram_used']:,} B used" if q else "-"))
    rows.append(("  SoftDevice", f"{ram['softdevice']:,} B (below 0x{ram['start']:08X})", "-"))
    sd = split.get(".data", {}), split.get(".bss", {})
    rows.append(("  statics (.data+.bss)",
                 f"{ram['statics']:,} B (ours {sd[0].get('ours', 0) + sd[1].get('ours', 0):,})",
                 f"{q['statics']:,} B" if q else "-"))
    rows.append(("  MSP stack (ISRs, SD)", f"{ram['msp_stack']:,} B", "-"))
    rows.append(("  heap (RTOS, Bluefruit)", f"{ram['heap']:,} B (task stacks, Bluefruit buffers)", "none"))
    rows.append(("  app stack", f"{ram['loop_task_stack']:,} B (Arduino loop task, from the heap)",
                 f"{q['stack']:,} B" if q else "-"))
    if ram.get("app_stack_bound"):
        rows.append(("  our deepest chain", f"<= {ram['app_stack_bound']:,} B (static call graph, vendor callees "
                     "not counted)", "-"))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("elf", type=Path)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--qemu", type=Path, help="the QEMU image (build/qemu-m4/dysan.elf), shown beside it")
    args = ap.parse_args(argv)
    rep = report(args.elf)
    qemu = qemu_report(args.qemu) if args.qemu is not None and args.qemu.is_file() else None
    print(table(rep, qemu))
    rep["qemu"] = qemu
    bad = problems(rep)
    rep["problems"] = bad
    if args.json is not None:
        args.json.write_text(json.dumps(rep, indent=1) + "\n")
    for p in bad:
        print(f"error: {p}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
