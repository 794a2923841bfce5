"""ONNX Runtime on convnet's translations of the human package's TF.js models: batch-1 speed
of CenterNet and NanoDet, and every model's outputs on the synthetic input against tfjs's
(target/tfjs-reference/out, from scripts/tfjs-reference.sh).

    cargo run --release -p convnet-apps --example tfjs_inputs -- --onnx target/tfjs-reference/onnx
    /tmp/venv-ref/bin/python scripts/tfjs-ort.py target/tfjs-reference
"""
import math
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/tfjs-reference")
opts = ort.SessionOptions()
opts.intra_op_num_threads = 2


def synthetic(h, w, scale):
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    v = np.floor(127.5 + 127.5 * np.sin(0.05 * x * (c + 1) + 0.07 * y + 0.3 * c))
    return (v * scale).astype(np.float32).transpose(2, 0, 1)[None]  # [1, 3, H, W]


for name in ["centernet", "nanodet", "selfie", "meet"]:
    sess = ort.InferenceSession(str(root / "onnx" / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    _, _, h, w = inp.shape
    x = synthetic(h, w, 1.0 if name == "centernet" else 1 / 255)
    outs = sess.run(None, {inp.name: x})
    worst = 0.0
    for meta, out in zip(sess.get_outputs(), outs):
        file = root / "out" / f"synthetic.{name}.{meta.name.removesuffix(':0').replace('/', '_').replace(':', '_')}.f32"
        ref = np.fromfile(file, dtype=np.float32)
        got = out.transpose(0, 2, 3, 1).ravel() if out.ndim == 4 else out.ravel()
        worst = max(worst, float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12)))
    line = f"{name}: max |ORT - tfjs| / max |tfjs| {worst:.2e}"
    if name in ("centernet", "nanodet"):
        for _ in range(2):
            sess.run(None, {inp.name: x})
        runs = 10
        t = time.perf_counter()
        for _ in range(runs):
            sess.run(None, {inp.name: x})
        ms = (time.perf_counter() - t) * 1000 / runs
        line += f"; batch 1: {ms:.1f} ms, {1000 / ms:.2f} images/s"
    print(line)
