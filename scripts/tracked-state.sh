#!/usr/bin/env bash
# Prints what git says of the tracked files: their status and the checksum of each modified
# one. Two prints that differ mean a tracked file changed in between; the set-up and
# `make bench` compare one from before with one from after. Prints nothing outside a git work tree.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if git rev-parse --git-dir >/dev/null 2>&1; then
  git status --porcelain --untracked-files=no
  git ls-files -z -m | xargs -0r md5sum
fi
