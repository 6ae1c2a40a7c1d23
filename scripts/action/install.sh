#!/usr/bin/env bash
# Step 1 of the composite action: install the release binary that matches the action's version
# and the runner's OS/arch, checked against the release's SHA256SUMS. When there is no release
# (a branch, a fork, `uses: ./`), say so in the step outputs: the next steps build from source.
# A binary whose checksum does not match is an error, never a silent fallback.
set -euo pipefail

out() { echo "$1=$2" >>"$GITHUB_OUTPUT"; }
sha256() { sha256sum "$@" 2>/dev/null || shasum -a 256 "$@"; }
build_root="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/dbbackup-build"
out build-root "$build_root"

# The action's own Cargo.toml names the version, so `@v0`, `@v0.1.0` and a SHA all find the
# release the checked-out source was tagged as.
version=$(sed -n 's/^version = "\(.*\)"$/v\1/p' "$ACTION_PATH/Cargo.toml" | head -n 1)

# The key of the build cache: the version and a hash of what the build reads (Cargo.toml,
# Cargo.lock, src/), by path relative to the action, so that the same source has one key
# wherever it is checked out. Computed here, not with hashFiles() in action.yml: hashFiles
# ignores files outside GITHUB_WORKSPACE, where a downloaded action lives, and gives the
# empty string (actions/runner src/Misc/expressionFunc/hashFiles/src/hashFiles.ts;
# actions/toolkit#1035), which made one key for every version.
source_hash=$(cd "$ACTION_PATH" &&
  find Cargo.toml Cargo.lock src -type f -print0 | LC_ALL=C sort -z | xargs -0 cat -- |
  sha256 | awk '{ print $1 }')
source_hash=$(cd "$ACTION_PATH" &&
  { find Cargo.toml Cargo.lock src -type f | LC_ALL=C sort; echo "$source_hash"; } | sha256 |
  awk '{ print $1 }')
out cache-key "dbbackup-${RUNNER_OS:-unknown}-${RUNNER_ARCH:-unknown}-${version:-v0}-$source_hash"

case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
  Linux/X64) target=x86_64-unknown-linux-musl ;;
  Linux/ARM64) target=aarch64-unknown-linux-musl ;;
  macOS/X64) target=x86_64-apple-darwin ;;
  macOS/ARM64) target=aarch64-apple-darwin ;;
  Windows/X64) target=x86_64-pc-windows-msvc ;;
  *) echo "no release binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}: building from source"
     out found false; exit 0 ;;
esac

# Which repository the action came from. A composite action's steps get github.action_path
# but not github.action_repository nor github.action_ref: both are empty there
# (actions/runner#2525; github/docs#25336: not promised for composite actions). The runner
# downloads `uses: OWNER/REPO@REF` to `<work>/_actions/OWNER/REPO/REF` (actions/runner
# src/Runner.Worker/ActionManager.cs, LoadAction: Path.Combine(<Actions dir>, Name, Ref), the
# Actions dir being `<work>/_actions`, Constants.Path.ActionsDirectory), and a REF with a
# slash (`@release/0.x`) becomes nested directories. `uses: ./` and `uses: ./some/path` run the
# action from inside GITHUB_WORKSPACE: a local checkout, built from source.
repository=${ACTION_REPOSITORY:-}
ref=${ACTION_REF:-}
action_dir=${ACTION_PATH//\\//}   # Windows runners give D:\a\_actions\OWNER\REPO\REF
workspace=${GITHUB_WORKSPACE:-}
workspace=${workspace//\\//}
if [ -z "$repository" ] && { [ -z "$workspace" ] || [[ "$action_dir/" != "$workspace/"* ]]; }; then
  case "$action_dir" in
    */_actions/*/*/*)
      rest=${action_dir##*/_actions/}
      owner=${rest%%/*}; rest=${rest#*/}
      repository="$owner/${rest%%/*}"
      ref=${rest#*/}
      ;;
  esac
fi
if [ -z "$repository" ] || [ -z "$version" ]; then
  echo "running from a local checkout ($ACTION_PATH): building from source"
  out found false; exit 0
fi
echo "action $repository@${ref:-?} (Cargo.toml version $version)"
base="${DBBACKUP_RELEASE_BASE_URL:-${GITHUB_SERVER_URL:-https://github.com}/$repository/releases/download}/$version"
asset="dbbackup-$target.tar.gz"
dir="${RUNNER_TEMP:-/tmp}/dbbackup-bin"
mkdir -p "$dir"

if ! curl -fsSL --retry 3 -o "$dir/$asset" "$base/$asset" ||
   ! curl -fsSL --retry 3 -o "$dir/SHA256SUMS" "$base/SHA256SUMS"; then
  echo "no release $version of $repository with $asset: building from source"
  out found false; exit 0
fi
expected=$(awk -v a="$asset" '$2 == a || $2 == "*"a { print $1 }' "$dir/SHA256SUMS")
actual=$( (sha256sum "$dir/$asset" 2>/dev/null || shasum -a 256 "$dir/$asset") | awk '{ print $1 }')
if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then
  echo "::error title=dbbackup install::$asset from $base does not match SHA256SUMS (expected ${expected:-nothing}, got $actual); refusing to run it"
  exit 1
fi
tar -xzf "$dir/$asset" -C "$dir"
echo "$dir" >>"$GITHUB_PATH"
echo "installed dbbackup $version ($target), sha256 $actual"
out found true
