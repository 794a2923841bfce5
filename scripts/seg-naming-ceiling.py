#!/usr/bin/env python3
"""Where a segmentation network's mean IoU is lost: finding the items or naming them.

Reads the pixel confusion matrix of `convnet eval SEG_RUN --json` (class 0 is background) and
prints, from it alone:

- the mean IoU and how well items are found whatever their class (background against any item);
- the naming accuracy: of the pixels that are an item and are taken for one, the share given
  the right item class;
- the mean IoU as the naming errors shrink (each scaled by the same factor, the outlines
  kept), and the naming accuracy a target mean IoU needs;
- with a classifier's `convnet eval CLASSIFIER --json` (on the same items' classes), the mean
  IoU were every found item pixel of class t named as that classifier names whole items of
  class t (its confusion row, normalised): what the network's outlines allow with a classifier's
  naming.

Standard library only:

    convnet eval runs/seg-yolo-ft80k --json > seg.json
    convnet eval runs/unet-enc-ceiling --json > cls.json
    python3 scripts/seg-naming-ceiling.py seg.json cls.json --target 0.85
"""

import argparse
import json
import sys


def mean_iou(m):
    k = len(m)
    ious = []
    for c in range(k):
        tp = m[c][c]
        fp = sum(m[t][c] for t in range(k)) - tp
        fn = sum(m[c]) - tp
        if tp + fp + fn > 0:
            ious.append(tp / (tp + fp + fn))
    return sum(ious) / len(ious) if ious else 0.0


def item_iou(m):
    k = len(m)
    tp = sum(m[t][p] for t in range(1, k) for p in range(1, k))
    fp = sum(m[0][p] for p in range(1, k))
    fn = sum(m[t][0] for t in range(1, k))
    return tp / (tp + fp + fn)


def naming_accuracy(m):
    k = len(m)
    found = sum(m[t][p] for t in range(1, k) for p in range(1, k))
    return sum(m[t][t] for t in range(1, k)) / found


def scale_errors(m, factor, first=0):
    """Confusion `m` with each error among classes `first`.. (true t, predicted p != t) kept
    with probability `factor` and the rest moved to the diagonal; rows and columns before
    `first` unchanged."""
    k = len(m)
    out = [list(map(float, row)) for row in m]
    for t in range(first, k):
        for p in range(first, k):
            if p != t:
                kept = out[t][p] * factor
                out[t][t] += out[t][p] - kept
                out[t][p] = kept
    return out


def scale_naming_errors(m, factor):
    """Each misnamed item pixel (item taken for another item) kept with probability `factor`,
    the rest named right; background and missed pixels unchanged."""
    return scale_errors(m, factor, first=1)


def largest_factor(score, target):
    """The largest error factor in [0, 1] at which `score(factor)` still reaches `target`
    (bisection; the score falls as the factor grows), or None if even 0 does not."""
    if score(0.0) < target:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if score(mid) >= target:
            lo = mid
        else:
            hi = mid
    return lo


def named_like(m, classifier):
    """Found item pixels of true class t redistributed by the classifier's row for t."""
    k = len(m)
    out = [list(map(float, row)) for row in m]
    for t in range(1, k):
        row = classifier[t - 1]
        total = sum(row)
        found = sum(m[t][p] for p in range(1, k))
        for p in range(1, k):
            out[t][p] = found * row[p - 1] / total
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("segmentation", help="convnet eval SEG_RUN --json output")
    parser.add_argument("classifier", nargs="?", help="convnet eval CLASSIFIER --json output")
    parser.add_argument("--target", type=float, default=0.85)
    args = parser.parse_args()

    seg = json.load(open(args.segmentation))
    m = seg.get("test_confusion")
    if m is None:
        sys.exit(f"{args.segmentation} has no test_confusion: not a segmentation evaluation")
    k = len(m)
    print(f"mean IoU {mean_iou(m):.4f} ({k} classes); items found: IoU {item_iou(m):.4f}")
    print(f"naming accuracy of found item pixels: {naming_accuracy(m):.4f}")
    print(f"mean IoU with every found item pixel named right: {mean_iou(scale_naming_errors(m, 0)):.4f}")
    print("naming errors kept -> naming accuracy, mean IoU")
    for factor in [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]:
        s = scale_naming_errors(m, factor)
        print(f"  {factor:.1f} -> {naming_accuracy(s):.4f}, {mean_iou(s):.4f}")
    factor = largest_factor(lambda f: mean_iou(scale_naming_errors(m, f)), args.target)
    if factor is None:
        print(f"even perfect naming stays below {args.target}: the outlines limit")
    else:
        need = naming_accuracy(scale_naming_errors(m, factor))
        print(f"mean IoU {args.target} needs naming accuracy {need:.4f}")
    if args.classifier:
        cls = json.load(open(args.classifier))
        c = cls.get("confusion")
        if c is None or len(c) != k - 1:
            sys.exit(f"{args.classifier} needs a confusion matrix over the {k - 1} item classes")
        named = named_like(m, c)
        print(
            f"classifier accuracy {cls['accuracy']:.4f}; found item pixels named as it names "
            f"items: naming accuracy {naming_accuracy(named):.4f}, mean IoU {mean_iou(named):.4f}"
        )
        # The classifier's errors scaled alike: how accurate a classifier of the same kind of
        # mistakes would have to be for the outlines to reach the target.
        factor = largest_factor(
            lambda f: mean_iou(named_like(m, scale_errors(c, f))), args.target
        )
        if factor is not None:
            need = scale_errors(c, factor)
            accuracy = sum(need[i][i] for i in range(len(need))) / sum(map(sum, need))
            print(
                f"mean IoU {args.target} needs a classifier making the same kind of mistakes at "
                f"{accuracy:.4f} accuracy (its errors x{factor:.3f})"
            )


if __name__ == "__main__":
    main()
