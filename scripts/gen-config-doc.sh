#!/usr/bin/env bash
# Regenerates docs/CONFIG.md from docs/CONFIG.head.md, the core's key tables
# and each plugin's config table, so the reference and the code cannot
# disagree:
#   - a line `<!-- keys: SECTION -->` in the head becomes the Markdown table
#     of that section (`switchyard keys --format markdown SECTION`; the
#     sections are listed by `switchyard keys --help`);
#   - each built plugin gets a section as `switchyard plugins --describe`
#     prints it.
# Other generated documents (a switchyard.conf(5) page, say) can take their
# tables from `switchyard keys` the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/CONFIG.md
sy=./build/switchyard
marker='^<!-- keys: ([^ ]+) -->$'
{
  while IFS= read -r line; do
    if [[ $line =~ $marker ]]; then
      "$sy" keys --format markdown "${BASH_REMATCH[1]}"
    else
      printf '%s\n' "$line"
    fi
  done < docs/CONFIG.head.md
  for so in build/plugins/*.so; do
    name=$(basename "$so" .so)
    printf '\n### %s\n\n```\n' "$name"
    "$sy" plugins --dir build/plugins --describe "$name" | grep -v '^file: '
    printf '```\n'
  done
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
