#!/bin/bash
# The oracle: for each source under /in/src/<id>/ (dkms.conf at its top), what a host
# administrator does, with the release's own dkms: cp to /usr/src/<m>-<v>; dkms add; for each
# kernel: dkms build -k, ls of the built module dir, dkms install --force, what landed below
# /lib/modules/<k>/; dkms remove --all. "$@" are the kernels. Markers (@@) are read by
# oracle-output.ts.
set -u
echo "@@dkms $(dpkg-query -W -f='${Version}' dkms)"
arch=$(uname -m)
for d in /in/src/*/; do
  id=$(basename "$d")
  # the name and version as dkms reads them: dkms.conf sourced by bash
  m= v=
  # (every dkms step under a time limit: a dkms.conf that never ends hangs real dkms for good)
  read -r m v < <(cd "$d" && kernelver=$(uname -r) arch=$arch timeout 60 bash -c '. ./dkms.conf >/dev/null 2>&1; echo "$PACKAGE_NAME $PACKAGE_VERSION"' </dev/null)
  # a CRLF dkms.conf: the name as dkms 3.2 reads it (trailing CR dropped); each dkms then reads
  # the file itself, CR and all
  m=${m%$'\r'} v=${v%$'\r'}
  if [ -z "${m:-}" ] || [ -z "${v:-}" ]; then echo "@@module $id unknown unknown"; echo "@@add $id -1"; echo "@@log dkms.conf names no PACKAGE_NAME/PACKAGE_VERSION"; continue; fi
  echo "@@module $id $m $v"
  rm -rf "/usr/src/$m-$v"
  cp -a "$d" "/usr/src/$m-$v"
  timeout 120 dkms add -m "$m" -v "$v" >/tmp/add.out 2>&1 </dev/null
  rc=$?
  echo "@@add $id $rc"
  [ $rc -ne 0 ] && tail -n 5 /tmp/add.out | sed 's/^/@@log /'
  for k in "$@"; do
    [ $rc -ne 0 ] && break
    timeout 1800 dkms build -m "$m" -v "$v" -k "$k" >/tmp/build.out 2>&1 </dev/null
    b=$?
    echo "@@build $id $k $b"
    if [ $b -ne 0 ]; then
      [ $b -ne 77 ] && grep -v "^ " "/var/lib/dkms/$m/$v/build/make.log" 2>/dev/null | grep -iE "error|not found|fatal" | head -n 3 | sed "s/^/@@log make.log: /"
      tail -n 4 /tmp/build.out | sed 's/^/@@log dkms: /'
      continue
    fi
    ls -1 "/var/lib/dkms/$m/$v/$k/$arch/module/" 2>/dev/null | sed "s/^/@@built $id $k /"
    touch /tmp/stamp
    sleep 0.01
    dkms install -m "$m" -v "$v" -k "$k" --force >/tmp/install.out 2>&1 </dev/null
    i=$?
    echo "@@install $id $k $i"
    find "/lib/modules/$k/" -newer /tmp/stamp \( -type f -o -type l \) -name '*.ko*' 2>/dev/null | sed "s|^/lib/modules/$k/||; s|^/*||" | sed "s/^/@@dest $id $k /"
    [ $i -ne 0 ] && tail -n 4 /tmp/install.out | sed 's/^/@@log dkms install: /'
  done
  dkms remove -m "$m" -v "$v" --all >/dev/null 2>&1 </dev/null
  rm -rf "/usr/src/$m-$v" "/var/lib/dkms/$m"
done
echo "@@end"
