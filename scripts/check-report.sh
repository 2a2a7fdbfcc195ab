#!/usr/bin/env bash
# check-report.sh DIR — open DIR/index.html in headless Chromium, as a
# reader would, and check that it renders: the DOM has the summary table and
# every chart, every chart file it references exists and is non-empty, and a
# full-page screenshot (DIR/index-screenshot.png) is not blank.
#
# Needs Debian's chromium (apt-get install chromium); --install installs it
# when missing. The browser runs with networking features off, so the check
# also shows the page needs no network.
set -euo pipefail

install=0
if [ "${1:-}" = "--install" ]; then install=1; shift; fi
dir=${1:?usage: scripts/check-report.sh [--install] RUN_DIR}
page="$dir/index.html"
[ -s "$page" ] || { echo "check-report: $page missing or empty" >&2; exit 1; }

browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ] && [ "$install" = 1 ]; then
  echo "check-report: installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null
  browser=$(command -v chromium || true)
fi
[ -n "$browser" ] || { echo "check-report: chromium not found (apt-get install chromium, or pass --install)" >&2; exit 1; }

abs=$(cd "$dir" && pwd)
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$profile" --virtual-time-budget=5000)

dom=$(timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$abs/index.html" 2>/dev/null)
fail=0
grep -q '<table' <<<"$dom" || { echo "check-report: no summary table in the rendered page"; fail=1; }
imgs=$(grep -o '<img[^>]*src="[^"]*"' <<<"$dom" | sed 's/.*src="\([^"]*\)"/\1/' | sort -u)
n=0
for src in $imgs; do
  n=$((n + 1))
  case "$src" in
    http:*|https:*) echo "check-report: chart loads from the network: $src"; fail=1 ;;
    *) [ -s "$abs/$src" ] || { echo "check-report: chart $src missing or empty"; fail=1; } ;;
  esac
done
[ "$n" -ge 4 ] || { echo "check-report: only $n charts in the page"; fail=1; }

shot="$abs/index-screenshot.png"
timeout 120 "$browser" "${flags[@]}" --hide-scrollbars --window-size=1280,4000 \
  --screenshot="$shot" "file://$abs/index.html" >/dev/null 2>&1 || true
size=$(stat -c %s "$shot" 2>/dev/null || echo 0)
# A blank 1280x4000 page compresses to a few KB; text, a table and charts
# take well over 100 KB.
[ "$size" -gt 100000 ] || { echo "check-report: screenshot $shot is $size bytes: blank page?"; fail=1; }

[ "$fail" = 0 ] || exit 1
echo "check-report: $page renders: table, $n charts, screenshot $shot ($size bytes)"
