#!/usr/bin/env bash
# Run every test of the repository (typecheck + unit, cross-check, native and
# integration tests). Installs what it needs; caches builds and downloads.
source "$(dirname "$0")/bootstrap.sh"
pnpm exec turbo run typecheck test --concurrency=2 --output-logs=full "$@"
