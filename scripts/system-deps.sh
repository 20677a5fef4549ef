#!/usr/bin/env bash
# Installs, from Debian's packages, the programs the tests or the benchmarks run that are missing.
#
#   scripts/system-deps.sh [--dry-run] test|bench ...
#
# Quiet and quick when everything is there. Otherwise, as root, `apt-get install`s the packages of
# what is missing; not as root (or with --dry-run), it prints the command that would do it and, not
# as root, exits 1. This table is the one list of what the tests and `npm run bench` need.
set -euo pipefail

# needed by     program (looked up in PATH, or an absolute path)  Debian package
readonly TABLE='
test,bench      ip                          iproute2
test,bench      ss                          iproute2
test,bench      /usr/bin/python3            python3
bench           nsenter                     util-linux
test            unshare                     util-linux
test            setpriv                     util-linux
test            mount                       mount
test            capsh                       libcap2-bin
test            tmux                        tmux
test            bash                        bash
test            tar                         tar
test,bench      /usr/bin/time               time
test            /usr/lib/wine/wine64        wine64
test            x86_64-w64-mingw32-gcc      mingw-w64
bench           lsof                        lsof
bench           netstat                     net-tools
bench           getconf                     libc-bin
'

usage() {
  echo "usage: scripts/system-deps.sh [--dry-run] test|bench ..." >&2
  exit 2
}

dry_run=0
suites=()
for arg in "$@"; do
  case $arg in
    --dry-run) dry_run=1 ;;
    test | bench) suites+=("$arg") ;;
    *) usage ;;
  esac
done
[ ${#suites[@]} -gt 0 ] || usage

present() {
  case $1 in
    /*) [ -x "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

wanted_by() {
  local suite
  for suite in "${suites[@]}"; do
    case ",$1," in *",$suite,"*) return 0 ;; esac
  done
  return 1
}

# Prints "program package" for each program of the chosen suites that is missing.
missing() {
  local needed_by program package
  while read -r needed_by program package; do
    [ -n "$needed_by" ] || continue
    wanted_by "$needed_by" || continue
    present "$program" || echo "$program $package"
  done <<<"$TABLE"
}

# Node.js is not taken from Debian: bookworm's is older than the 20 package.json asks for.
if ! command -v npm >/dev/null 2>&1; then
  echo "system-deps: needs Node.js 20 or later with npm (https://nodejs.org), which this script does not install" >&2
  exit 1
fi

lacking=$(missing)
[ -n "$lacking" ] || exit 0

packages=$(awk '{ print $2 }' <<<"$lacking" | sort -u | tr '\n' ' ')
packages=${packages% }
programs=$(awk '{ print $1 }' <<<"$lacking" | tr '\n' ' ')
programs=${programs% }
command="apt-get install -y --no-install-recommends $packages"

if [ $dry_run = 1 ]; then
  echo "missing: $programs"
  echo "would run: apt-get update && $command"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing $programs; as root, run: apt-get update && $command" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing $programs, and no apt-get to install them (Debian packages: $packages)" >&2
  exit 1
fi

echo "system-deps: installing $packages (for $programs)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $packages

# A package that installs but does not provide the program (renamed, moved) must not pass quietly.
still=$(missing)
if [ -n "$still" ]; then
  echo "system-deps: still missing after installing: $(awk '{ print $1 " (" $2 ")" }' <<<"$still" | paste -sd, - | sed 's/,/, /g')" >&2
  exit 1
fi
