#!/usr/bin/env bash
# Install Glassbox into a virtualenv: the one set of install steps that `make install` and the Dockerfile both run.
#
# usage: scripts/install.sh [--torch-index-url URL] [--runtime] VENV
#   --torch-index-url URL  where torch comes from (the image passes PyTorch's CPU index); default: pip's own
#                          configuration, which on this project's machines resolves torch to a local CPU wheel
#   --runtime              a plain install without the dev tools (the image); default: editable, with `.[dev]`
#   PYTHON                 interpreter that creates VENV (default python3)
set -euo pipefail

# Pinned, and installed before everything else: an unpinned torch (asked for by sentence-transformers) would pull a
# multi-GB CUDA build. Keep equal to the pin in pyproject.toml (tests/test_dockerfile.py checks).
TORCH_VERSION=2.13.0

torch_index=()
target=(-e '.[dev]')
while [[ $# -gt 0 ]]; do
    case "$1" in
        --torch-index-url) torch_index=(--index-url "$2"); shift 2 ;;
        --runtime) target=(.); shift ;;
        -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
        -*) echo "install.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [[ $# -ne 1 ]]; then
    echo "usage: scripts/install.sh [--torch-index-url URL] [--runtime] VENV" >&2
    exit 2
fi
venv=$1

"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "torch==${TORCH_VERSION}" "${torch_index[@]}"
"$venv/bin/pip" install -q "${target[@]}"
