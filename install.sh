#!/usr/bin/env bash
# Sets derive up on a fresh Debian/Ubuntu machine and builds the answer key:
#   TeX Live from Debian's packages (only what the templates use),
#   Debian's Chromium, which the browser tests drive (tests/test_browser.py;
#   where it cannot be installed, those tests are skipped and say why),
#   a virtual environment in .venv with derive and its test tools,
#   then `derive key` -> output/answer-key.tex and output/answer-key.pdf.
set -euo pipefail
cd "$(dirname "$0")"

TEX_PACKAGES=(texlive-latex-base texlive-latex-recommended texlive-pictures latexmk poppler-utils lmodern)
missing=()
for p in "${TEX_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing TeX Live packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BROWSER_PACKAGES=(chromium)
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing Debian packages: ${BROWSER_PACKAGES[*]}"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends "${BROWSER_PACKAGES[@]}" >/dev/null; } \
    || echo "install.sh: Chromium could not be installed; the browser tests will be skipped" >&2
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

.venv/bin/derive key --out output
