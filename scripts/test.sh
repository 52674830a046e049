#!/usr/bin/env bash
# Run every test of the repository (typecheck + unit, cross-check, native and
# integration tests). Installs what it needs; caches builds and downloads.
source "$(dirname "$0")/bootstrap.sh"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
# Two tasks at a time: the machine budget is 2 cores; native builds use both.
pnpm exec turbo run typecheck test --concurrency=2 --continue --output-logs=full "$@" 2>&1 | tee "$log" || status=$?
# Counts tests whose setup failed as failed; exits 1 if anything failed.
node scripts/summarize-tests.mjs "$log" || { [ "$status" -ne 0 ] || status=1; }
exit "$status"
