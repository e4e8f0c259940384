#!/bin/bash
# "$@": package names. Runs as root in a container with the release's apt sources; each .deb
# goes out base64 between @@deb and @@deb-end (read by package-output.ts).
set -u
{ apt-get update -qq || { sleep 5; apt-get update -qq; }; } >/dev/null 2>&1 || { echo "@@update-failed"; exit 3; }
mkdir -p /tmp/dl && cd /tmp/dl
for p in "$@"; do
  if [ -z "$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)')" ]; then echo "@@missing $p"; continue; fi
  rm -f ./*.deb
  { apt-get download "$p" || { sleep 5; apt-get download "$p"; }; } >/dev/null 2>&1 || { echo "@@failed $p"; continue; }
  f=$(ls ./*.deb | head -n 1)
  echo "@@deb $p $(basename "$f")"
  base64 -w0 "$f"; echo
  echo "@@deb-end"
done
echo "@@end"
