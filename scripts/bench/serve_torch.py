"""The peer of `convnet serve` in its load benchmark (scripts/serve-bench.sh): the same
classifiers behind FastAPI + uvicorn + PyTorch eager, on the same route and JSON shape as
convnet's `POST /v1/classify?model=NAME&top=5` (a raw image/jpeg or image/png body).

    CONVNET_RESNET18=resnet18.pth uvicorn serve_torch:app --host 127.0.0.1 --port 8090

Models: `lenet` (LeNet-5 on 28x28 grey, as convnet's `lenet5`) and `resnet18` (torchvision's,
with the state_dict in $CONVNET_RESNET18 — the same file convnet serves). Speed does not depend on
the weights' values; the pictures are prepared as convnet prepares them (grey, resized and
centre-cropped for LeNet-5; resize 256, centre crop 224, ImageNet normalisation for ResNet-18).
Threads: $TORCH_THREADS (default 2), as convnet's workers on a 2-core machine.
"""
import io
import os

import torch
import torch.nn as nn
import torchvision
from fastapi import FastAPI, HTTPException, Request
from PIL import Image
from starlette.concurrency import run_in_threadpool
from torchvision import transforms

torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "2")))
torch.manual_seed(0)


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def resnet18():
    net = torchvision.models.resnet18(weights=None)
    path = os.environ.get("CONVNET_RESNET18")
    if path:
        net.load_state_dict(torch.load(path, map_location="cpu"))
    return net


MODELS = {
    "lenet": (
        lenet().eval(),
        transforms.Compose([
            transforms.Grayscale(),
            transforms.Resize(28),
            transforms.CenterCrop(28),
            transforms.ToTensor(),
            transforms.Normalize([0.2860], [0.3530]),
        ]),
        [f"class {i}" for i in range(10)],
    ),
    "resnet18": (
        resnet18().eval(),
        transforms.Compose([
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]),
        [f"class {i}" for i in range(1000)],
    ),
}

app = FastAPI()


@app.get("/healthz")
def healthz():
    return {"status": "ok", "models": len(MODELS)}


@app.post("/v1/classify")
async def classify(request: Request, model: str = "lenet", top: int = 5):
    if model not in MODELS:
        raise HTTPException(404, f"no model {model}")
    body = await request.body()
    # Decoding and the network run on FastAPI's thread pool, as a typical PyTorch service does.
    return await run_in_threadpool(infer, body, model, top)


def infer(body: bytes, model: str, top: int):
    try:
        picture = Image.open(io.BytesIO(body)).convert("RGB")
    except Exception as e:  # noqa: BLE001 - any decoder failure is the client's picture
        raise HTTPException(400, f"cannot decode the picture: {e}")
    net, prepare, classes = MODELS[model]
    with torch.inference_mode():
        p = torch.softmax(net(prepare(picture).unsqueeze(0)), dim=1)[0]
    values, indices = p.topk(min(top, len(classes)))
    return {
        "model": model,
        "width": picture.width,
        "height": picture.height,
        "predictions": [
            {"index": int(i), "class": classes[int(i)], "probability": float(v)}
            for v, i in zip(values, indices)
        ],
    }
