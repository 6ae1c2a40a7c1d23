#!/usr/bin/env bash
# The composite action's main step: turns the action's inputs (INPUT_* variables, set in
# action.yml) into one dbbackup command. dbbackup itself writes the step outputs, the job
# summary and the annotations, so this script only builds the command line.
# Encryption inputs arrive as DBBACKUP_RECIPIENTS and DBBACKUP_IDENTITY, which dbbackup reads
# itself: the identity never goes on a command line, and dbbackup masks it (whole and line by
# line) before it prints anything. The alert inputs arrive the same way (DBBACKUP_NOTIFY,
# DBBACKUP_NOTIFY_ON, DBBACKUP_PING): webhook and ping URLs are secrets too.
set -euo pipefail

out_dir=${INPUT_OUT:-${RUNNER_TEMP:-/tmp}/dbbackup}
is_true() { [ "${1,,}" = "true" ]; }
# lines TEXT ARRAY: the non-blank lines of TEXT, surrounding spaces removed, into ARRAY.
lines() {
  local -n into=$2
  into=()
  local line
  while IFS= read -r line; do
    line=${line#"${line%%[![:space:]]*}"}
    line=${line%"${line##*[![:space:]]}"}
    [ -z "$line" ] || into+=("$line")
  done <<< "$1"
}

# `restore-into`: the server restore tests restore on (a `services:` container of the job).
restore_into=()
[ -z "${INPUT_RESTORE_INTO:-}" ] || restore_into=(--restore-into "$INPUT_RESTORE_INTO")
# The retention rules, the same for the local directory and artifacts: `keep` (the newest N)
# and the period rules (`keep-daily` ...: the newest backup of each of the last N days, ISO
# weeks, months, years that have one); a backup any rule keeps stays.
keep_args=(--keep "${INPUT_KEEP:-7}")
for period in daily weekly monthly yearly; do
  var="INPUT_KEEP_${period^^}"
  [ -z "${!var:-}" ] || keep_args+=("--keep-$period" "${!var}")
done

args=()
case "${INPUT_COMMAND:-backup}" in
  backup)
    if is_true "${INPUT_DOWNLOAD_LATEST:-false}"; then
      [ -n "${INPUT_NAME:-}" ] || { echo "::error title=dbbackup::download-latest needs the backup name in 'name'"; exit 2; }
      dbbackup artifact download --name "$INPUT_NAME" --latest --out "$out_dir/latest"
      # A PR check never restores on the production server its manifest names: on
      # `restore-into`, else on the server the PG*/MYSQL_* variables name (the job's service).
      args=(restore-test "$out_dir/latest" --junit "$INPUT_JUNIT_PATH" --not-on-source "${restore_into[@]}")
    else
      # One database per line: several are each backed up, restore-tested and rotated, one
      # failing does not stop the others, and the step fails with the highest exit code.
      lines "${INPUT_DATABASE:-}" databases
      [ "${#databases[@]}" -gt 0 ] || { echo "::error title=dbbackup::the 'database' input is required for a backup"; exit 2; }
      args=(backup "${databases[@]}" --out "$out_dir" --compression "${INPUT_COMPRESSION:-gzip}")
      [ -z "${INPUT_PARALLEL:-}" ] || args+=(--parallel "$INPUT_PARALLEL")
      # Without a level, the compressor's own default (gzip 6, zstd 3).
      [ -z "${INPUT_COMPRESSION_LEVEL:-}" ] || args+=(--level "$INPUT_COMPRESSION_LEVEL")
      [ -z "${INPUT_FORMAT:-}" ] || args+=(--format "$INPUT_FORMAT")
      [ -z "${INPUT_JOBS:-}" ] || args+=(--jobs "$INPUT_JOBS")
      is_true "${INPUT_RESTORE_TEST:-true}" && args+=(--restore-test --junit "$INPUT_JUNIT_PATH" "${restore_into[@]}")
      # The drift guard: the loss that fails a backup, or none for one run.
      args+=(--max-shrink "${INPUT_MAX_SHRINK:-50}")
      is_true "${INPUT_ALLOW_SHRINK:-false}" && args+=(--allow-shrink)
      remote=false
      if is_true "${INPUT_UPLOAD:-true}"; then
        remote=true
        args+=(--upload)
        [ -z "${INPUT_NAME:-}" ] || args+=(--artifact-name "$INPUT_NAME")
        [ -z "${INPUT_RETENTION_DAYS:-}" ] || args+=(--retention-days "$INPUT_RETENTION_DAYS")
        is_true "${INPUT_ALLOW_PUBLIC_PLAINTEXT:-false}" && args+=(--allow-public-plaintext)
      fi
      # One destination per line of `to`; blank lines and surrounding spaces are ignored.
      lines "${INPUT_TO:-}" destinations
      for dest in "${destinations[@]}"; do args+=(--to "$dest"); remote=true; done
      # --keep rotates local backups and prunes the artifacts and buckets of the name too.
      # `prune: false` spares those (nothing off the runner is deleted): the local directory
      # still keeps `keep` (rotated by `prune DIR` below when --keep cannot be passed).
      if is_true "${INPUT_PRUNE:-true}" || [ "$remote" = false ]; then
        args+=("${keep_args[@]}")
      else
        # `prune DIR` rotates one database's backups; with several it would need each name.
        [ "${#databases[@]}" -eq 1 ] || { echo "::error title=dbbackup::prune: false works with one database per step; with several, keep the default (prune: true) or give each its own step or matrix job"; exit 2; }
        rotate_locally=true
      fi
    fi
    ;;
  restore-test)
    # The backup to test: `database` names it (an archive or a directory of backups), the
    # `out` directory by default.
    target=${INPUT_DATABASE:-$out_dir}
    args=(restore-test "$target" --junit "$INPUT_JUNIT_PATH" "${restore_into[@]}")
    ;;
  prune)
    [ -n "${INPUT_NAME:-}" ] || { echo "::error title=dbbackup::prune needs the backup name in 'name'"; exit 2; }
    args=(prune --artifacts --name "$INPUT_NAME" "${keep_args[@]}")
    ;;
  check)
    # Lists the name's artifacts (downloads nothing) and fails with exit code 10 when the
    # newest is missing, older than max-age or smaller than min-bytes.
    # `name`: one backup name per line, each checked (a matrix's databases).
    lines "${INPUT_NAME:-}" names
    [ "${#names[@]}" -gt 0 ] || { echo "::error title=dbbackup::check needs the backup name in 'name'"; exit 2; }
    [ -n "${INPUT_MAX_AGE:-}" ] || { echo "::error title=dbbackup::check needs 'max-age': e.g. 26h for a daily backup, 8d for a weekly one"; exit 2; }
    args=(check --artifacts --max-age "$INPUT_MAX_AGE" --junit "$INPUT_JUNIT_PATH")
    for n in "${names[@]}"; do args+=(--name "$n"); done
    [ -z "${INPUT_MIN_BYTES:-}" ] || args+=(--min-bytes "$INPUT_MIN_BYTES")
    ;;
  summary)
    # One table and one exit status for the reports of many jobs (a matrix's databases):
    # files or directories, one per line, as actions/download-artifact left them.
    lines "${INPUT_REPORTS:-}" reports
    [ "${#reports[@]}" -gt 0 ] || { echo "::error title=dbbackup::summary needs 'reports': the JUnit reports of the backups, or the directories they were downloaded to"; exit 2; }
    args=(summary "${reports[@]}")
    ;;
  *)
    echo "::error title=dbbackup::unknown command '${INPUT_COMMAND}': use backup, restore-test, prune, check or summary"
    exit 2
    ;;
esac

if [ "${rotate_locally:-false}" = true ]; then
  dbbackup "${args[@]}"
  exec dbbackup prune "$out_dir" "${keep_args[@]}"
fi
exec dbbackup "${args[@]}"
