#!/usr/bin/env bash
# Regenerates docs/CONFIG.md: the hand-written head plus each plugin's
# config table as `switchyard plugins --describe` prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/CONFIG.md
{
  cat docs/CONFIG.head.md
  for so in build/plugins/*.so; do
    name=$(basename "$so" .so)
    printf '\n### %s\n\n```\n' "$name"
    ./build/switchyard plugins --dir build/plugins --describe "$name" | grep -v '^file: '
    printf '```\n'
  done
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
