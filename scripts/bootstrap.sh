# Sourced by the entry scripts: make sure pnpm (pinned) and the workspace's
# packages are installed. Idempotent: a second run does no work beyond checks.
set -euo pipefail
PNPM_VERSION=12.4.2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v node >/dev/null 2>&1; then
  echo "error: Node.js >= 20.19 is required (https://nodejs.org or your distribution's package)" >&2
  exit 1
fi
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "installing pnpm@$PNPM_VERSION (npm -g)" >&2
  npm install -g --no-fund --no-audit "pnpm@$PNPM_VERSION" >&2
fi
# --frozen-lockfile: never change the lock on a user's machine or in CI.
pnpm install --frozen-lockfile --reporter=append-only >&2
