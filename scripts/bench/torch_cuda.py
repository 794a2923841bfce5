"""PyTorch + cuDNN on an NVIDIA GPU: the peer of `convnet --device cuda` in scripts/cuda-bench.sh.

python torch_cuda.py conv  --shared ../shared/bench/pytorch --out conv.json
python torch_cuda.py train --shared ../shared/bench/pytorch --model lenet --batch 128 --out t.json
python torch_cuda.py infer --models resnet50 mobilenet_v2 --batches 1 16 64 --out infer.json

The CPU reference scripts (SHARED: ../shared/bench/pytorch) give the conv shape set, the timer and
LeNet-5 / the Fashion-MNIST CNN; this file adds the device, what a GPU needs to be timed right
(cudnn.benchmark, a synchronize before every clock read), and the two networks of convnet's
generated-scene tasks as its zoo builds them:

- tiny-yolo: 1x96x96 in; six 3x3 conv (no bias) + batch norm + leaky ReLU (0.1) units of 16, 32,
  64, 128, 256, 256 filters, a 2x2 max pool after each of the first four; a 1x1 conv to
  3 anchors x (5 + 10 classes) = 45 channels on the 6x6 grid.
- unet-small: 1x64x64 in, 11 classes; depth 3, 16 to 128 filters, each block two 3x3 conv (no
  bias) + batch norm + ReLU, 2x2 max pools down, 2x2 stride-2 transposed convs up, the skip
  concatenated before the up block; a 1x1 conv head.

Training steps: Adam 1e-3, the batch copied from pinned host memory every step (as convnet
uploads its batches), random data of the right shape (the step's time does not depend on the
values), and the loss read back every step (convnet reads it too). tiny-yolo's loss here is a
stand-in of the same shape of work (objectness BCE + box MSE + class cross-entropy per anchor
cell), not convnet's YOLO loss. Medians over --steps after --warmup steps.
"""
import argparse, json, os, statistics, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F


def shared_module(shared, name):
    sys.path.insert(0, os.path.abspath(shared))
    return __import__(name)


