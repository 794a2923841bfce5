#!/usr/bin/env python3
"""Checks `convnet export` against ONNX Runtime, family by family.

For each zoo family, at a small input size:

1. `convnet export NAME --dynamic-batch [--size S S] -o fresh.onnx` (freshly initialised
   weights; the file's `convnet_spec` metadata holds the model spec);
2. the batch norms' statistics and affine parameters are given random values (fresh ones are
   0 / 1, which would hide a wrong formula), in the ONNX file and in a `.pth` state dict made
   from the same initializers (they carry the state dict's names and layouts);
3. `onnx.checker.check_model(full_check=True)`;
4. ONNX Runtime runs the file on a random batch of 2, and `convnet infer --model spec.toml
   --weights w.pth` runs convnet on the same batch (`infer` writes the logits, so a final
   softmax is applied to its output when the graph ends in one, and an embedding run's rows
   are scaled to unit length as the file's last node does);
5. the difference is reported relative to the largest output magnitude;
6. round trip: convnet's own ONNX importer runs the exported file (`convnet infer --model
   FILE.onnx`) on the same batch, compared with ONNX Runtime the same way.

`--run DIR` adds a trained run (exported as it is, compared with `convnet infer --weights DIR`).

Usage: check_export.py path/to/convnet [--run runs/lenet] [--only resnet,lenet] [--keep DIR]
Needs numpy, onnx, onnxruntime and torch (/tmp/venv-ref has them).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper

# (family, model, --size or None, extra export flags)
FAMILIES = [
    ("LeNet-5", "lenet5", None, []),
    ("AlexNet", "alexnet", 64, ["--num-classes", "10"]),
    ("VGG", "vgg11", 32, ["--num-classes", "10"]),
    ("ResNet", "resnet18", 64, ["--num-classes", "10"]),
    ("SE-ResNet", "se_resnet50", 64, ["--num-classes", "10"]),
    ("GoogLeNet", "googlenet", 64, ["--num-classes", "10"]),
    ("MobileNet v1", "mobilenet", 64, ["--num-classes", "10"]),
    ("MobileNet v2", "mobilenet_v2", 64, ["--num-classes", "10"]),
    ("EfficientNet", "efficientnet_b0", 64, ["--num-classes", "10"]),
    ("Xception", "xception", 96, ["--num-classes", "10"]),
    ("U-Net", "unet-small", None, []),
    ("Tiny-YOLO", "tiny-yolo", None, []),
    ("signal CNN", "signal-cnn", None, []),
    ("volume CNN", "volume-cnn", None, []),
]

# Spec files for the layer kinds and settings the zoo does not use (or not in every rank):
# odd sizes, `same` and asymmetric padding, dilation, groups, ceil mode with and without counted
# padding, LRN, channel pooling, adaptive pooling to a size that does not divide, transposed
# convolutions with `same`, squeeze-and-excitation on 1D and 3D maps.
SPECS = {
    "every-layer-2d": """
name = "every-layer-2d"
input = [3, 19, 19]
[[layers]]
type = "conv2d"
filters = 8
kernel = 3
stride = 2
padding = "same"
activation = "relu6"
[[layers]]
type = "batch_norm"
epsilon = 0.001
[[layers]]
type = "conv2d"
filters = 8
kernel = 3
dilation = 2
groups = 2
padding = "same"
activation = "silu"
[[layers]]
type = "depthwise_conv2d"
kernel = 3
depth_multiplier = 2
padding = "same"
[[layers]]
type = "separable_conv2d"
filters = 12
kernel = 3
padding = "same"
activation = "leaky"
[[layers]]
type = "se"
reduction = 4
activation = "silu"
[[layers]]
type = "residual"
activation = "relu"
body = [
  { type = "conv2d", filters = 12, kernel = 3, padding = "same", name = "conv" },
  { type = "batch_norm", name = "bn" },
]
[[layers]]
type = "concat"
branches = [
  { layers = [{ type = "conv2d", filters = 4, kernel = 1, name = "b1" }] },
  { layers = [{ type = "avg_pool2d", pool = 3, stride = 1, padding = 1, count_include_pad = false, name = "b2" }] },
  { layers = [{ type = "max_pool2d", pool = 3, stride = 1, dilation = 2, padding = [[2, 2], [2, 2]], name = "b3" }] },
]
[[layers]]
type = "lrn"
depth_radius = 2
alpha = 0.01
beta = 0.75
k = 1.5
[[layers]]
type = "avg_pool2d"
pool = 3
stride = 2
padding = 1
ceil_mode = true
[[layers]]
type = "max_pool2d"
pool = 3
stride = 2
ceil_mode = true
[[layers]]
type = "conv_transpose2d"
filters = 6
kernel = 3
stride = 2
padding = "same"
[[layers]]
type = "zero_padding2d"
padding = [[1, 0], [0, 2]]
[[layers]]
type = "channel_pool"
pool = 2
[[layers]]
type = "adaptive_avg_pool2d"
output = 5
[[layers]]
type = "dropout"
rate = 0.3
[[layers]]
type = "aux"
layers = [{ type = "global_avg_pool", name = "pool" }, { type = "dense", units = 5, name = "fc" }]
[[layers]]
type = "flatten"
[[layers]]
type = "batch_norm"
[[layers]]
type = "dense"
units = 10
activation = "tanh"
[[layers]]
type = "dense"
units = 4
bias = false
activation = "softmax"
""",
    "every-layer-1d": """
