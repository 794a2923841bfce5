#!/usr/bin/env python3
"""Makes the ONNX fixtures under fixtures/onnx/ that convnet-graph's CI tests run.

Two parts, each its own subcommand because they need different Python packages:

  node    copies a selection of ONNX's own backend node tests (model.onnx plus
          test_data_set_*/input_N.pb, output_N.pb) into fixtures/onnx/node/: tests at opsets up
          to 21 (issue 30's range), from onnx 1.22 (the last release that ships the folders as
          files) and, for the tests that 1.22 has at a newer opset, from onnx 1.16 (opset 21):

              python3 -m venv /tmp/venv-onnx && /tmp/venv-onnx/bin/pip install 'onnx==1.22.*'
              python3 -m venv /tmp/venv-onnx-1.16 && /tmp/venv-onnx-1.16/bin/pip install 'onnx==1.16.*'
              /tmp/venv-onnx/bin/python scripts/onnx/make_fixtures.py node \\
                  --source /tmp/venv-onnx/lib/python3.11/site-packages/onnx/backend/test/data/node \\
                  --source /tmp/venv-onnx-1.16/lib/python3.11/site-packages/onnx/backend/test/data/node

  models  exports small seeded PyTorch CNNs with torch.onnx.export (the TorchScript exporter,
          dynamo=False) at several opsets, runs each with ONNX Runtime and writes the model, its
          input(s) and ONNX Runtime's output(s) into fixtures/onnx/models/NAME/ in the same
          layout as a node test, so one reader serves both. Needs torch, onnx, onnxruntime and
          numpy (the /tmp/venv-ref virtualenv of the other reference scripts):

              /tmp/venv-ref/bin/python scripts/onnx/make_fixtures.py models

Run from the repository root. Both parts are deterministic: fixed seeds, ONNX Runtime on one
thread with its graph optimisations off (so its numbers are the operators' own, not a fused
rewrite), and a second run writes identical tensors with the same package versions.
"""

import argparse
import json
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_OUT = os.path.join(ROOT, "fixtures", "onnx", "node")
MODELS_OUT = os.path.join(ROOT, "fixtures", "onnx", "models")

# The operators issue 30 asks convnet to run (what CNNs use).
ISSUE_OPS = set(
    """Conv ConvTranspose MaxPool AveragePool GlobalAveragePool GlobalMaxPool BatchNormalization
    InstanceNormalization LRN Gemm MatMul Relu LeakyRelu PRelu Clip Sigmoid HardSigmoid HardSwish
    Tanh Softmax Elu Add Sub Mul Div Pow Sqrt Exp Neg Concat Split Slice Reshape Flatten Transpose
    Squeeze Unsqueeze Pad Resize Upsample Constant Shape Gather ReduceMean Dropout""".split()
)

# Node tests of those operators that CI cannot check: training-mode Dropout draws a random mask
# (ONNX's reference draws it with numpy's generator, which no other runtime reproduces). The
# conformance script still runs them.
OUT_OF_SCOPE = re.compile(r"training_dropout")

# Folders above this size are left to the conformance script, except the few named below.
MAX_NODE_TEST_BYTES = 8000
# Larger 2-D pooling cases kept for what no smaller case covers: count_include_pad with explicit
# pads, and auto_pad SAME_LOWER.
LARGE_KEPT = {
    "test_averagepool_2d_pads_count_include_pad",
    "test_averagepool_2d_same_lower",
    "test_maxpool_2d_same_lower",
}


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def source_version(source):
    """The onnx release a node-test folder belongs to, from its package's dist-info."""
    site = os.path.normpath(os.path.join(source, "..", "..", "..", "..", ".."))
    for entry in sorted(os.listdir(site)) if os.path.isdir(site) else []:
        match = re.fullmatch(r"onnx-([0-9][^-]*)\.dist-info", entry)
        if match:
            return match.group(1)
    return "unknown"


