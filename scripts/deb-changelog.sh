#!/usr/bin/env bash
# Writes debian/changelog for `make deb` on stdout: one entry, whose version
# is VERSION's (the only place the version lives) and whose date is the
# commit's, so two builds of one commit make the same packages.
#   scripts/deb-changelog.sh VERSION COMMIT
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: scripts/deb-changelog.sh VERSION COMMIT" >&2; exit 2; }
version=$1 commit=$2
cd "$(dirname "$0")/.."
maintainer=$(sed -n 's/^Maintainer: //p' debian/control)
date=
[ "$commit" = unknown ] || date=$(git log -1 --format=%cD 2>/dev/null || true)
[ -n "$date" ] || date=$(date -R)
cat <<END
switchyard ($version) unstable; urgency=medium

  * Switchyard $version, built from commit $commit.

 -- $maintainer  $date
END
