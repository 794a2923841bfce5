#!/usr/bin/env bash
# Fetches the tree-crown data set of issue 29 with the ordinary client only, into third_party/
# (ignored by git; nothing here is committed): two human-labelled aerial crops of Yellowstone
# from the `data/` folder of PyPI's `deepforest` 2.1.0 wheel (MIT), fetched with
# `pip download --no-deps` and checked against the wheel's SHA-256:
#   2019_YELL_2_528000_4978000_image_crop2.png  2299x2472 px, 574 trees  (train)
#   2019_YELL_2_541000_4977000_image_crop.png   1249x1035 px, 279 trees  (val, held out)
# They are unpacked into third_party/deepforest/ and laid out as a Pascal VOC data set:
#   third_party/trees/JPEGImages/*.png           (hard links to the pictures, else copies)
#   third_party/trees/Annotations/*.xml          (each picture's boxes, class "Tree")
#   third_party/trees/ImageSets/Main/{train,val}.txt
# Runs again harmlessly: what is there already is kept.
#
#   scripts/fetch-trees.sh
set -euo pipefail
cd "$(dirname "$0")/.."

wheel=deepforest-2.1.0-py3-none-any.whl
wheel_sha256=8c2798d8e9be7f0004b194fe207b76c1d9fff6e711b3db67b9508dcd5d00ae54
train=2019_YELL_2_528000_4978000_image_crop2
val=2019_YELL_2_541000_4977000_image_crop
src=third_party/deepforest
dst=third_party/trees

# What each crop's XML must hold: a truncated or different file fails here, not in training.
expected_boxes() {
    case $1 in
        "$train") echo 574 ;;
        "$val") echo 279 ;;
    esac
}

complete() {
    local stem
    for stem in "$train" "$val"; do
        [ -f "$dst/JPEGImages/$stem.png" ] && [ -f "$dst/Annotations/$stem.xml" ] || return 1
    done
    [ -f "$dst/ImageSets/Main/train.txt" ] && [ -f "$dst/ImageSets/Main/val.txt" ]
}

if complete; then
    echo "tree crowns: $dst is there already"
    exit 0
fi

if [ ! -f "$src/$train.png" ] || [ ! -f "$src/$train.xml" ] \
    || [ ! -f "$src/$val.png" ] || [ ! -f "$src/$val.xml" ]; then
    for tool in unzip sha256sum; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "$tool is missing: the tree-crown data cannot be unpacked (apt-get install $tool)" >&2
            exit 1
        fi
    done
    if ! python3 -m pip --version >/dev/null 2>&1; then
        echo "pip is missing: the deepforest wheel cannot be fetched (apt-get install python3-pip)" >&2
        exit 1
    fi
    echo "==> fetching deepforest 2.1.0's wheel (pip download --no-deps, ~20 MB)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    python3 -m pip download -q --no-deps --no-cache-dir deepforest==2.1.0 -d "$tmp"
    if [ ! -f "$tmp/$wheel" ]; then
        echo "pip download did not give $wheel (got: $(ls "$tmp"))" >&2
        exit 1
    fi
    got=$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)
    if [ "$got" != "$wheel_sha256" ]; then
        echo "$wheel: SHA-256 $got, expected $wheel_sha256" >&2
        exit 1
    fi
    mkdir -p "$src"
    unzip -o -j -q "$tmp/$wheel" \
        "deepforest/data/$train.png" "deepforest/data/$train.xml" \
        "deepforest/data/$val.png" "deepforest/data/$val.xml" -d "$src"
fi

for stem in "$train" "$val"; do
    boxes=$(grep -c '<object>' "$src/$stem.xml" || true)
    if [ "$boxes" != "$(expected_boxes "$stem")" ]; then
        echo "$src/$stem.xml: $boxes boxes, expected $(expected_boxes "$stem") (delete $src and run again)" >&2
        exit 1
    fi
done

echo "==> laying the crops out as a Pascal VOC data set in $dst"
mkdir -p "$dst/JPEGImages" "$dst/Annotations" "$dst/ImageSets/Main"
for stem in "$train" "$val"; do
    ln -f "$src/$stem.png" "$dst/JPEGImages/$stem.png" 2>/dev/null \
        || cp -f "$src/$stem.png" "$dst/JPEGImages/$stem.png"
    cp -f "$src/$stem.xml" "$dst/Annotations/$stem.xml"
done
# The split files last: complete() takes their presence to mean the rest is in place.
echo "$train" >"$dst/ImageSets/Main/train.txt"
echo "$val" >"$dst/ImageSets/Main/val.txt"
echo "tree crowns: $dst (train: $train, 574 boxes; val: $val, 279 boxes)"
