#!/usr/bin/env bash
# One-step install of photo2cad into ./.venv, system libraries for headless rendering included.
#
#   bash scripts/install.sh            # CPU (faiss-cpu); GPU extras are chosen when nvidia-smi sees a GPU
#   PHOTO2CAD_EXTRAS=gpu bash scripts/install.sh
#
# What it does, in order:
#   1. Debian/Ubuntu: apt-get installs Mesa's EGL and OSMesa (software OpenGL for headless rendering on a CPU;
#      on NVIDIA machines the driver's EGL is used instead). Skipped with a note when not root or not apt.
#   2. Creates .venv and installs torch/torchvision (versions that install on these machines), then photo2cad.
#   3. Upgrades PyOpenGL past the 3.1.0 that pyrender pins, which cannot load Mesa's OSMesa (docs/rendering.md).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
APT_PACKAGES="libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libosmesa6"
# Headless Chromium drives the service page's browser test; nginx is the reverse proxy of docker/, whose config
# tests/test_service_proxy.py runs against a real `photo2cad serve` (both skipped where missing; CI requires them).
APT_TEST_PACKAGES="chromium chromium-driver nginx-light"

if command -v apt-get >/dev/null 2>&1; then
  wanted="$APT_PACKAGES"
  [ "${PHOTO2CAD_NO_BROWSER:-0}" = 1 ] || wanted="$wanted $APT_TEST_PACKAGES"
  missing=$(for p in $wanted; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "==> installing system libraries for headless rendering: $missing"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
    else
      echo "==> NOTE: rendering needs: sudo apt-get install $missing" >&2
    fi
  fi
fi

if [ -z "${PHOTO2CAD_EXTRAS:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then PHOTO2CAD_EXTRAS=gpu; else PHOTO2CAD_EXTRAS=cpu; fi
fi

echo "==> creating $VENV"
"$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip
case "$(uname -m)" in
  aarch64|arm64) $PIP install -q "torch==2.9.1" "torchvision==0.24.1" ;;
  *) $PIP install -q "torch==2.14.1" "torchvision==0.29.1" ;;
esac
echo "==> installing photo2cad[$PHOTO2CAD_EXTRAS,dev]"
# strict: the installed package mirrors photo2cad.* (links into this tree), so mypy and tools follow the
# package-dir mapping; re-run the installer after adding a module.
$PIP install -q -e ".[$PHOTO2CAD_EXTRAS,dev]" --config-settings editable_mode=strict
# pip reports the upgrade as a conflict with pyrender's pin, as an "ERROR" with exit status 0: expected, so those two
# lines are dropped and one line says what happened; a failed upgrade still stops the install.
pyopengl_log=$($PIP install -q "PyOpenGL>=3.1.7" 2>&1) || { echo "$pyopengl_log" >&2; exit 1; }
grep -v -e "pyrender 0.1.45 requires PyOpenGL==3.1.0" -e "^ERROR: pip's dependency resolver does not" \
  <<< "$pyopengl_log" || true
pyopengl=$("$VENV/bin/python" -c 'import OpenGL; print(OpenGL.__version__)')
echo "==> PyOpenGL $pyopengl installed over pyrender's 3.1.0 pin, on purpose (docs/rendering.md)"
"$VENV/bin/photo2cad" info
echo "==> done. Activate with: source $VENV/bin/activate"
