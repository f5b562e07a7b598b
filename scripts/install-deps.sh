#!/usr/bin/env bash
# Installs every Debian 12 package uakd needs to build, test and check itself against its
# peers (PyTorch, POT, OpenCV). Idempotent: packages already present are skipped quickly.
set -euo pipefail
pkgs=(
  build-essential clang libomp-dev libclang-rt-dev make pkg-config
  libdnnl-dev libopenblas-dev liblapacke-dev libcjson-dev
  libpng-dev libturbojpeg0-dev libjpeg62-turbo-dev zlib1g-dev libcairo2-dev fonts-dejavu-core
  python3 python3-numpy python3-torch python3-pot python3-opencv
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
