#!/usr/bin/env bash
# Makes a wine prefix in which sockwarden's Windows executable runs under Debian's wine 8.0.
#
#   scripts/wine/prepare-prefix.sh PREFIX_DIR
#
# Bun's Windows runtime imports ProcessPrng from bcryptprimitives.dll, which wine 8.0 lacks; this
# builds a stand-in (process-prng.c, forwarding to advapi32's SystemFunction036) with mingw-w64
# and puts it in the prefix's system32. Needs wine64 and mingw-w64 (Debian packages of those
# names); installs nothing. Every wine call is bounded in time: the first start of a prefix is
# slow. Prints the path of the wine loader to use as its last line.
set -euo pipefail

prefix=${1:?usage: prepare-prefix.sh PREFIX_DIR}
here=$(cd "$(dirname "$0")" && pwd)

wine=""
for candidate in /usr/lib/wine/wine64 "$(command -v wine64 || true)" "$(command -v wine || true)"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then wine=$candidate; break; fi
done
[ -n "$wine" ] || { echo "prepare-prefix: no wine loader found (Debian: apt-get install wine64)" >&2; exit 3; }
wineserver="$(dirname "$wine")/wineserver"
[ -x "$wineserver" ] || wineserver=$(command -v wineserver || true)
[ -n "$wineserver" ] || { echo "prepare-prefix: no wineserver next to $wine" >&2; exit 3; }
gcc=x86_64-w64-mingw32-gcc
command -v "$gcc" >/dev/null || { echo "prepare-prefix: $gcc not found (Debian: apt-get install mingw-w64)" >&2; exit 3; }

mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
shim="$prefix/bcryptprimitives.dll"
# No C runtime: the DLL's entry point is DllMain and its only import is advapi32.
"$gcc" -shared -O2 -s -Wall -Wextra -nostdlib -Wl,--entry,DllMain \
  -o "$shim" "$here/process-prng.c" "$here/process-prng.def" -ladvapi32

export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d"
timeout 300 "$wine" wineboot --init >/dev/null 2>&1 || {
  echo "prepare-prefix: wineboot --init failed or took more than 300 s" >&2
  exit 1
}
timeout 120 "$wineserver" -w || true
system32="$prefix/drive_c/windows/system32"
[ -d "$system32" ] || { echo "prepare-prefix: $system32 missing after wineboot" >&2; exit 1; }
cp "$shim" "$system32/bcryptprimitives.dll"
echo "$wine"
