#!/bin/bash
# The test suite: unit tests (no root needed) and root tests, each root test file in its own
# sandbox (test/helpers/sandbox.ts). Run through `npm test`, which first runs scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# Without root every root test file would only report itself skipped: that is no test run.
if [ "$(id -u)" != 0 ]; then
  cat >&2 <<'EOF'
npm test: FAILED: not root.
  The root tests build namespaces, links and OVS bridges in private sandboxes and need root;
  without it they would all be skipped. Run `sudo npm test` (CI runs as root), or only the
  unit tests with `node --test dist/test/unit`.
EOF
  exit 1
fi
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
rc=0
node --test --test-concurrency=2 "${files[@]}" || rc=$?
# rm of a last container removes its cgroup parents up to nsdn/ (runtime tests assert it); this
# is only a safety net for a run killed half-way (rmdir: only when empty).
rmdir /sys/fs/cgroup/*/nsdn 2>/dev/null || true
exit $rc
