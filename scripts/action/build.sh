#!/usr/bin/env bash
# Fallback of the composite action: build dbbackup from the action's checked-out source. The
# previous step restores BUILD_ROOT from the cache when the same source was built before.
set -euo pipefail
if [ ! -x "$BUILD_ROOT/bin/dbbackup" ] && [ ! -x "$BUILD_ROOT/bin/dbbackup.exe" ]; then
  echo "::group::cargo install --locked (no release binary for this ref)"
  cargo install --locked --path "$ACTION_PATH" --root "$BUILD_ROOT"
  echo "::endgroup::"
fi
echo "$BUILD_ROOT/bin" >>"$GITHUB_PATH"
