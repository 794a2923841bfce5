#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for the page's browser test
# (crates/server/tests/browser.rs) when either is missing.
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
echo "==> installing chromium and chromium-driver (Debian packages) for the browser test"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
$sudo apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver
