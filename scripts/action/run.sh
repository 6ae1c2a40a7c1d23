#!/usr/bin/env bash
# The composite action's main step: turns the action's inputs (INPUT_* variables, set in
# action.yml) into one dbbackup command. dbbackup itself writes the step outputs, the job
# summary and the annotations, so this script only builds the command line.
# Encryption inputs arrive as DBBACKUP_RECIPIENTS and DBBACKUP_IDENTITY, which dbbackup reads
# itself: the identity never goes on a command line, and dbbackup masks it (whole and line by
# line) before it prints anything.
set -euo pipefail

out_dir=${INPUT_OUT:-${RUNNER_TEMP:-/tmp}/dbbackup}
is_true() { [ "${1,,}" = "true" ]; }

args=()
case "${INPUT_COMMAND:-backup}" in
  backup)
    if is_true "${INPUT_DOWNLOAD_LATEST:-false}"; then
      [ -n "${INPUT_NAME:-}" ] || { echo "::error title=dbbackup::download-latest needs the backup name in 'name'"; exit 2; }
      dbbackup artifact download --name "$INPUT_NAME" --latest --out "$out_dir/latest"
      args=(restore-test "$out_dir/latest" --junit "$INPUT_JUNIT_PATH")
    else
      [ -n "${INPUT_DATABASE:-}" ] || { echo "::error title=dbbackup::the 'database' input is required for a backup"; exit 2; }
      args=(backup "$INPUT_DATABASE" --out "$out_dir" --compression "${INPUT_COMPRESSION:-gzip}")
      # Without a level, the compressor's own default (gzip 6, zstd 3).
      [ -z "${INPUT_COMPRESSION_LEVEL:-}" ] || args+=(--level "$INPUT_COMPRESSION_LEVEL")
      [ -z "${INPUT_FORMAT:-}" ] || args+=(--format "$INPUT_FORMAT")
      is_true "${INPUT_RESTORE_TEST:-true}" && args+=(--restore-test --junit "$INPUT_JUNIT_PATH")
      if is_true "${INPUT_UPLOAD:-true}"; then
        args+=(--upload)
        [ -z "${INPUT_NAME:-}" ] || args+=(--artifact-name "$INPUT_NAME")
        [ -z "${INPUT_RETENTION_DAYS:-}" ] || args+=(--retention-days "$INPUT_RETENTION_DAYS")
        is_true "${INPUT_ALLOW_PUBLIC_PLAINTEXT:-false}" && args+=(--allow-public-plaintext)
      fi
      # --keep rotates local backups and, with --upload, prunes artifacts of the name too.
      # `prune: false` is about artifacts only: the local directory still keeps `keep`
      # (rotated by `prune DIR` below when --keep cannot be passed).
      if is_true "${INPUT_PRUNE:-true}" || ! is_true "${INPUT_UPLOAD:-true}"; then
        args+=(--keep "${INPUT_KEEP:-7}")
      else
        rotate_locally=true
      fi
    fi
    ;;
  restore-test)
    # The backup to test: `database` names it (an archive or a directory of backups), the
    # `out` directory by default.
    target=${INPUT_DATABASE:-$out_dir}
    args=(restore-test "$target" --junit "$INPUT_JUNIT_PATH")
    ;;
  prune)
    [ -n "${INPUT_NAME:-}" ] || { echo "::error title=dbbackup::prune needs the backup name in 'name'"; exit 2; }
    args=(prune --artifacts --name "$INPUT_NAME" --keep "${INPUT_KEEP:-7}")
    ;;
  *)
    echo "::error title=dbbackup::unknown command '${INPUT_COMMAND}': use backup, restore-test or prune"
    exit 2
    ;;
esac

if [ "${rotate_locally:-false}" = true ]; then
  dbbackup "${args[@]}"
  exec dbbackup prune "$out_dir" --keep "${INPUT_KEEP:-7}"
fi
exec dbbackup "${args[@]}"
