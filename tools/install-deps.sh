#!/usr/bin/env bash
# Installs the Debian packages pionrl needs when they are missing (a no-op when all are present).
#   tools/install-deps.sh          build + test dependencies
#   tools/install-deps.sh --bench  also what the benchmarks compare against (PyTorch, Node.js)
set -euo pipefail
pkgs=(build-essential pkg-config libopenblas-dev libopenblas-openmp-dev libcjson-dev libcurl4-openssl-dev libpcre2-dev
      libutf8proc-dev libsentencepiece-dev sentencepiece python3)
if [ "${1:-}" = "--bench" ]; then pkgs+=(python3-torch python3-numpy nodejs npm); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "install-deps: missing packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
