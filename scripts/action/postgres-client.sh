#!/usr/bin/env bash
# The composite action's `postgres-client` step: makes sure a pg_dump (with its psql and
# pg_restore) of at least the major release needed is on the runner before dbbackup runs.
# `pg_dump` refuses a server of a newer major ("server version mismatch"), and GitHub's Ubuntu
# runners preinstall one client only.
#
# INPUT_POSTGRES_CLIENT: `auto` (the major of the server this step's dbbackup will talk to,
# asked over the connection: the `database` of a backup, the `restore-into` server of a restore
# test), a major number, or `none` (install nothing).
#
# Whether a client fits is asked of dbbackup itself (`dbbackup pg-client`), so it is decided
# exactly as the backup decides it (src/engine/postgres/clients.rs: DBBACKUP_PG_BIN, PATH, then
# the platform's usual places; the newest of at least the major wins). When none fits, on
# Debian and Ubuntu the PostgreSQL project's apt repository is added with its signing key
# checked by fingerprint, `postgresql-client-N` installed, and DBBACKUP_PG_BIN exported for the
# next steps. Elsewhere the step fails with dbbackup's message, which names what to install.
#
# DBBACKUP_SYSROOT (tests only; empty on a runner) is put before every system path this step
# reads or writes: /etc/os-release, the key, the apt source, /usr/lib/postgresql.
set -euo pipefail

root=${DBBACKUP_SYSROOT:-}
title="dbbackup postgres-client"
is_true() { [ "${1,,}" = "true" ]; }

choice=${INPUT_POSTGRES_CLIENT:-auto}
choice=${choice#"${choice%%[![:space:]]*}"}
choice=${choice%"${choice##*[![:space:]]}"}
choice=${choice,,}
case "$choice" in
  none)
    echo "postgres-client: none: dbbackup uses the PostgreSQL clients it finds"
    exit 0
    ;;
  auto) ;;
  *)
    if ! [[ "$choice" =~ ^[0-9]{2}$ ]] || [ "$choice" -lt 13 ]; then
      echo "::error title=$title::postgres-client must be auto, none or a PostgreSQL major release of 13 or newer (e.g. 17), not '${INPUT_POSTGRES_CLIENT}'"
      exit 2
    fi
    ;;
esac

if [ "$choice" = auto ]; then
  # The server this step's dbbackup will talk to. A restore test with no `restore-into`
  # restores on the server in the backup's manifest, which is not known before the backup is
  # downloaded: set a major then.
  server=""
  if is_true "${INPUT_DOWNLOAD_LATEST:-false}" || [ "${INPUT_COMMAND:-backup}" = restore-test ]; then
    server=${INPUT_RESTORE_INTO:-}
  elif [ "${INPUT_COMMAND:-backup}" = backup ]; then
    # One database per line: with several PostgreSQL servers, the newest major among them
    # (a client serves its own major and older ones). A server that does not answer is left
    # to the backup, which reports it.
    servers=()
    while IFS= read -r line; do
      line=${line#"${line%%[![:space:]]*}"}
      line=${line%"${line##*[![:space:]]}"}
      case "$line" in postgres://* | postgresql://*) servers+=("$line") ;; esac
    done <<< "${INPUT_DATABASE:-}"
    if [ "${#servers[@]}" -gt 1 ]; then
      newest=0
      for each in "${servers[@]}"; do
        m=$(dbbackup pg-client "$each" 2>/dev/null | sed -n 's/^major=//p' | head -n 1) || true
        [ -z "$m" ] || [ "$m" -le "$newest" ] || newest=$m
      done
      if [ "$newest" -gt 0 ]; then choice=$newest; fi
    else
      server=${servers[0]:-}
    fi
  fi
  # The schemes dbbackup's PostgreSQL engine takes (is_postgres_url).
  case "$choice:$server" in
    [0-9]*) ask=(--major "$choice") ;;
    *:postgres://* | *:postgresql://*) ask=("$server") ;;
    *)
      echo "postgres-client: auto: no PostgreSQL server to ask for this step; nothing to install"
      exit 0
      ;;
  esac
else
  ask=(--major "$choice")
fi

echo "::group::PostgreSQL client (postgres-client: $choice)"
errors=$(mktemp)
set +e
report=$(dbbackup pg-client "${ask[@]}" 2>"$errors")
code=$?
set -e
value() { sed -n "s/^$1=//p" <<<"$report" | head -n 1; }
# dbbackup's one-line error (its `::error` annotation, the line after it, is left out: this
# step's own annotation carries the message).
why() {
  local line
  line=$(grep -m 1 '^error: ' "$errors" || tail -n 1 "$errors")
  echo "${line#error: }"
}
major=$(value major)
fail() {
  echo "::endgroup::"
  echo "::error title=$title::$1"
  exit "$2"
}
case "$code" in
  0)
    found="$(value version) at $(value pg_dump) fits PostgreSQL $major"
    [ -z "$(value server)" ] || found+=" (the server runs $(value server))"
    echo "$found: nothing to install"
    echo "::endgroup::"
    exit 0
    ;;
  7) ;;  # no client fits: install one below
  *) fail "$(why)" "$code" ;;
