"""Where an exported scorer's int8 and float predictions part: label flips per stage of the chain.

One grid point of an exported run, every evaluation window. A flip is a window where the int8 chain and the float
chain predict different labels; the rows make one stage int8 at a time (the input, S's output rounding, int8 S,
int8 D or P), then the whole chain in TFLM as the device runs it, and count output ties (both top logits equal,
which argmax resolves to the lower class). docs/export.md's diagnosis table is this tool's output:

    python tools/int8_flips.py runs/sisfall-jitter out/h20/export-jitter-v2 a0.40_l0.10 --net D
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("export", type=Path)
    ap.add_argument("model", help="grid point name, e.g. a0.40_l0.10")
    ap.add_argument("--net", choices=("D", "P"), default="D")
    args = ap.parse_args()

    from tflite_micro.python.tflite_micro import runtime

    from dysan.export.verify import dequantize
    from dysan.nets import device  # noqa: F401
    from dysan.preprocess import Normalization, quantize_input
    from dysan.rundir import RunDir
    from dysan.tfutil import import_tf

    import_tf()
    import keras

    rd = RunDir(args.run)
    man = json.loads((args.export / "manifest.json").read_text())
    cfg = json.loads(rd.config.read_text())
    with np.load(rd.data) as z:
        x = z["x_test"]
        y = z["ys_test"] if args.net == "D" else z["ya_test"]
    norm, nm = Normalization.from_dict(cfg["normalization"]), man["normalization"]
    xq = quantize_input(np.rint(norm.denormalize(x)).astype(np.int16), tuple(nm["center"]), tuple(nm["multipliers"]),
                        nm["input_zero_point"])
    m = next(e for e in man["models"] if e["name"] == args.model)
    flat = {k: (args.export / m["files"][k]["path"]).read_bytes() for k in ("S", args.net)}
    s_in, s_out = (tuple(m["files"]["S"]["quantization"][k]) for k in ("input", "output"))

    def tflm(k: str, a: np.ndarray) -> np.ndarray:
        it, out = runtime.Interpreter.from_bytes(flat[k]), []
        for w in a:
            it.set_input(w[None], 0)
            it.invoke()
            out.append(it.get_output(0)[0].copy())
        return np.stack(out)

    def rounded(a: np.ndarray) -> np.ndarray:
        scale, zp = s_out
        return np.clip(np.rint(a / scale) + zp, -128, 127).astype(np.int8)

    fl = {k: keras.models.load_model(rd.model(args.model).keras(k), compile=False) for k in ("S", args.net)}
    predict = lambda k, a: fl[k].predict(a, batch_size=512, verbose=0)  # noqa: E731
    s_float = predict("S", x)
    ref = predict(args.net, s_float).argmax(1)
    s_int8 = tflm("S", xq)
    whole = tflm(args.net, s_int8)
    top2 = np.sort(whole, axis=1)[:, -2:]
    rows = [
        ("nothing (float)", ref),
        ("the input only", predict(args.net, predict("S", dequantize(xq, s_in))).argmax(1)),
        ("S's output rounding only", predict(args.net, dequantize(rounded(s_float), s_out)).argmax(1)),
        ("int8 S -> float " + args.net, predict(args.net, dequantize(s_int8, s_out)).argmax(1)),
        ("float S rounded -> int8 " + args.net, tflm(args.net, rounded(s_float)).argmax(1)),
        ("the whole chain (TFLM)", whole.argmax(1)),
    ]
    print(f"{args.model} {args.net}, {len(x)} windows")
    print(f"| what is int8 | {args.net} flips | {args.net} accuracy |\n|---|---:|---:|")
    for label, pred in rows:
        print(f"| {label} | {int((pred != ref).sum())} | {100 * (pred == y).mean():.2f} |")
    print(f"output ties of the whole chain: {int((top2[:, 0] == top2[:, 1]).sum())}; "
          f"output quantization {tuple(m['files'][args.net]['quantization']['output'])}")


if __name__ == "__main__":
    main()
