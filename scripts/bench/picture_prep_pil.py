"""Pillow's side of `cargo run --release -p convnet-data --example picture_prep -- PHOTO`:
decode, grey + resize to a 28-pixel shorter side, RGB + resize to a 256-pixel shorter side
(antialiased bilinear, as torchvision's Resize), mean of 20 runs after 3.

    python scripts/bench/picture_prep_pil.py PHOTO.jpg
"""
import io
import sys
import time

from PIL import Image


def timed(f):
    for _ in range(3):
        f()
    start = time.perf_counter()
    for _ in range(20):
        f()
    return (time.perf_counter() - start) * 1e3 / 20


data = open(sys.argv[1], "rb").read()
img = Image.open(io.BytesIO(data)).convert("RGB")
w, h = img.size


def small(side):
    s = side / min(w, h)
    return round(w * s), round(h * s)


decode = timed(lambda: Image.open(io.BytesIO(data)).convert("RGB"))
grey = timed(lambda: img.convert("L").resize(small(28), Image.BILINEAR))
rgb = timed(lambda: img.resize(small(256), Image.BILINEAR))
print(f"{w} x {h}: decode {decode:.1f} ms, grey + resize to {small(28)} {grey:.1f} ms, "
      f"RGB + resize to {small(256)} {rgb:.1f} ms")