def make_node(args):
    import onnx

    sources = args.source or [os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")]
    for source in sources:
        if not os.path.isdir(source):
            sys.exit(f"{source}: no node-test folders (onnx 1.22 is the last release that ships them)")
    # The first source's copy of a test wins, provided its opset is within the issue's range;
    # a later source (an older onnx) can supply the same test at an older opset.
    chosen = {}
    for source in sources:
        version = source_version(source)
        for name in sorted(os.listdir(source)):
            if name in chosen:
                continue
            folder = os.path.join(source, name)
            if not os.path.isfile(os.path.join(folder, "model.onnx")):
                continue
            model = onnx.load(os.path.join(folder, "model.onnx"), load_external_data=False)
            ops = {n.op_type for n in model.graph.node}
            # One operator per model: the `_expanded` variants and composite cases test others.
            if len(ops) != 1 or not ops <= ISSUE_OPS or name.endswith("_expanded"):
                continue
            if OUT_OF_SCOPE.search(name):
                continue
            opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
            if opset is None or opset > args.max_opset:
                continue
            size = folder_bytes(folder)
            if size > MAX_NODE_TEST_BYTES and name not in LARGE_KEPT:
                continue
            chosen[name] = (folder, ops.pop(), size, version, opset)

    if os.path.isdir(NODE_OUT):
        for name in os.listdir(NODE_OUT):
            if name.startswith("test_"):
                shutil.rmtree(os.path.join(NODE_OUT, name))
    os.makedirs(NODE_OUT, exist_ok=True)
    for name, (folder, _, _, _, _) in chosen.items():
        shutil.copytree(folder, os.path.join(NODE_OUT, name))

    per_op = {}
    for name, (_, op, _, version, opset) in sorted(chosen.items()):
        per_op.setdefault(op, []).append((name, version, opset))
    versions = sorted({v for _, _, _, v, _ in chosen.values()})
    total = sum(size for _, _, size, _, _ in chosen.values())
    lines = [
        "# ONNX backend node tests (copied)",
        "",
        f"These {len(chosen)} folders are copied unchanged from the `onnx` Python package, versions",
        f"{' and '.join(versions)} (`onnx/backend/test/data/node/`), Apache License 2.0, Copyright (c)",
        "ONNX Project Contributors. Each holds `model.onnx` (one operator) and `test_data_set_*/`",
        "with `input_N.pb` / `output_N.pb` TensorProto files: the inputs and the outputs of ONNX's",
        "reference implementation.",
        "",
        "They were chosen by `scripts/onnx/make_fixtures.py node` (its docstring has the command",
        "that copies them again): single-operator tests of the operators issue 30 lists, at",
        f"opsets up to {args.max_opset} (a test of onnx 1.22 at a newer opset is taken from onnx",
        f"1.16, the last release at opset 21), at most {MAX_NODE_TEST_BYTES} bytes per folder (plus",
        f"{', '.join(sorted(LARGE_KEPT))}), without training-mode Dropout (its mask is",
        f"random). Total {total} bytes.",
        "",
        "`crates/graph/tests/onnx_fixtures.rs` runs every folder here through `OnnxModel` and",
        "compares with ONNX's rule |got - want| <= 1e-7 + 1e-3 |want| (integers and booleans",
        "exactly). `scripts/onnx/conformance.sh` runs all of ONNX's node tests, not just these.",
        "",
        "| operator | tests (onnx version, opset) |",
        "| --- | --- |",
    ]
    for op in sorted(per_op):
        tests = ", ".join(f"{n.removeprefix('test_')} ({v}, {o})" for n, v, o in per_op[op])
        lines.append(f"| {op} | {tests} |")
    with open(os.path.join(NODE_OUT, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"copied {len(chosen)} node tests ({total} bytes) of {len(per_op)} operators into {NODE_OUT}")


# ---------------------------------------------------------------------------------------------
# PyTorch models


def build_models():
    """Returns [(name, module, example inputs, dynamic batch?)] with seeded weights."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def seeded(seed, make):
        torch.manual_seed(seed)
        module = make()
        # Batch-norm running statistics other than 0 and 1, so eval mode does real work.
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
            if isinstance(m, (nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)) and m.affine:
                with torch.no_grad():
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
        return module.eval()

    class Conv1dNet(nn.Module):
        """Grouped and dilated 1-D convolution; an even kernel with padding='same', which the
        exporter writes as auto_pad SAME_UPPER (asymmetric). ONNX Runtime refuses auto_pad with
        dilation, so the dilated one has explicit pads."""

        def __init__(self):
            super().__init__()
            self.a = nn.Conv1d(4, 6, 3, groups=2, dilation=2, padding=2)
            self.b = nn.Conv1d(6, 6, 4, padding="same")
            self.c = nn.Conv1d(6, 3, 3, stride=2, padding=1, bias=False)
            self.bn = nn.BatchNorm1d(3)

        def forward(self, x):
            x = F.leaky_relu(self.a(x), 0.1)
            x = F.elu(self.b(x))
            return self.bn(self.c(x))

    class Conv2dNet(nn.Module):
        """Strided conv + BatchNorm + ReLU; depthwise dilated conv + ReLU6 (Clip); a grouped
        conv with an even kernel and padding='same' (auto_pad SAME_UPPER, asymmetric);
        Hardswish. (An explicit asymmetric pad is the Pads model's: the exporter writes its
        pads as a computed tensor.)"""

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.bn_a = nn.BatchNorm2d(8)
            self.dw = nn.Conv2d(8, 8, 3, groups=8, dilation=2, padding=2)
            self.bn_dw = nn.BatchNorm2d(8)
            self.c = nn.Conv2d(8, 4, (2, 4), groups=2, padding="same")

        def forward(self, x):
            x = F.relu(self.bn_a(self.a(x)))
            x = F.relu6(self.bn_dw(self.dw(x)))
            return F.hardswish(self.c(x))

    class Conv3dNet(nn.Module):
        """Grouped 3-D conv, InstanceNorm, anisotropic dilation, 3-D max pooling."""

        def __init__(self):
            super().__init__()
            self.a = nn.Conv3d(2, 4, 3, padding=1, groups=2)
            self.norm = nn.InstanceNorm3d(4, affine=True)
            self.b = nn.Conv3d(4, 4, (1, 3, 3), dilation=(1, 2, 2), padding=(0, 2, 2))
            self.pool = nn.MaxPool3d(2)

        def forward(self, x):
            x = F.relu(self.norm(self.a(x)))
            return self.pool(torch.sigmoid(self.b(x)))

    class ConvTransposeNet(nn.Module):
        """Transposed convolutions with output_padding: grouped 2-D, non-square strides."""

        def __init__(self):
            super().__init__()
            self.a = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
            self.b = nn.ConvTranspose2d(6, 2, (3, 2), stride=(2, 3), output_padding=(1, 2))

        def forward(self, x):
            return self.b(torch.tanh(self.a(x)))

    class ConvTranspose1dNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.ConvTranspose1d(3, 2, 4, stride=3, padding=1, output_padding=2)

        def forward(self, x):
            return self.a(x)

    class PoolNet(nn.Module):
        """Max and average pooling with ceil_mode on odd sizes, count_include_pad both ways."""

        def __init__(self):
            super().__init__()
            self.max = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
            self.avg_excl = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
            self.avg_incl = nn.AvgPool2d(2, stride=2, padding=1, count_include_pad=True)

        def forward(self, x):
            y = torch.cat([self.max(x), self.avg_excl(x)], dim=1)
            return self.avg_incl(y)

    class Lrn(torch.autograd.Function):
        """PyTorch's local_response_norm, exported as ONNX's LRN node: the exporter would
        otherwise trace PyTorch's decomposition (pad, 3-D average pooling, Squeeze behind an
        If). An odd size, where both define the same channel window."""

        @staticmethod
        def forward(ctx, x, size, alpha, beta, k):
            return F.local_response_norm(x, size, alpha=alpha, beta=beta, k=k)

        @staticmethod
        def symbolic(g, x, size, alpha, beta, k):
            return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)

    class NormNet(nn.Module):
        """BatchNorm, InstanceNorm (affine) and LocalResponseNorm one after the other."""

        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(6)
            self.inorm = nn.InstanceNorm2d(6, affine=True)

        def forward(self, x):
            return Lrn.apply(self.inorm(self.bn(x)), 3, 0.02, 0.75, 1.5)

    class Activations(nn.Module):
        """Every activation of the issue's list, and the elementwise arithmetic, side by side,
        concatenated on the channel axis; residual adds between them."""

        def __init__(self):
            super().__init__()
            self.prelu = nn.PReLU(3)

        def forward(self, x):
            outs = [
                F.relu(x),
                F.leaky_relu(x, 0.2),
                self.prelu(x),
                F.relu6(x * 4.0),
                torch.clamp(x, -0.5, 0.25),
                torch.sigmoid(x),
                F.hardsigmoid(x),
                F.hardswish(x),
                torch.tanh(x) + x,
                F.elu(x, alpha=0.7),
                torch.softmax(x, dim=1),
                torch.sqrt(x * x + 1.0) - torch.exp(-x) / 3.0,
                torch.pow(x * x + 0.5, 1.5) * 0.5,
                -x,
            ]
            return torch.cat(outs, dim=1)

    class Classifier(nn.Module):
        """Conv stem, global average pooling, both Flatten and a view with a dynamic batch
        (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), Linear (Gemm), Hardsigmoid,
        Softmax."""

        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.fc1 = nn.Linear(8, 6)
            self.fc2 = nn.Linear(8 * 2 * 2, 6)
            self.fc3 = nn.Linear(6, 5)

        def forward(self, x):
            x = F.relu(self.stem(x))
            g = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
            p = F.max_pool2d(x, 4)
            v = p.view(p.size(0), -1)
            h = F.hardsigmoid(self.fc1(g)) + self.fc2(v)
            return torch.softmax(self.fc3(h), dim=1)

    class Upsample(nn.Module):
        """Nearest upsampling by integer scale factors: Upsample at opset 9, Resize after (the exporter cannot write opset 7's Upsample).
        (Bilinear is left to ResizeNet: at opset 9 the exporter writes 'linear' with ONNX's
        asymmetric coordinates, which is not what PyTorch computes.)"""

        def forward(self, x):
            return F.interpolate(x, scale_factor=(2.0, 3.0), mode="nearest")

    class ResizeNet(nn.Module):
        """Bilinear with align_corners True and False by a scale and to explicit sizes of
        non-integer ratio; nearest to a size and nearest downsampling."""

        def forward(self, x):
            a = F.interpolate(x, size=(11, 7), mode="bilinear", align_corners=True)
            b = F.interpolate(x, size=(11, 7), mode="bilinear", align_corners=False)
            c = F.interpolate(x, size=(11, 7), mode="nearest")
            d = F.interpolate(x, scale_factor=0.5, mode="nearest")
            e = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            return torch.cat([a, b, c], dim=1), d, e

    class Pads(nn.Module):
        """Reflect, constant (zero and non-zero value) and edge padding, asymmetric."""

        def __init__(self):
            super().__init__()
            self.reflect = nn.ReflectionPad2d((1, 2, 0, 1))
            self.constant = nn.ConstantPad2d((2, 1, 1, 0), 0.5)
            self.edge = nn.ReplicationPad2d((0, 3, 2, 0))
            self.zero = nn.ZeroPad2d((1, 0, 2, 1))

        def forward(self, x):
            return self.reflect(x), self.constant(x), self.edge(x), self.zero(x)

    class UNet(nn.Module):
        """A two-level U-Net: conv blocks, max pooling, a transposed-conv and an interpolated
        upsampling path, skip concatenation, a 1x1 head with a sigmoid."""

        def __init__(self):
            super().__init__()

            def block(i, o):
                return nn.Sequential(
                    nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()
                )

            self.enc1 = block(3, 4)
            self.enc2 = block(4, 8)
            self.mid = block(8, 8)
            self.up2 = nn.ConvTranspose2d(8, 8, 2, stride=2)
            self.dec2 = block(16, 4)
            self.dec1 = block(8, 4)
            self.head = nn.Conv2d(4, 2, 1)

        def forward(self, x):
            e1 = self.enc1(x)
            e2 = self.enc2(F.max_pool2d(e1, 2))
            m = self.mid(F.max_pool2d(e2, 2))
            d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
            u1 = F.interpolate(d2, scale_factor=2.0, mode="bilinear", align_corners=False)
            d1 = self.dec1(torch.cat([u1, e1], dim=1))
            return torch.sigmoid(self.head(d1))

    class SqueezeExcite(nn.Module):
        """A residual block with squeeze-excitation: ReduceMean (x.mean) and GlobalAveragePool
        (adaptive_avg_pool2d) squeezes, 1x1 convs, sigmoid gating, residual add."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(8, 8, 3, padding=1)
            self.bn = nn.BatchNorm2d(8)
            self.fc1 = nn.Conv2d(8, 2, 1)
            self.fc2 = nn.Conv2d(2, 8, 1)
            self.fc3 = nn.Linear(8, 8)

        def forward(self, x):
            y = F.relu(self.bn(self.conv(x)))
            s = y.mean(dim=(2, 3), keepdim=True)
            gate = torch.sigmoid(self.fc2(F.relu(self.fc1(s))))
            g2 = torch.sigmoid(self.fc3(F.adaptive_avg_pool2d(y, 1).flatten(1)))
            return x + y * gate * g2.unsqueeze(-1).unsqueeze(-1)

    class TwoInputs(nn.Module):
        """Two graph inputs and two outputs: MatMul, a Linear on a 3-D tensor (MatMul + Add),
        Transpose, Split, Squeeze/Unsqueeze, Concat, Reshape."""

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 4)

        def forward(self, a, b):
            m = torch.matmul(a, b)
            y = self.fc(m).permute(0, 2, 1)
            p, q = torch.split(y, [1, 3], dim=1)
            z = torch.cat([q, p.squeeze(1).unsqueeze(1)], dim=1)
            return z.reshape(z.shape[0], -1), m

    g = torch.Generator().manual_seed(1234)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    return [
        ("conv1d", seeded(1, Conv1dNet), (randn(2, 4, 16),), False, [13, 17]),
        ("conv2d", seeded(2, Conv2dNet), (randn(2, 3, 17, 15),), False, [13, 17]),
        ("conv3d", seeded(3, Conv3dNet), (randn(1, 2, 6, 10, 10),), False, [13, 17]),
        ("conv_transpose2d", seeded(4, ConvTransposeNet), (randn(1, 4, 5, 6),), False, [13, 17]),
        ("conv_transpose1d", seeded(5, ConvTranspose1dNet), (randn(2, 3, 7),), False, [13, 17]),
        ("pools", seeded(6, PoolNet), (randn(1, 3, 14, 13),), False, [13, 17, 19]),
        ("norms", seeded(7, NormNet), (randn(2, 6, 7, 9),), False, [13, 17]),
        ("activations", seeded(8, Activations), (randn(2, 3, 5, 4),), False, [13, 17]),
        ("classifier", seeded(9, Classifier), (randn(1, 3, 16, 16),), True, [13, 17]),
        ("upsample", seeded(10, Upsample), (randn(1, 2, 5, 4),), False, [9, 11, 13, 17]),
        ("resize", seeded(11, ResizeNet), (randn(1, 2, 6, 5),), False, [11, 13, 17]),
        ("pads", seeded(12, Pads), (randn(1, 2, 5, 6),), False, [13, 17]),
        ("unet", seeded(13, UNet), (randn(1, 3, 16, 16),), False, [13, 17]),
        ("squeeze_excite", seeded(14, SqueezeExcite), (randn(2, 8, 6, 6),), False, [13, 17]),
        ("two_inputs", seeded(15, TwoInputs), (randn(2, 4, 6), randn(2, 6, 5)), True, [13, 17]),
    ], randn


def make_models(args):
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from onnx import numpy_helper

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    models, randn = build_models()
    if args.only:
        models = [m for m in models if args.only in m[0]]

    os.makedirs(MODELS_OUT, exist_ok=True)
    for entry in os.listdir(MODELS_OUT):
        path = os.path.join(MODELS_OUT, entry)
        if os.path.isdir(path) and not args.only:
            shutil.rmtree(path)

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1

    manifest = []
    for name, module, example, dynamic_batch, opsets in models:
        input_names = [f"x{i}" if len(example) > 1 else "x" for i in range(len(example))]
        with torch.no_grad():
            torch_out = module(*example)
        outputs = list(torch_out) if isinstance(torch_out, tuple) else [torch_out]
        output_names = [f"y{i}" if len(outputs) > 1 else "y" for i in range(len(outputs))]
        dynamic_axes = None
        if dynamic_batch:
            dynamic_axes = {n: {0: "batch"} for n in input_names + output_names}

        # Inputs for each data set: the example, and for dynamic-batch models the same model at
        # batch 3 too (fresh values), so a graph built for one batch size is caught.
        data_sets = [example]
        if dynamic_batch:
            data_sets.append(tuple(randn(3, *t.shape[1:]) for t in example))

        for opset in opsets:
            folder_name = f"{name}_opset{opset}"
            folder = os.path.join(MODELS_OUT, folder_name)
            if os.path.isdir(folder):
                shutil.rmtree(folder)
            os.makedirs(folder)
            path = os.path.join(folder, "model.onnx")
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    module,
                    example,
                    path,
                    dynamo=False,
                    opset_version=opset,
                    input_names=input_names,
                    output_names=output_names,
                    dynamic_axes=dynamic_axes,
                    do_constant_folding=True,
                )
            model = onnx.load(path)
            onnx.checker.check_model(model)
            model.producer_name = "convnet scripts/onnx/make_fixtures.py (torch.onnx.export)"
            del model.metadata_props[:]
            entry = model.metadata_props.add()
            entry.key, entry.value = "fixture", folder_name
            # Export stamps nothing variable, but re-save so the producer line is ours.
            onnx.save(model, path)

            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            worst = 0.0
            for index, inputs in enumerate(data_sets):
                feeds = {n: t.numpy() for n, t in zip(input_names, inputs)}
                ort_out = session.run(output_names, feeds)
                with torch.no_grad():
                    ref = module(*inputs)
                ref = list(ref) if isinstance(ref, tuple) else [ref]
                for r, o in zip(ref, ort_out):
                    scale = max(float(np.abs(o).max()), 1e-30)
                    worst = max(worst, float(np.abs(r.numpy() - o).max()) / scale)
                set_dir = os.path.join(folder, f"test_data_set_{index}")
                os.makedirs(set_dir)
                for i, t in enumerate(feeds.values()):
                    write_pb(numpy_helper, np.ascontiguousarray(t), os.path.join(set_dir, f"input_{i}.pb"))
                for i, o in enumerate(ort_out):
                    write_pb(numpy_helper, np.ascontiguousarray(o), os.path.join(set_dir, f"output_{i}.pb"))
            # The export must be faithful, or the fixture tests something other than the model.
            if worst > 1e-5:
                sys.exit(f"{folder_name}: ONNX Runtime differs from PyTorch by {worst:.2e} (relative to max)")
            ops = sorted({n.op_type for n in model.graph.node})
            manifest.append(
                {
                    "name": folder_name,
                    "opset": opset,
                    "ops": ops,
                    "dynamic_batch": dynamic_batch,
                    "data_sets": [[list(t.shape) for t in inputs] for inputs in data_sets],
                    "torch_vs_onnxruntime": float(f"{worst:.3g}"),
                    "bytes": folder_bytes(folder),
                }
            )
            print(f"{folder_name}: {len(ops)} ops ({', '.join(ops)}), {folder_bytes(folder)} bytes, torch vs ORT {worst:.1e}")

    if not args.only:
        info = {
            "made_by": "scripts/onnx/make_fixtures.py models",
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "models": manifest,
        }
        with open(os.path.join(MODELS_OUT, "manifest.json"), "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")


def write_pb(numpy_helper, array, path):
    tensor = numpy_helper.from_array(array)
    with open(path, "wb") as f:
        f.write(tensor.SerializeToString())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    node = sub.add_parser("node", help="copy ONNX's node tests of the supported operators")
    node.add_argument(
        "--source",
        action="append",
        help="a node-test data folder, repeatable, first wins (default: the installed onnx's)",
    )
    node.add_argument("--max-opset", type=int, default=21, help="newest opset taken (default 21)")
    models = sub.add_parser("models", help="export the PyTorch fixture models")
    models.add_argument("--only", help="only the models whose name contains this")
    args = parser.parse_args()
    if args.command == "node":
        make_node(args)
    else:
        make_models(args)


if __name__ == "__main__":
    main()
