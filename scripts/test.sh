#!/bin/bash
# The test suite: unit tests (no root needed) and root tests, each root test file in its own
# sandbox (test/helpers/sandbox.ts). Run through `npm test`, which first runs scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-concurrency=2 "${files[@]}"