esac
[ -n "$major" ] || fail "dbbackup pg-client named no major release: $(why)" 1
echo "no pg_dump of PostgreSQL $major or newer on this runner"

os=""
if [ -r "$root/etc/os-release" ]; then
  os=$(. "$root/etc/os-release" && echo " ${ID:-} ${ID_LIKE:-} ")
  codename=$(. "$root/etc/os-release" && echo "${VERSION_CODENAME:-${UBUNTU_CODENAME:-}}")
fi
if [ "${RUNNER_OS:-Linux}" != Linux ] || [[ "$os" != *" debian "* && "$os" != *" ubuntu "* ]] ||
   [ -z "${codename:-}" ]; then
  # dbbackup's own message names this platform's install command.
  fail "postgres-client installs clients on Debian and Ubuntu runners only: $(why)" 7
fi

# The PostgreSQL project's apt repository, configured by hand as its download page shows it
# ("Manually configure the Apt repository", https://www.postgresql.org/download/linux/ubuntu/
# and .../debian/: the key from https://www.postgresql.org/media/keys/ACCC4CF8.asc saved as
# /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc, and
# `deb [signed-by=<that file>] https://apt.postgresql.org/pub/repos/apt <codename>-pgdg main`
# in /etc/apt/sources.list.d/pgdg.list). The page was not in the stored search corpus; the
# same steps appear in scripts found there (code search: "install -d
# /usr/share/postgresql-common/pgdg ... curl -o ...apt.postgresql.org.asc --fail ..."). The
# key's fingerprint is the one the PostgreSQL wiki's Apt page publishes
# (https://wiki.postgresql.org/wiki/Apt): a download that is not that key is refused, whatever
# TLS said. The list keeps the name `pgdg.list`, so one left by the runner's image is
# replaced rather than conflicting with ours (apt refuses two Signed-By for one source).
key_url=https://www.postgresql.org/media/keys/ACCC4CF8.asc
fingerprint=B97B0AFCAA1A47F044F244A07FCC7D46ACCC4CF8
key_dir=$root/usr/share/postgresql-common/pgdg
key=$key_dir/apt.postgresql.org.asc
list=$root/etc/apt/sources.list.d/pgdg.list
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)

work=$(mktemp -d)
curl -fsSL --retry 3 -o "$work/key.asc" "$key_url" ||
  fail "cannot download the PostgreSQL apt repository's key from $key_url" 1
# --show-keys reads the file without importing it; the `fpr` record after `pub` is the primary
# key's fingerprint (field 10 of gpg's --with-colons output, doc/DETAILS in GnuPG). awk reads
# to the end rather than `exit` at the first match: gpg still writing the records after it
# would die of SIGPIPE, and pipefail would turn a good key into "fingerprint none".
got=$(GNUPGHOME="$work" gpg --batch --with-colons --show-keys "$work/key.asc" 2>/dev/null |
  awk -F: '$1 == "pub" { p = 1; next } p && $1 == "fpr" && got == "" { got = $10 }
           END { print got }') || got=""
if [ "$got" != "$fingerprint" ]; then
  fail "the key downloaded from $key_url has fingerprint ${got:-none}, not $fingerprint: refusing to trust it" 1
fi
echo "key $key_url checked: fingerprint $fingerprint"
"${sudo[@]}" install -d "$key_dir" "$(dirname "$list")"
"${sudo[@]}" install -m 0644 "$work/key.asc" "$key"
echo "deb [signed-by=$key] https://apt.postgresql.org/pub/repos/apt $codename-pgdg main" |
  "${sudo[@]}" tee "$list" >/dev/null
echo "added $(cat "$list") as $list"
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "postgresql-client-$major"

bin=$root/usr/lib/postgresql/$major/bin
set +e
report=$(DBBACKUP_PG_BIN="$bin" dbbackup pg-client --major "$major" 2>"$errors")
code=$?
set -e
[ "$code" = 0 ] ||
  fail "postgresql-client-$major was installed but no pg_dump $major is in $bin: $(why)" 7
echo "DBBACKUP_PG_BIN=$bin" >>"$GITHUB_ENV"
echo "installed $(value version) at $(value pg_dump); DBBACKUP_PG_BIN=$bin for the next steps"
echo "::endgroup::"