name = "every-layer-1d"
input = [2, 37]
[[layers]]
type = "conv1d"
filters = 6
kernel = 4
padding = "same"
activation = "sigmoid"
[[layers]]
type = "batch_norm"
[[layers]]
type = "se"
reduction = 2
[[layers]]
type = "avg_pool1d"
pool = 3
stride = 2
ceil_mode = true
[[layers]]
type = "max_pool1d"
pool = 2
stride = 2
padding = "same"
[[layers]]
type = "conv_transpose1d"
filters = 4
kernel = 4
stride = 2
padding = 1
[[layers]]
type = "lrn"
depth_radius = 1
[[layers]]
type = "global_avg_pool"
[[layers]]
type = "dense"
units = 3
""",
    "every-layer-3d": """
name = "every-layer-3d"
input = [1, 7, 9, 9]
[[layers]]
type = "conv3d"
filters = 4
kernel = 3
stride = 2
padding = "same"
activation = "relu"
[[layers]]
type = "se"
reduction = 2
[[layers]]
type = "max_pool3d"
pool = 2
ceil_mode = true
[[layers]]
type = "conv_transpose3d"
filters = 2
kernel = 2
stride = 2
[[layers]]
type = "avg_pool3d"
pool = 2
[[layers]]
type = "global_max_pool"
[[layers]]
type = "dense"
units = 2
activation = "tanh"
""",
}

TOLERANCE = 1e-4


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def metadata(model):
    return {p.key: p.value for p in model.metadata_props}


def randomise_batch_norms(model, rng):
    """Random batch-norm parameters and statistics, in place; returns how many were changed."""
    inits = {i.name: i for i in model.graph.initializer}
    changed = 0
    for node in model.graph.node:
        if node.op_type != "BatchNormalization":
            continue
        scale, bias, mean, var = (inits[name] for name in node.input[1:5])
        c = numpy_helper.to_array(scale).shape[0]
        values = [
            rng.uniform(0.5, 1.5, c),
            rng.normal(0.0, 0.1, c),
            rng.normal(0.0, 0.1, c),
            rng.uniform(0.5, 1.5, c),
        ]
        for tensor, v in zip((scale, bias, mean, var), values):
            tensor.CopyFrom(numpy_helper.from_array(v.astype(np.float32), tensor.name))
        changed += 1
    return changed


def state_dict(model):
    """The initializers that are the model's weights (node constants are named `node/what`)."""
    out = {}
    for i in model.graph.initializer:
        if "/" in i.name:
            continue
        a = numpy_helper.to_array(i).copy()
        # A squeeze-and-excitation weight is a 1x1(x1) convolution over 1D / 3D maps in the
        # graph; the state dict keeps torchvision's [out, in, 1, 1] (or [out, in]).
        if i.name.endswith(("fc1.weight", "fc2.weight")) and a.ndim not in (2, 4):
            a = a.reshape(a.shape[0], a.shape[1])
        out[i.name] = torch.from_numpy(a)
    return out


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def compare(convnet, onnx_path, spec_path, weights, workdir, rng):
    model = onnx.load(onnx_path)
    checked = "ok"
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # the checker's own exception types vary by version
        checked = f"FAIL: {str(e).splitlines()[0]}"
    shape = json.loads(metadata(model)["input_shape"])
    shape = [2 if d == "N" else d for d in shape]
    x = rng.standard_normal(shape).astype(np.float32)
    x_path = os.path.join(workdir, "x.npy")
    y_path = os.path.join(workdir, "y.npy")
    np.save(x_path, x)
    # Auxiliary heads are not in the graph (they run only in training), so neither are their
    # weights: convnet keeps its own for them.
    with open(spec_path) as f:
        partial = ["--allow-partial"] if 'type = "aux"' in f.read() else []
    run([convnet, "-q", "infer", "--model", spec_path, "--weights", weights,
         "--input", x_path, "--output", y_path] + partial)
    ours = np.load(y_path)
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    theirs = session.run(None, {session.get_inputs()[0].name: x})[0]
    last = model.graph.node[-1].op_type
    if last == "Softmax":
        ours = softmax(ours.reshape(ours.shape[0], -1)).reshape(ours.shape)
    elif last == "LpNormalization":
        # An embedding run: convnet normalises the rows outside the network, the file inside.
        ours = ours / np.sqrt((ours * ours).sum(axis=1, keepdims=True) + 1e-12)
    # Round trip: convnet's own ONNX importer on the exported file, against ONNX Runtime.
    rt_path = os.path.join(workdir, "y_onnx.npy")
    run([convnet, "-q", "infer", "--model", onnx_path, "--input", x_path, "--output", rt_path])
    imported = np.load(rt_path).reshape(theirs.shape)
    round_trip = float(np.abs(imported - theirs).max()) / max(float(np.abs(theirs).max()), 1e-12)
    theirs = theirs.reshape(ours.shape)
    diff = float(np.abs(theirs - ours).max())
    scale = float(np.abs(ours).max())
    return checked, diff / max(scale, 1e-12), diff, list(theirs.shape), round_trip


