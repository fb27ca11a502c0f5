#!/usr/bin/env bash
# Writes the scdoc source of switchyard.conf(5) on stdout from the template
# on stdin (docs/man/switchyard.conf.5.scd.in), as gen-config-doc.sh writes
# docs/CONFIG.md: from the key tables themselves, so the man page, the
# reference and the code cannot disagree.
#   - a line `; keys: SECTION` becomes `switchyard keys --format scdoc SECTION`;
#   - the line `; plugins` becomes every plugin of PLUGIN_DIR, as
#     `switchyard plugins --describe NAME --format scdoc` prints it.
#   scripts/gen-man.sh BINARY PLUGIN_DIR < template > page.scd
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/gen-man.sh BINARY PLUGIN_DIR < template" >&2; exit 2; }
sy=$1 plugins=$2
marker='^; keys: ([^ ]+)$'
while IFS= read -r line; do
  if [[ $line =~ $marker ]]; then
    "$sy" keys --format scdoc "${BASH_REMATCH[1]}"
  elif [[ $line == '; plugins' ]]; then
    for so in "$plugins"/*.so; do
      "$sy" plugins --dir "$plugins" --describe "$(basename "$so" .so)" --format scdoc
    done
  else
    printf '%s\n' "$line"
  fi
done
