#!/usr/bin/env python3
"""The peer of issue 29's tree-crown detector: Ultralytics YOLOv8n trained from scratch on the tiles.

What it measures, on the tile set that `convnet dataset tile` (or the shared make_tiles.py) writes
(YOLO layout, data.yaml, coco_val.json):
  - training wall time per epoch (the training pass alone, and with Ultralytics' own per-epoch
    validation), from Ultralytics' callbacks: <out>/<name>/epoch_times.csv;
  - the held-out detections of the last epoch's weights (last.pt: the epoch count is fixed in
    advance, so no checkpoint is chosen on the held-out tiles): every picture of the val split,
    conf 0.001, NMS IoU 0.7, at most 100 per picture, at the training image size, written as a
    COCO results list, <out>/predictions.json, whose image and category ids are those of
    coco_val.json (images matched by file name, categories by class name);
  - with --pycocotools, pycocotools' AP for that file (an independent check of convnet's mAP code).
A summary with versions, thread counts and times goes to <out>/summary.json.

YOLOv8n is built from its yaml with random weights (pretrained=False; nothing is downloaded,
YOLO_OFFLINE=1); batch 8, 416 px, device cpu, seed 0, default augmentation, amp and plots off.
Ultralytics on cpu uses 0 data-loader workers whatever --workers says, and one torch thread
unless --threads is given.

The comparison run of scripts/trees.sh (after `convnet dataset tile ... -o runs/trees/tiles`):

    /tmp/venv-ref/bin/python scripts/bench/trees_ultralytics.py \\
        --data runs/trees/tiles/data.yaml --epochs 60 --threads 2 --out runs/trees/peer --pycocotools
    target/release/convnet eval-detections --gt runs/trees/tiles/coco_val.json \\
        --pred runs/trees/peer/predictions.json --json

Environment: python3 -m venv /tmp/venv-ref && /tmp/venv-ref/bin/pip install torch torchvision
ultralytics pycocotools numpy pillow.
"""
import argparse
import csv
import json
import os
import platform
import sys
import time

os.environ.setdefault("YOLO_OFFLINE", "1")  # no connectivity checks, no hub, no downloads

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


def fail(message):
    sys.exit(f"trees_ultralytics.py: {message}")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="runs/trees/tiles/data.yaml", help="the tile set's data.yaml")
    ap.add_argument("--model", default="yolov8n.yaml", help="model yaml (built from scratch)")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--imgsz", type=int, default=416)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val", type=int, default=1, help="1: validate every epoch (Ultralytics default); 0: only at the end")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads; 0 = Ultralytics default (one on cpu)")
    ap.add_argument("--out", default="runs/trees/peer")
    ap.add_argument("--name", default=None, help="Ultralytics run name under --out (default yolov8n_e<epochs>)")
    ap.add_argument("--coco-val", default=None,
                    help="COCO ground truth of the val split (default: coco_val.json beside --data)")
    ap.add_argument("--weights", default=None,
                    help="skip training and predict with these weights (e.g. an earlier run's last.pt)")
    ap.add_argument("--pycocotools", action="store_true", help="print pycocotools' AP of the predictions")
    a = ap.parse_args()
    if a.epochs < 1 or a.imgsz < 32 or a.batch < 1 or a.threads < 0:
        fail("--epochs and --batch must be at least 1, --imgsz at least 32, --threads at least 0")
    return a


def read_data_yaml(path):
    """The val image folder and class names of an Ultralytics data.yaml."""
    import yaml

    try:
        with open(path) as f:
            d = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        fail(f"{path}: {e}")
    if not isinstance(d, dict) or "val" not in d or "names" not in d:
        fail(f"{path}: needs `val:` and `names:`")
    root = d.get("path") or os.path.dirname(os.path.abspath(path))
    if not os.path.isabs(root):
        root = os.path.join(os.path.dirname(os.path.abspath(path)), root)
    val = d["val"] if os.path.isabs(d["val"]) else os.path.join(root, d["val"])
    names = d["names"]
    if isinstance(names, dict):  # {0: name, 1: name}
        names = [names[k] for k in sorted(names)]
    return val, [str(n) for n in names]