OPSET = []


def export_family(convnet, name, size, flags, workdir, rng):
    fresh = os.path.join(workdir, "fresh.onnx")
    cmd = [convnet, "-q", "export", name, "--dynamic-batch", "-o", fresh] + flags + OPSET
    if size:
        cmd += ["--size", str(size), str(size)]
    run(cmd)
    model = onnx.load(fresh)
    randomise_batch_norms(model, rng)
    onnx_path = os.path.join(workdir, os.path.basename(name).replace(".toml", "") + ".onnx")
    onnx.save(model, onnx_path)
    weights = os.path.join(workdir, "w.pth")
    torch.save(state_dict(model), weights)
    spec_path = os.path.join(workdir, "spec.toml")
    with open(spec_path, "w") as f:
        f.write(metadata(model)["convnet_spec"])
    return onnx_path, spec_path, weights


def export_run(convnet, run_dir, workdir):
    onnx_path = os.path.join(workdir, "run.onnx")
    run([convnet, "-q", "export", run_dir, "--dynamic-batch", "-o", onnx_path] + OPSET)
    spec_path = os.path.join(workdir, "spec.toml")
    with open(spec_path, "w") as f:
        f.write(metadata(onnx.load(onnx_path))["convnet_spec"])
    return onnx_path, spec_path, run_dir


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("convnet", help="the convnet binary")
    p.add_argument("--run", action="append", default=[], help="a trained run directory to check too")
    p.add_argument("--only", help="comma-separated model names to check")
    p.add_argument("--opset", help="the opset to export (default: convnet's)")
    p.add_argument("--no-specs", action="store_true", help="skip the every-layer spec files")
    p.add_argument("--keep", help="keep the files in this folder")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    if args.opset:
        OPSET.extend(["--opset", args.opset])
    families = FAMILIES
    if args.only:
        wanted = set(args.only.split(","))
        families = [f for f in FAMILIES if f[1] in wanted]
    rows = []
    failed = False
    base = args.keep or tempfile.mkdtemp(prefix="check-export-")
    jobs = [(fam, lambda d, f=(name, size, flags): export_family(args.convnet, *f, d, rng), name)
            for fam, name, size, flags in families]
    if not args.no_specs:
        os.makedirs(base, exist_ok=True)
        for name, text in SPECS.items():
            if args.only and name not in wanted:
                continue
            path = os.path.join(base, f"{name}.toml")
            with open(path, "w") as f:
                f.write(text)
            jobs.append((f"spec: {name}", lambda d, p=path: export_family(args.convnet, p, None, [], d, rng), path))
    jobs += [(f"trained run ({os.path.basename(os.path.normpath(r))})",
              lambda d, r=r: export_run(args.convnet, r, d), r) for r in args.run]
    print(f"{'family':<26} {'model':<16} {'checker':<8} {'max rel diff':>12} {'max abs diff':>12} {'round trip':>10}  output   time")
    for family, make, label in jobs:
        workdir = os.path.join(base, os.path.basename(label).replace(".toml", ""))
        os.makedirs(workdir, exist_ok=True)
        start = time.time()
        try:
            onnx_path, spec_path, weights = make(workdir)
            checked, rel, diff, shape, rt = compare(args.convnet, onnx_path, spec_path, weights, workdir, rng)
            ok = checked == "ok" and rel <= TOLERANCE and rt <= TOLERANCE
            failed |= not ok
            row = f"{family:<26} {os.path.basename(label):<16} {checked:<8} {rel:>12.2e} {diff:>12.2e} {rt:>10.2e}  {shape}  {time.time() - start:.0f}s"
            if checked != "ok":
                row += f"\n    {checked}"
        except Exception as e:
            failed = True
            row = f"{family:<26} {os.path.basename(label):<16} ERROR: {str(e).splitlines()[0][:300]}"
        print(row, flush=True)
        rows.append(row)
    print(f"\ntolerance {TOLERANCE:g} relative to the largest output; files in {base}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