def timed(fn, warmup, iters, min_time=0.0):
    """Median and minimum seconds of fn() over >= iters runs (and >= min_time s), after warmup;
    the device is synchronized before every clock read."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    start = time.perf_counter()
    while len(ts) < iters or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
        if len(ts) >= 10000:
            break
    return statistics.median(ts), min(ts), len(ts)


def conv(a, dev):
    cases = shared_module(a.shared, "conv_cases").CASES
    res = []
    for (name, n, cin, h, w, cout, k, s, p, g) in cases:
        x = torch.randn(n, cin, h, w, device=dev)
        wt = torch.randn(cout, cin // g, k, k, device=dev) * 0.1
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        flop = 2 * n * cout * ho * wo * (cin // g) * k * k
        with torch.inference_mode():
            fwd = timed(lambda: F.conv2d(x, wt, None, s, p, 1, g), a.warmup, a.iters, a.min_time)
        xg, wg = x.clone().requires_grad_(True), wt.clone().requires_grad_(True)
        gy = torch.randn(n, cout, ho, wo, device=dev)

        def fb():
            xg.grad = None
            wg.grad = None
            F.conv2d(xg, wg, None, s, p, 1, g).backward(gy)

        fwdbwd = timed(fb, a.warmup, a.iters, a.min_time)
        r = dict(case=name, mflop_fwd=round(flop / 1e6, 2),
                 fwd_ms=round(fwd[0] * 1e3, 4), fwd_min_ms=round(fwd[1] * 1e3, 4),
                 fwd_gflops=round(flop / fwd[0] / 1e9, 1),
                 fwdbwd_ms=round(fwdbwd[0] * 1e3, 4), fwdbwd_min_ms=round(fwdbwd[1] * 1e3, 4),
                 fwdbwd_gflops=round(3 * flop / fwdbwd[0] / 1e9, 1))
        print(json.dumps(r), flush=True)
        res.append(r)
    return res


def unit(cin, cout, act):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), act]


def tiny_yolo():
    layers, cin = [], 1
    for i, f in enumerate([16, 32, 64, 128, 256, 256]):
        layers += unit(cin, f, nn.LeakyReLU(0.1))
        if i < 4:
            layers.append(nn.MaxPool2d(2))
        cin = f
    layers.append(nn.Conv2d(cin, 3 * (5 + 10), 1))
    return nn.Sequential(*layers)


class UNetSmall(nn.Module):
    def __init__(self, depth=3, filters=16, classes=11):
        super().__init__()
        block = lambda i, o: nn.Sequential(*unit(i, o, nn.ReLU()), *unit(o, o, nn.ReLU()))
        widths = [filters << d for d in range(depth + 1)]
        self.down = nn.ModuleList(block(i, o) for i, o in zip([1] + widths[:-2], widths[:-1]))
        self.bottom = block(widths[-2], widths[-1])
        self.upconv = nn.ModuleList(nn.ConvTranspose2d(widths[d + 1], widths[d], 2, stride=2)
                                    for d in range(depth))
        self.up = nn.ModuleList(block(2 * widths[d], widths[d]) for d in range(depth))
        self.head = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x):
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for d in reversed(range(len(self.up))):
            x = self.up[d](torch.cat([skips[d], self.upconv[d](x)], 1))
        return self.head(x)


def yolo_loss(out, target):
    n, _, gh, gw = out.shape
    out = out.view(n, 3, 15, gh, gw)
    box, obj, cls = out[:, :, :4], out[:, :, 4], out[:, :, 5:]
    return (F.mse_loss(box, target["box"]) + F.binary_cross_entropy_with_logits(obj, target["obj"])
            + F.cross_entropy(cls.permute(0, 1, 3, 4, 2).reshape(-1, 10), target["cls"].reshape(-1)))


def train(a, dev):
    if a.model in ("lenet", "textbook"):
        # The CPU anchor's networks, imported so both scripts time the same layers.
        tt = shared_module(a.shared, "train_torch")
        model, shape = getattr(tt, a.model)(), (1, 28, 28)
        target = lambda n: torch.randint(0, 10, (n,))
        loss_fn = F.cross_entropy
    elif a.model == "tiny-yolo":
        model, shape = tiny_yolo(), (1, 96, 96)
        target = lambda n: dict(box=torch.randn(n, 3, 4, 6, 6), obj=torch.rand(n, 3, 6, 6).round(),
                                cls=torch.randint(0, 10, (n, 3, 6, 6)))
        loss_fn = yolo_loss
    else:
        model, shape = UNetSmall(), (1, 64, 64)
        target = lambda n: torch.randint(0, 11, (n, 64, 64))
        loss_fn = F.cross_entropy
    model = model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_host = torch.rand(a.batch, *shape).pin_memory()
    t_host = target(a.batch)
    t_host = {k: v.pin_memory() for k, v in t_host.items()} if isinstance(t_host, dict) else t_host.pin_memory()
    moved = lambda t: ({k: v.to(dev, non_blocking=True) for k, v in t.items()}
                       if isinstance(t, dict) else t.to(dev, non_blocking=True))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.amp)

    def step():
        x, t = x_host.to(dev, non_blocking=True), moved(t_host)
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(model(x), t)
        loss.backward()
        opt.step()
        loss.item()

    med, fastest, n = timed(step, a.warmup, a.steps)
    r = dict(model=a.model, batch=a.batch, amp=a.amp, steps=n,
             params=sum(p.numel() for p in model.parameters()),
             step_ms=round(med * 1e3, 3), step_min_ms=round(fastest * 1e3, 3),
             img_per_s=round(a.batch / med, 1))
    print(json.dumps(r), flush=True)
    return [r]


def infer(a, dev):
    import torchvision
    res = []
    for name in a.models:
        m = getattr(torchvision.models, name)(weights=None).to(dev).eval()
        for b in a.batches:
            x = torch.randn(b, 3, 224, 224, device=dev)
            with torch.inference_mode():
                med, fastest, n = timed(lambda: m(x), a.warmup, a.iters)
            r = dict(model=name, batch=b, runs=n, median_ms=round(med * 1e3, 3),
                     min_ms=round(fastest * 1e3, 3), img_per_s=round(b / med, 1))
            print(json.dumps(r), flush=True)
            res.append(r)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["conv", "train", "infer"])
    ap.add_argument("--device", default="cuda", help="a torch device; cuda (default) or cuda:N")
    ap.add_argument("--shared", default=os.environ.get("SHARED_BENCH_PYTORCH", "../shared/bench/pytorch"),
                    help="the CPU reference scripts' folder (conv cases, LeNet-5, the Fashion-MNIST CNN)")
    ap.add_argument("--model", choices=["lenet", "textbook", "tiny-yolo", "unet-small"], default="lenet")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=50, help="timed training steps")
    ap.add_argument("--amp", action="store_true", help="train under bf16 autocast (f32 weights)")
    ap.add_argument("--models", nargs="+", default=["resnet50", "mobilenet_v2"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--strict-f32", action="store_true", help="no TF32 in cuDNN's convolutions either")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("torch_cuda.py: PyTorch sees no CUDA device (torch %s)" % torch.__version__)
    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    if a.strict_f32:
        # Full f32 everywhere: PyTorch's own default already keeps matmuls off TF32, but lets
        # cuDNN's convolutions use it.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    res = dict(conv=conv, train=train, infer=infer)[a.what](a, dev)
    out = dict(framework="pytorch", torch=torch.__version__, cudnn=torch.backends.cudnn.version(),
               gpu=torch.cuda.get_device_name(dev),
               tf32=dict(matmul=torch.backends.cuda.matmul.allow_tf32, cudnn=torch.backends.cudnn.allow_tf32),
               results=res)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
