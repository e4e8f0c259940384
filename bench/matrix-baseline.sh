#!/bin/bash
# Baselines A and B of bench/matrix.ts, as root in the oracle container (one run, one cell after
# the other). "$@": the kernels; sources under /in/src/<label>/. For each: dkms add, then per
# kernel a timed `dkms build` (wall from date, CPU from `times` in a subshell), then the bare
# kbuild make of a fresh copy of the source (wall and CPU).
set -u
jobs=$(nproc)
for d in /in/src/*/; do
  id=$(basename "$d")
  read -r m v < <(cd "$d" && kernelver=$(uname -r) arch=$(uname -m) bash -c '. ./dkms.conf >/dev/null 2>&1; echo "$PACKAGE_NAME $PACKAGE_VERSION"' </dev/null)
  m=${m%$'\r'} v=${v%$'\r'}
  rm -rf "/usr/src/$m-$v"; cp -a "$d" "/usr/src/$m-$v"
  dkms add -m "$m" -v "$v" >/dev/null 2>&1 </dev/null || { echo "@@addfail $id"; continue; }
  for k in "$@"; do
    t0=$(date +%s.%N)
    cpu=$( ( dkms build -m "$m" -v "$v" -k "$k" >/dev/null 2>&1 </dev/null; echo "rc=$?" >&2; times >/tmp/times; tail -n 1 /tmp/times ) 2>/tmp/rc )
    t1=$(date +%s.%N)
    rc=$(sed -n 's/^rc=//p' /tmp/rc)
    echo "@@dkms $id $k $rc $(awk "BEGIN{print $t1 - $t0}") $cpu"
    rm -rf /tmp/bare && cp -a "$d" /tmp/bare
    t0=$(date +%s.%N)
    bcpu=$( ( make -C "/lib/modules/$k/build" M=/tmp/bare -j"$jobs" modules >/dev/null 2>&1 </dev/null; echo "rc=$?" >&2; times >/tmp/times; tail -n 1 /tmp/times ) 2>/tmp/rc )
    t1=$(date +%s.%N)
    brc=$(sed -n 's/^rc=//p' /tmp/rc)
    echo "@@bare $id $k $brc $(find /tmp/bare -name '*.ko' | wc -l) $(awk "BEGIN{print $t1 - $t0}") $bcpu"
  done
  dkms remove -m "$m" -v "$v" --all >/dev/null 2>&1 </dev/null
done
echo "@@end"