def read_coco_ids(path, names):
    """coco_val.json's image id per file name and category id per class index (by name)."""
    try:
        with open(path) as f:
            coco = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    images = {}
    try:
        for im in coco["images"]:
            base = os.path.basename(im["file_name"])
            if base in images:
                fail(f"{path}: file name {base} is listed twice")
            images[base] = im["id"]
        by_name = {c["name"]: c["id"] for c in coco["categories"]}
    except (KeyError, TypeError) as e:
        fail(f"{path}: not COCO ground truth (images need file_name and id, categories name and id): {e!r}")
    if not images:
        fail(f"{path}: no images")
    missing = [n for n in names if n not in by_name]
    if missing:
        fail(f"{path}: no category named {', '.join(missing)} (categories: {sorted(by_name)})")
    return images, [by_name[n] for n in names]


def train(a, name):
    """Trains from the yaml; returns the run directory, per-epoch rows and the timing summary."""
    import torch
    from ultralytics import YOLO

    model = YOLO(a.model)  # architecture from yaml, random init
    rows, t = [], {}

    def on_train_start(tr):
        t["train_start"] = time.perf_counter()

    def on_epoch_start(tr):
        t["ep0"] = time.perf_counter()

    def on_epoch_end(tr):
        t["ep_train"] = time.perf_counter()
        t["threads"] = torch.get_num_threads()
        t["workers"] = tr.args.workers  # Ultralytics forces 0 dataloader workers on cpu
        t["pending"] = True

    def on_fit_epoch_end(tr):
        now = time.perf_counter()
        if not t.pop("pending", False):  # the final best.pt validation also fires this callback
            return
        m = tr.metrics or {}
        rows.append({"epoch": tr.epoch + 1,
                     "train_s": round(t["ep_train"] - t["ep0"], 3),
                     "val_s": round(now - t["ep_train"], 3),
                     "epoch_s": round(now - t["ep0"], 3),
                     "mAP50_val": round(float(m.get("metrics/mAP50(B)", float("nan"))), 4),
                     "mAP50-95_val": round(float(m.get("metrics/mAP50-95(B)", float("nan"))), 4)})
        r = rows[-1]
        print(f"[timing] epoch {r['epoch']}/{a.epochs} train {r['train_s']:.1f}s val {r['val_s']:.1f}s "
              f"mAP50 {r['mAP50_val']:.3f}", flush=True)

    model.add_callback("on_train_start", on_train_start)
    model.add_callback("on_train_epoch_start", on_epoch_start)
    model.add_callback("on_train_epoch_end", on_epoch_end)
    model.add_callback("on_fit_epoch_end", on_fit_epoch_end)

    t0 = time.perf_counter()
    model.train(data=os.path.abspath(a.data), epochs=a.epochs, imgsz=a.imgsz, batch=a.batch,
                device=a.device, workers=a.workers, seed=a.seed, pretrained=False, plots=False,
                amp=False, val=bool(a.val), project=os.path.abspath(a.out), name=name, exist_ok=True,
                verbose=True)
    total = time.perf_counter() - t0
    if not rows:
        fail("Ultralytics finished without reporting an epoch")

    run = os.path.join(os.path.abspath(a.out), name)
    with open(os.path.join(run, "epoch_times.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    tr = [r["train_s"] for r in rows]
    ep = [r["epoch_s"] for r in rows]
    timing = {"torch_threads_during_training": t.get("threads"), "dataloader_workers_used": t.get("workers"),
              "train_s_per_epoch_mean": sum(tr) / len(tr), "train_s_per_epoch_median": sorted(tr)[len(tr) // 2],
              "epoch_incl_val_s_mean": sum(ep) / len(ep),
              "loop_s": time.perf_counter() - t.get("train_start", t0), "total_s_incl_setup_final_val": total,
              "last_epoch_ultralytics_val": {"mAP50": rows[-1]["mAP50_val"], "mAP50-95": rows[-1]["mAP50-95_val"]}}
    return os.path.join(run, "weights", "last.pt"), timing


def predict(weights, val_dir, image_ids, category_ids, a):
    """COCO results for every picture of val_dir, in coco_val.json's ids."""
    from ultralytics import YOLO

    try:
        files = sorted(f for f in os.listdir(val_dir) if f.lower().endswith(IMAGE_SUFFIXES))
    except OSError as e:
        fail(f"{val_dir}: {e}")
    if not files:
        fail(f"{val_dir}: no pictures")
    unknown = [f for f in files if f not in image_ids]
    if unknown:
        fail(f"{val_dir}/{unknown[0]}: not in the ground truth ({len(unknown)} such pictures)")
    unseen = sorted(set(image_ids) - set(files))
    if unseen:
        fail(f"the ground truth lists {unseen[0]}, which is not in {val_dir} ({len(unseen)} such pictures)")

    model = YOLO(weights)
    results = []
    for f in files:
        [r] = model.predict(os.path.join(val_dir, f), conf=0.001, iou=0.7, max_det=100, imgsz=a.imgsz,
                            device=a.device, verbose=False)
        for (x1, y1, x2, y2), score, cls in zip(r.boxes.xyxy.tolist(), r.boxes.conf.tolist(),
                                                r.boxes.cls.tolist()):
            results.append({"image_id": image_ids[f], "category_id": category_ids[int(cls)],
                            "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                            "score": round(score, 5)})
    return results, len(files)


def pycocotools_ap(gt, predictions):
    """pycocotools' AP@[.5:.95] and AP@0.5 (100 detections per picture) of a results file."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth = COCO(gt)
    if not predictions:  # loadRes refuses an empty list; no detections score 0
        return {"map": 0.0, "map50": 0.0}
    e = COCOeval(truth, truth.loadRes(predictions), "bbox")
    e.evaluate()
    e.accumulate()
    e.summarize()
    return {"map": float(e.stats[0]), "map50": float(e.stats[1])}


def main():
    a = parse_args()
    name = a.name or f"yolov8n_e{a.epochs}"
    val_dir, names = read_data_yaml(a.data)
    gt = a.coco_val or os.path.join(os.path.dirname(os.path.abspath(a.data)), "coco_val.json")
    image_ids, category_ids = read_coco_ids(gt, names)  # checked before an hour of training

    import torch
    import ultralytics
    import ultralytics.utils.torch_utils as tu

    if a.threads > 0:  # select_device() calls torch.set_num_threads(NUM_THREADS) on cpu
        tu.NUM_THREADS = a.threads
    os.makedirs(a.out, exist_ok=True)

    summary = {"ultralytics": ultralytics.__version__, "torch": torch.__version__,
               "python": platform.python_version(), "cpu_count": os.cpu_count(), "data": os.path.abspath(a.data),
               "epochs": a.epochs, "imgsz": a.imgsz, "batch": a.batch, "device": a.device,
               "workers": a.workers, "seed": a.seed, "threads": a.threads}
    if a.weights:
        weights = a.weights
    else:
        weights, timing = train(a, name)
        summary.update(timing)
    summary["weights"] = os.path.abspath(weights)

    t0 = time.perf_counter()
    predictions, pictures = predict(weights, val_dir, image_ids, category_ids, a)
    summary["predict_s"] = time.perf_counter() - t0
    path = os.path.join(a.out, "predictions.json")
    with open(path, "w") as f:
        json.dump(predictions, f)
    summary.update({"predictions": os.path.abspath(path), "ground_truth": os.path.abspath(gt),
                    "val_pictures": pictures, "detections": len(predictions)})
    print(f"wrote {path}: {len(predictions)} detections on {pictures} held-out pictures")

    if a.pycocotools:
        ap = pycocotools_ap(gt, predictions)
        summary["pycocotools"] = ap
        print(f"pycocotools: AP@[.5:.95] {ap['map']:.4f}   AP@0.5 {ap['map50']:.4f}")
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
