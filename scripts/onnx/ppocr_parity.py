"""convnet's ONNX importer against ONNX Runtime on PaddleOCR's PP-OCRv4 networks (from the PyPI
package rapidocr-onnxruntime), fed the same arrays: the text detector (a DBNet: a per-pixel text
probability map) on scikit-image's photo of handwritten text at PaddleOCR's detection size, the
text-direction classifier and the recogniser on crops of it.

    python ppocr_parity.py CONVNET_BINARY MODELS_DIR TEXT_PNG OUT_DIR

Prints one row per network: output shape, max |convnet - ORT|, max |ORT|, their ratio (the goal
is <= 1e-4), and wall time of one run of each (convnet's includes starting the process).
"""
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

convnet, models, text_png, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
out.mkdir(parents=True, exist_ok=True)


def pixels(width, height, box=None):
    """The photo (a crop of it) resized to width x height, PaddleOCR's (x/255 - 0.5) / 0.5."""
    img = Image.open(text_png).convert("RGB")
    if box:
        img = img.crop(box)
    a = np.asarray(img.resize((width, height), Image.BILINEAR)).astype(np.float32)
    return ((a / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None].copy()


# Detection: the shorter side scaled to 736 and both sides to multiples of 32 (rapidocr's
# limit_type "min", limit_side_len 736): 448x172 -> 1920x736.
cases = [
    ("ch_PP-OCRv4_det_infer", pixels(1920, 736)),
    ("ch_ppocr_mobile_v2.0_cls_infer", pixels(192, 48, (90, 20, 330, 80))),
    ("ch_PP-OCRv4_rec_infer", pixels(320, 48, (90, 20, 330, 80))),
]
print(f"{'network':<34} {'output':<18} {'max|diff|':>10} {'max|ref|':>10} {'ratio':>9}  ort s  convnet s")
worst = 0.0
for name, x in cases:
    model = models / f"{name}.onnx"
    xin, yout = out / f"{name}.in.npy", out / f"{name}.out.npy"
    np.save(xin, x)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    t = time.time()
    ref = session.run(None, {session.get_inputs()[0].name: x})[0]
    t_ort = time.time() - t
    t = time.time()
    subprocess.run([convnet, "infer", "--model", str(model), "--input", str(xin), "--output", str(yout)],
                   check=True, capture_output=True)
    t_cn = time.time() - t
    y = np.load(yout)
    assert y.shape == ref.shape, (name, y.shape, ref.shape)
    diff = float(np.abs(y - ref).max())
    scale = float(np.abs(ref).max())
    ratio = diff / scale
    worst = max(worst, ratio)
    print(f"{name:<34} {str(list(ref.shape)):<18} {diff:>10.3g} {scale:>10.3g} {ratio:>9.2g}  {t_ort:5.2f}  {t_cn:9.2f}")
print(f"worst ratio {worst:.3g} ({'within' if worst <= 1e-4 else 'OUTSIDE'} 1e-4)")
sys.exit(0 if worst <= 1e-4 else 1)
