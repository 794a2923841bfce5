"""The PyTorch side of convnet's style-transfer benchmark: the same optimisation as
`convnet style` (crates/style), iteration for iteration.

VGG-19's features up to conv5_1 (torchvision's `vgg19`), pixels in [0, 1] normalised with the
ImageNet mean and std inside the graph, content cost at conv4_2, Gram-matrix style costs at
conv1_1 ... conv5_1 with equal weights, J = 10 J_content + 40 J_style, Adam lr 0.01 on the
pixels, clipped to [0, 1] after each step. Pretrained weights are optional (`--weights
vgg19.pth`): speed does not depend on them, and none can be fetched here.

    /tmp/venv-ref/bin/python scripts/bench/style_torch.py --content C.jpg --style S.jpg \
        --size 400 --iterations 20 --threads 2 [--optimizer lbfgs]
"""
import argparse
import json
import time

import torch
import torchvision
from PIL import Image

STYLE = [1, 6, 11, 20, 29]  # ReLU outputs of conv1_1, conv2_1, conv3_1, conv4_1, conv5_1
CONTENT = 22  # conv4_2


def load(path, size_hw, crop_to_aspect):
    img = Image.open(path).convert("RGB")
    h, w = size_hw
    if crop_to_aspect:
        iw, ih = img.size
        target = w / h
        cw, ch = (round(ih * target), ih) if iw / ih > target else (iw, round(iw / target))
        img = img.crop(((iw - cw) // 2, (ih - ch) // 2, (iw - cw) // 2 + cw, (ih - ch) // 2 + ch))
    img = img.resize((w, h), Image.BICUBIC)
    return torchvision.transforms.functional.to_tensor(img).unsqueeze(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--content", required=True)
    p.add_argument("--style", required=True)
    p.add_argument("--size", type=int, default=400)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--optimizer", choices=["adam", "lbfgs"], default="adam")
    p.add_argument("--weights")
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    iw, ih = Image.open(a.content).size
    scale = a.size / max(iw, ih)
    size = (max(1, round(ih * scale)), max(1, round(iw * scale)))
    content = load(a.content, size, False)
    style = load(a.style, size, True)

    vgg = torchvision.models.vgg19(weights=None)
    if a.weights:
        vgg.load_state_dict(torch.load(a.weights, map_location="cpu"))
    features = vgg.features[: max(STYLE + [CONTENT]) + 1].eval()
    for param in features.parameters():
        param.requires_grad_(False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def acts(x):
        x = (x - mean) / std
        out = {}
        for i, layer in enumerate(features):
            x = layer(x)
            if i in STYLE or i == CONTENT:
                out[i] = x
        return out

    def gram(a):
        n, c, h, w = a.shape
        u = a.reshape(n, c, h * w)
        return u @ u.transpose(1, 2)

    with torch.no_grad():
        a_c = acts(content)[CONTENT]
        grams = {i: gram(a) for i, a in acts(style).items() if i in STYLE}

    def cost(g):
        out = acts(g)
        a_g = out[CONTENT]
        _, c, h, w = a_g.shape
        j_content = ((a_c - a_g) ** 2).sum() / (4 * h * w * c)
        j_style = 0
        for i in STYLE:
            _, c, h, w = out[i].shape
            j_style = j_style + 0.2 * ((grams[i] - gram(out[i])) ** 2).sum() / (4 * c * c * (h * w) ** 2)
        return 10 * j_content + 40 * j_style

    g = (content + torch.empty_like(content).uniform_(-0.25, 0.25)).clamp(0, 1).requires_grad_(True)
    if a.optimizer == "adam":
        opt = torch.optim.Adam([g], lr=0.01, eps=1e-7)
    else:
        opt = torch.optim.LBFGS([g], history_size=10, max_iter=1, line_search_fn="strong_wolfe")

    evaluations = [0]

    def closure():
        evaluations[0] += 1
        opt.zero_grad()
        j = cost(g)
        j.backward()
        return j

    costs, times = [], []
    for i in range(a.warmup + a.iterations):
        if i == a.warmup:
            evaluations[0] = 0
        t0 = time.perf_counter()
        j = opt.step(closure)
        with torch.no_grad():
            g.clamp_(0, 1)
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)
            costs.append(float(j.detach()))
    total = sum(times)
    print(json.dumps({
        "framework": f"PyTorch {torch.__version__}",
        "threads": a.threads,
        "size": [size[1], size[0]],
        "optimizer": a.optimizer,
        "iterations": a.iterations,
        "seconds": total,
        "iterations_per_second": a.iterations / total,
        "evaluations": evaluations[0],
        "first_cost": costs[0],
        "last_cost": costs[-1],
    }))


if __name__ == "__main__":
    main()
