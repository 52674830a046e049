#!/usr/bin/env bash
# The main job on the embedded default model (SmolLM2-135M-Instruct Q4_1).
source "$(dirname "$0")/bootstrap.sh"
pnpm --silent chess demo "$@"
