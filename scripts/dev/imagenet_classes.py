"""Writes crates/zoo/data/imagenet_classes.txt: the 1000 ImageNet-1k category names in
class-index order, as torchvision's pretrained weights report them (`weights.meta["categories"]`).

Run with a Python that has torchvision: python scripts/dev/imagenet_classes.py
"""
import pathlib

from torchvision.models import ResNet50_Weights

names = ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
assert len(names) == 1000
out = pathlib.Path(__file__).resolve().parents[2] / "crates/zoo/data/imagenet_classes.txt"
out.write_text("".join(f"{n}\n" for n in names))
print(f"wrote {out} ({len(names)} names)")
