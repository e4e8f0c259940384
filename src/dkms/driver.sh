#!/bin/bash
# kfarm in-container build driver: does for one kernel what `dkms build` does, the way the
# dkms of the image's Debian release does it: bullseye 2.8.4, bookworm 3.0.10, trixie 3.2.2
# (read_conf, prepare_build, actual_build; where they differ, the release table below says
# whose rules apply, as `release_has FEATURE`: docs/dkms-releases.md lists the differences).
#
# It is two programs in one file. The container starts it as root with every capability
# dropped but SETUID/SETGID, the script passed as `bash -c` text:
#
#   driver.sh build <kernelver> <arch>     the supervisor: trusted, never sources dkms.conf
#   driver.sh step add|build ...           an untrusted step, run by the supervisor as
#                                          uid/gid 65534 through setpriv
#
# Everything the module ships (dkms.conf, its Makefile, PATCH, PRE_BUILD, POST_BUILD) runs
# inside a step. A step writes what it found as facts (tab-separated, on fd 3); when it ends
# the supervisor kills every process of uid 65534, reads the facts as data, checks the names
# against kfarm's rules (src/dkms/names.ts), looks at the build tree itself, decides the
# verdict, and writes /kfarm/out (root's, which uid 65534 cannot write).
#
# In:  stdin          the module source as a tar (unpacked by uid 65534 into /kfarm/source)
# Out: stdout         a tar of out/: out/result (facts parsed by driver-result.ts) and
#                     out/tree/{module,log} (what dkms keeps in $dkms_tree/<m>/<v>/<k>/<a>:
#                     the modules, make.log and, but for 3.2, the kernel's .config)
#      stderr         the build log
# Env: KFARM_JOBS (make -j; unset: nproc, as dkms, but 1 with SOURCE_DATE_EPOCH),
#      KFARM_LOG_LIMIT (make.log cap, bytes), KFARM_OUTPUT_LIMIT (modules + make.log cap, bytes), KFARM_DIRECTIVES (NAME=value
#      lines, what `dkms --directive` exports), KFARM_CONF_SECONDS (time limit of one
#      evaluation of dkms.conf), KFARM_COMPRESS (auto: as the kernel's own modules; none,
#      xz, zstd), SOURCE_DATE_EPOCH (the date make.log says)
#
# Exit status: 0 built, 77 excluded by BUILD_EXCLUSIVE_*, anything else failed.
# Deliberately no `set -e`: dkms.conf and the module's scripts are sourced/run as dkms does,
# and dkms ignores the status of PRE_BUILD and POST_BUILD.

readonly role="$1"
readonly src_dir=/kfarm/source
readonly NOBODY=65534
readonly log_limit=${KFARM_LOG_LIMIT:-16777216}
# LC_ALL=C: the name checks below are byte-wise, whatever the build's locale
# No --bounding-set: dropping it needs CAP_SETPCAP, which the container does not have (trixie's
# setpriv refuses outright); a step keeps no capability anyway (the uid change empties the
# permitted and effective sets) and no-new-privs stops it from gaining one.
readonly -a DROP=(setpriv "--reuid=$NOBODY" "--regid=$NOBODY" --clear-groups --inh-caps=-all --no-new-privs)

say() { printf '[kfarm] %s\n' "$*"; }

# ======================= the releases: every difference between them =======================
# Whose dkms rules the build follows: the one the image's Debian release ships. Each release
# is one row: its dkms, the directives that dkms reads back from dkms.conf (its whitelist),
# and the features (below) it has. A fourth release is one more row here, and nothing else.
# An unknown VERSION_ID is an error (supervise says which), never a guess.
# (VERSION_ID is the file's: the image's, whatever the build's environment says). Testing and
# unstable have no VERSION_ID: their VERSION_CODENAME names them (forky for both, and for
# experimental, which is sid's root), a row of its own once its dkms is checked.
# shellcheck source=/dev/null disable=SC2153
release_id=$(. /etc/os-release 2>/dev/null; echo "${VERSION_ID:-$VERSION_CODENAME}")
readonly release_id
# The directives each dkms reads back: 3.0 adds BUILD_EXCLUSIVE_CONFIG; 3.2 _KERNEL_MIN/_MAX
# and BUILD_DEPENDS_REBUILD (each list as that dkms spells it).
case $release_id in
    11) dialect=2.8 dkms_version=2.8.4
        release_features="crlf-kept clean-default dest-location-required default-name-from-module
            cc-kernelvariables-first"
        dkms_conf_variables="CLEAN REMAKE_INITRD remake_initrd PACKAGE_NAME
   PACKAGE_VERSION POST_ADD POST_BUILD POST_INSTALL POST_REMOVE PRE_BUILD
   PRE_INSTALL BUILD_DEPENDS BUILD_EXCLUSIVE_KERNEL BUILD_EXCLUSIVE_ARCH
   build_exclude OBSOLETE_BY MAKE MAKE_MATCH MODULES_CONF
   modules_conf_array PATCH PATCH_MATCH patch_array BUILT_MODULE_NAME
   built_module_name BUILT_MODULE_LOCATION built_module_location
   DEST_MODULE_NAME dest_module_name MODULES_CONF_OBSOLETES
   DEST_MODULE_LOCATION dest_module_location
   modules_conf_obsoletes MODULES_CONF_ALIAS_TYPE
   modules_conf_alias_type STRIP strip MODULES_CONF_OBSOLETE_ONLY
   modules_conf_obsolete_only AUTOINSTALL NO_WEAK_MODULES
   SIGN_TOOL" ;;
    12) dialect=3.0 dkms_version=3.0.10
        release_features="crlf-kept clean-default dest-location-required deprecated-directives-warned
            build-exclusive-config make-clang-lld cc-config-for-pre-build config-in-log"
        dkms_conf_variables="CLEAN PACKAGE_NAME
   PACKAGE_VERSION POST_ADD POST_BUILD POST_INSTALL POST_REMOVE PRE_BUILD
   PRE_INSTALL BUILD_DEPENDS BUILD_EXCLUSIVE_KERNEL BUILD_EXCLUSIVE_ARCH
   BUILD_EXCLUSIVE_CONFIG
   build_exclude OBSOLETE_BY MAKE MAKE_MATCH
   PATCH PATCH_MATCH patch_array BUILT_MODULE_NAME
   built_module_name BUILT_MODULE_LOCATION built_module_location
   DEST_MODULE_NAME dest_module_name
   DEST_MODULE_LOCATION dest_module_location
   STRIP strip AUTOINSTALL NO_WEAK_MODULES
   SIGN_FILE MOK_SIGNING_KEY MOK_CERTIFICATE
   REMAKE_INITRD MODULES_CONF MODULES_CONF_OBSOLETES
   MODULES_CONF_ALIAS_TYPE MODULES_CONF_OBSOLETE_ONLY" ;;
    # forky (testing, unstable, experimental): dkms 3.2.2-1 as in trixie (measured 2026-12-08)
    13|forky) dialect=3.2 dkms_version=3.2.2
        release_features="deprecated-directives-warned build-exclusive-config kernel-config-auto-conf
            overrides-without-version sparse-arrays default-name-for-one-record strict-conf make-llvm
            kernel-min-max build-depends-required make-log-first build-scripts-fatal
            cc-kernelvariables-first cc-config symvers-kept"
        dkms_conf_variables="PACKAGE_NAME
   PACKAGE_VERSION POST_ADD POST_BUILD POST_INSTALL POST_REMOVE PRE_BUILD
   PRE_INSTALL BUILD_DEPENDS BUILD_EXCLUSIVE_ARCH BUILD_EXCLUSIVE_CONFIG
   BUILD_EXCLUSIVE_KERNEL BUILD_EXCLUSIVE_KERNEL_MIN BUILD_EXCLUSIVE_KERNEL_MAX
   build_exclude OBSOLETE_BY MAKE MAKE_MATCH
   PATCH PATCH_MATCH patch_array BUILT_MODULE_NAME
   built_module_name BUILT_MODULE_LOCATION built_module_location
   DEST_MODULE_NAME dest_module_name
   DEST_MODULE_LOCATION dest_module_location
   STRIP strip AUTOINSTALL NO_WEAK_MODULES BUILD_DEPENDS_REBUILD
   CLEAN
   REMAKE_INITRD MODULES_CONF MODULES_CONF_OBSOLETES
   MODULES_CONF_ALIAS_TYPE MODULES_CONF_OBSOLETE_ONLY" ;;
    *) dialect="" dkms_version="" release_features="" dkms_conf_variables="" ;;
esac
readonly dialect dkms_version release_features dkms_conf_variables
readonly supported_releases="11 (bullseye, dkms 2.8.4), 12 (bookworm, dkms 3.0.10) and 13 (trixie, dkms 3.2.2), and VERSION_CODENAME forky (testing and unstable, dkms 3.2.2)"
# The features, by what each does where the release has it:
#   crlf-kept                     a CR ending a dkms.conf value stays in it (3.1.5 drops it)
#   clean-default                 CLEAN defaults to `make ... clean`, run before the build
#   dest-location-required        no DEST_MODULE_LOCATION at all is an error
#   deprecated-directives-warned  REMAKE_INITRD, MODULES_CONF* are named as deprecated
#   build-exclusive-config        BUILD_EXCLUSIVE_CONFIG is read
#   kernel-min-max                BUILD_EXCLUSIVE_KERNEL_MIN/_MAX (and OBSOLETE_BY as _MAX)
#   kernel-config-auto-conf       the kernel's config is read from include/config/auto.conf when there
#   overrides-without-version     /etc/dkms/<module>--<kernel>[-<arch>].conf are read too
#   sparse-arrays                 the records are the highest index + 1, not the longest array
#   default-name-from-module      BUILT_MODULE_NAME defaults to $module (else PACKAGE_NAME) when
#                                 there is one DEST_MODULE_LOCATION
#   default-name-for-one-record   ... to PACKAGE_NAME when there is one record (else: one
#                                 DEST_MODULE_LOCATION)
#   strict-conf                   read_conf_strict: length mismatch, duplicates, yes/no values
#   make-llvm, make-clang-lld     a clang-built kernel adds LLVM=1, or CC=clang (and LD=ld.lld)
#   build-depends-required        a BUILD_DEPENDS not built for the kernel fails the build
#   make-log-first                make.log is opened first (its header says the dkms version):
#                                 the patches, PRE_BUILD and make all write there
#   build-scripts-fatal           PRE_BUILD/POST_BUILD write to make.log and a failure is fatal
#   cc-kernelvariables-first      CC from .kernelvariables before PRE_BUILD
#   cc-config-for-pre-build       CC from the kernel's config for PRE_BUILD only, then .kernelvariables
#   cc-config                     CC and KERNEL_CC from the kernel's config, for PRE_BUILD and make
#   symvers-kept                  the build's Module.symvers is kept beside the modules
#   config-in-log                 the kernel's .config is kept in the log dir
release_has() { [[ " ${release_features//$'\n'/ } " == *" $1 "* ]]; }
release_error() {
    local has="VERSION_ID $release_id"
    [[ $release_id =~ ^[0-9] ]] || has="no VERSION_ID and VERSION_CODENAME $release_id"
    [[ $release_id ]] || has="no VERSION_ID or VERSION_CODENAME in /etc/os-release"
    echo "this image's Debian release has $has, whose dkms kfarm's driver does not know: it supports VERSION_ID $supported_releases (add the release to the table at the top of src/dkms/driver.sh)"
}
# what the farm has for /etc/dkms (that is read-only here: it belongs to the image)
readonly overrides_dir=/kfarm/etc-dkms
readonly conf_seconds=${KFARM_CONF_SECONDS:-30}

# kfarm's name rules (src/dkms/names.ts; keep the sets in step)
readonly NAME_RE='^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$'
readonly VERSION_RE='^[A-Za-z0-9_][A-Za-z0-9_.+~-]{0,63}$'
readonly SEGMENT_RE='^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$'
valid_name() { local LC_ALL=C; [[ $1 =~ $NAME_RE ]]; }
valid_version() { local LC_ALL=C; [[ $1 =~ $VERSION_RE ]]; }
# BUILT_MODULE_LOCATION: empty, or relative segments of name characters joined by single `/`
# (one trailing `/` allowed), none empty, `.` or `..`. Segment by segment, as names.ts does:
# one regex over the whole path backtracks exponentially on a value that does not match.
valid_location() {
    local LC_ALL=C rest=$1 segment
    [[ $rest ]] || return 0
    ((${#rest} <= 4096)) || return 1 # PATH_MAX; the loop below copies what is left per segment
    rest=${rest%/}
    while [[ $rest == */* ]]; do
        segment=${rest%%/*}
        [[ $segment =~ $SEGMENT_RE ]] || return 1
        rest=${rest#*/}
    done
    [[ $rest =~ $SEGMENT_RE ]]
}
# DEST_MODULE_LOCATION: what every release's dkms accepts (read_conf: `/kernel*`, `/updates*`,
# `/extra*`, so `/updates-dkms-test` too), as a location that stays in the module tree: after
# the leading `/`, the segments as above (no `..`: kfarm refuses what leaves the tree).
# Empty and `.` segments are dropped first (`/extra//x`, `/kernel/./x` stay in the tree).
valid_dest_location() {
    [[ $1 == /kernel* || $1 == /updates* || $1 == /extra* ]] && ((${#1} <= 4096)) || return 1
    local rest=${1#/}/ kept="" segment
    while [[ $rest ]]; do
        segment=${rest%%/*}
        rest=${rest#*/}
        [[ $segment && $segment != . ]] && kept+=$segment/
    done
    valid_location "$kept"
}
quote() { # a printable, bounded rendering of an untrusted value for messages
    local v=${1//[[:cntrl:]]/?}
    ((${#v} > 80)) && v="${v:0:80}..."
    printf '"%s"' "$v"
}


# --- the variables dkms has set when it sources dkms.conf (3.0.10 main section) ---
distro_version() {
    if [[ -r /etc/os-release ]]; then
        # shellcheck source=/dev/null
        . /etc/os-release
        if [[ "$ID" = "ubuntu" ]]; then echo "$ID"
        elif [[ ${#ID_LIKE[@]} != 0 && $ID_LIKE ]]; then echo "${ID_LIKE[0]}"
        else echo "$ID"; fi
        return
    fi
    echo unknown
}
# These are set for dkms.conf, which may read any of them (it is sourced with them in scope)
# shellcheck disable=SC2034
init_dkms_vars() {
    dkms_tree=/var/lib/dkms
    source_tree=/usr/src
    install_tree=/lib/modules
    tmp_location=${TMPDIR:-/tmp}
    current_kernel=$(uname -r)
    current_os=$(uname -s)
    # A reproducible build (SOURCE_DATE_EPOCH) compiles with one job unless told otherwise:
    # parallel kbuild prints in completion order, and make.log is inside the tarball
    if [[ $KFARM_JOBS ]]; then parallel_jobs=$KFARM_JOBS
    elif [[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]]; then parallel_jobs=1
    else parallel_jobs=$(nproc); fi
    [[ $parallel_jobs = 0 ]] && parallel_jobs=""
    verbose=""
    force=""
    conf=""
    addon_modules_dir=""
    kernelver="$kernelver_arg"
    arch="$arch_arg"
    kernel_source_dir="/lib/modules/$kernelver/build"
    kernel_config="$kernel_source_dir/.config"
    # 3.2 reads the kernel's configuration from auto.conf when there is one
    release_has kernel-config-auto-conf && [[ -e $kernel_source_dir/include/config/auto.conf ]] && \
        kernel_config="$kernel_source_dir/include/config/auto.conf"
    module=""
    module_version=""

    running_distribution="$(distro_version)"
}



# dkms's safe_source, kept to the letter: values come back through a second evaluation
# inside double quotes, and real packages depend on that behaviour. On top of dkms:
# - a trailing CR is dropped from every value, as 3.2 does (3.1.5 and later); the directives
#   that had one are listed in _crlf_directives: 2.8 and 3.0 keep the CR in the value, so a
#   CRLF dkms.conf registers `name\r` and its build fails there (step_build fails it too);
# - the evaluation has a time limit, and a dkms.conf that exits or is killed is an error
#   that says so (dkms would go on with no directives and complain they are missing);
# - UPPERCASE variables dkms.conf sets that are no directive are named (dkms ignores them:
#   usually a typo, such as BUILT_MODULES_NAME).
safe_source() {
    local to_source_file="$1"; shift
    declare -a -r export_envs=("$@")
    local tmpfile status watchdog pid
    # CR is read by the eval'd text below
    # shellcheck disable=SC2034
    local -r CR=$'\r'
    tmpfile=$(mktemp) || { say "error: mktemp failed"; exit 3; }
    ( exec >"$tmpfile" 3>&- </dev/null
    local _before
    _before=" $(compgen -v | tr '\n' ' ') "
    # shellcheck source=/dev/null
    . "$to_source_file" >/dev/null
    # dkms's own lines, kept as dkms writes them (their quoting is what packages rely on)
    # shellcheck disable=SC1083,SC1087,SC2086
    for _export_env in "${export_envs[@]}"; do
        for _i in $(eval echo \${!$_export_env[@]}); do
            eval echo '$_export_env[$_i]=\"${'$_export_env'[$_i]%$CR}\"'
            eval "[[ \${$_export_env[\$_i]} == *\$CR ]]" && printf '_crlf_directives+=(%q)\n' "$_export_env[$_i]"
        done
    done
    for _v in $(compgen -v); do
        [[ $_v =~ ^[A-Z][A-Z0-9_]+$ && $_before != *" $_v "* && " ${export_envs[*]} " != *" $_v "* ]] && \
            printf '_unknown_directives+=(%q)\n' "$_v"
    done
    echo "_read_whole=yes"
    ) &
    pid=$!
    ( sleep "$conf_seconds"; kill -KILL "$pid" 2>/dev/null ) 3>&- >/dev/null 2>&1 &
    watchdog=$!
    wait "$pid"
    status=$?
    kill -KILL "$watchdog" 2>/dev/null
    wait "$watchdog" 2>/dev/null
    local _read_whole=""
    # shellcheck source=/dev/null
    . "$tmpfile"
    rm -f "$tmpfile"
    if ((status == 137)); then
        conf_errors+=("${to_source_file##*/} did not finish within ${conf_seconds} s (dkms sources it as bash: a loop, a wait or a command that blocks never ends)")
    elif [[ $_read_whole != yes ]]; then
        conf_errors+=("${to_source_file##*/} exited (status $status) while dkms sourced it, so no directive could be read: an \`exit\` in it, or a command that killed the shell")
    fi
}

override_dest_module_location() {
    case "$running_distribution" in
        fedora* | rhel* | ovm*) echo "/extra" ;;
        sles* | suse* | opensuse*) echo "/updates" ;;
        debian* | ubuntu* | arch*) echo "/updates/dkms" ;;
        *) echo "$1" ;;
    esac
}

# dkms's VER: every number padded to three digits, so versions compare as strings (3.2)
VER() {
    echo "$1" | sed -e 's:\([^0-9]\)\([0-9]\):\1 \2:g' -e 's:\([0-9]\)\([^0-9]\):\1 \2:g' \
        -e 's:\(.*\): \1 :' -e 's: \([0-9]\) : 00\1 :g' -e 's: \([0-9][0-9]\) : 0\1 :g' -e 's: ::g'
}

# dkms's read_conf (3.2: read_conf_strict) for the image's dialect, minus the caching and the
# /etc/dkms overrides (a farm has none); `--directive` comes in as KFARM_DIRECTIVES.
# The UPPERCASE directives are dkms.conf's, set by safe_source (SC2153); the whitelist is
# passed as words on purpose (SC2086).
# shellcheck disable=SC2153,SC2086
read_conf() {
    local var index array_size=0 s
    for var in $dkms_conf_variables; do unset "$var"; done
    _unknown_directives=() _crlf_directives=()
    safe_source "$src_dir/dkms.conf" $dkms_conf_variables
    ((${#_unknown_directives[@]})) && \
        fact warning "dkms.conf sets ${_unknown_directives[*]:0:5}, which dkms does not read (not a dkms.conf directive: a typo?)"
    # /etc/dkms overrides, most specific last (`kfarm build --dkms-overrides DIR` puts them in
    # $overrides_dir); named after the module, so only once $module is known
    local override
    if [[ $module ]]; then
        local -a overrides=("$module.conf" "$module-$module_version.conf" "$module-$module_version-$kernelver.conf" "$module-$module_version-$kernelver-$arch.conf")
        release_has overrides-without-version && overrides+=("$module--$kernelver.conf" "$module--$kernelver-$arch.conf")
        for override in "${overrides[@]}"; do
            [[ -e $overrides_dir/$override ]] || continue
            say "reading /etc/dkms/$override"
            safe_source "$overrides_dir/$override" $dkms_conf_variables
        done
    fi
    if release_has deprecated-directives-warned; then
        for var in REMAKE_INITRD MODULES_CONF MODULES_CONF_OBSOLETES MODULES_CONF_ALIAS_TYPE MODULES_CONF_OBSOLETE_ONLY; do
            eval "((\${#${var}[@]}))" && { say "Deprecated feature: $var (dkms.conf)"; fact warning "Deprecated feature: $var (dkms.conf): dkms $dialect ignores it"; }
        done
    fi
    local directive
    while IFS= read -r directive; do
        [[ $directive ]] || continue
        export "${directive%%=*}=${directive#*=}"
        say "DIRECTIVE: ${directive%%=*}=\"${directive#*=}\""
    done <<<"${KFARM_DIRECTIVES:-}"

    package_name="$PACKAGE_NAME"
    package_version="$PACKAGE_VERSION"
    clean="$CLEAN"
    pre_build="$PRE_BUILD"
    post_build="$POST_BUILD"
    post_add="$POST_ADD"

    # 2.8 and 3.0 count the longest array; 3.2 takes the highest index (arrays may be sparse)
    if release_has sparse-arrays; then
        array_size=0
        for s in "${!BUILT_MODULE_NAME[@]}" "${!BUILT_MODULE_LOCATION[@]}" "${!DEST_MODULE_NAME[@]}" "${!DEST_MODULE_LOCATION[@]}"; do
            ((s + 1 > array_size)) && array_size=$((s + 1))
        done
    else
        for s in ${#BUILT_MODULE_NAME[@]} ${#BUILT_MODULE_LOCATION[@]} \
                 ${#DEST_MODULE_NAME[@]} ${#DEST_MODULE_LOCATION[@]}; do
            ((s > array_size)) && array_size=$s
        done
    fi
    for ((index=0; index < array_size; index++)); do
        built_module_name[index]=${BUILT_MODULE_NAME[$index]}
        built_module_location[index]=${BUILT_MODULE_LOCATION[$index]}
        dest_module_name[index]=${DEST_MODULE_NAME[$index]}
        dest_module_location[index]=${DEST_MODULE_LOCATION[$index]}
        case ${STRIP[$index]} in
            [nN]*) strip[index]="no" ;;
            [yY]*) strip[index]="yes" ;;
            '') strip[index]=${strip[0]:-yes} ;;
        esac
        if [[ ! ${built_module_name[$index]} ]]; then
            if release_has default-name-for-one-record; then
                ((array_size == 1)) && built_module_name[index]=$PACKAGE_NAME
            elif release_has default-name-from-module; then
                # $module, which dkms add has set to PACKAGE_NAME by then
                ((${#DEST_MODULE_LOCATION[@]} == 1)) && built_module_name[index]=${module:-$PACKAGE_NAME}
            else
                ((${#DEST_MODULE_LOCATION[@]} == 1)) && built_module_name[index]=$PACKAGE_NAME
            fi
        fi
        [[ ! ${dest_module_name[$index]} ]] && dest_module_name[index]=${built_module_name[$index]}
        [[ ${built_module_location[$index]} && ${built_module_location[$index]:(-1)} != / ]] && \
            built_module_location[index]="${built_module_location[$index]}/"

        [[ ${built_module_name[$index]} ]] || \
            conf_errors+=("No 'BUILT_MODULE_NAME' directive specified for record #$index.")
        case ${built_module_name[$index]} in *.o|*.ko)
            conf_errors+=("'BUILT_MODULE_NAME' directive ends in '.o' or '.ko' in record #$index.") ;;
        esac
        case ${dest_module_name[$index]} in *.o|*.ko)
            conf_errors+=("'DEST_MODULE_NAME' directive ends in '.o' or '.ko' in record #$index.") ;;
        esac
        dest_module_location[index]="$(override_dest_module_location "${dest_module_location[$index]}")"
        [[ ${DEST_MODULE_LOCATION[$index]} ]] || \
            conf_errors+=("No 'DEST_MODULE_LOCATION' directive specified for record #$index.")
        case ${DEST_MODULE_LOCATION[$index]} in
            ''|/kernel*|/updates*|/extra*) ;;
            *) conf_errors+=("Directive 'DEST_MODULE_LOCATION' does not begin with '/kernel', '/updates', or '/extra' in record #$index.") ;;
        esac
    done
    if release_has strict-conf; then
        # read_conf_strict
        for s in ${#built_module_name[@]} ${#built_module_location[@]} ${#dest_module_name[@]} ${#dest_module_location[@]}; do
            ((s != array_size)) && { conf_errors+=("Module name/location array length mismatch."); break; }
        done
        ((array_size == 0)) && { say "dkms.conf: Warning! Zero modules specified."; fact warning "dkms.conf: Warning! Zero modules specified."; }
        local names="" m
        for ((index=0; index < array_size; index++)); do
            m="${built_module_location[$index]}${built_module_name[$index]}"
            [[ " $names " == *" $m "* ]] && conf_errors+=("Duplicate module '$m' in 'BUILT_MODULE_NAME[$index]'.")
            names+=" $m"
        done
        names=""
        for ((index=0; index < array_size; index++)); do
            m="${dest_module_name[$index]}"
            [[ " $names " == *" $m "* ]] && conf_errors+=("Duplicate module '$m' in 'DEST_MODULE_NAME[$index]'.")
            names+=" $m"
        done
        for var in AUTOINSTALL BUILD_DEPENDS_REBUILD NO_WEAK_MODULES; do
            case ${!var} in
                ''|[Yy][Ee][Ss]|[Nn][Oo]) ;;
                *) conf_errors+=("Unsupported $var value '${!var}'") ;;
            esac
        done
    fi

    make_command=""
    [[ ${MAKE_MATCH[0]} ]] || make_command="${MAKE[0]}"
    for ((index=0; index < ${#MAKE[@]}; index++)); do
        [[ ${MAKE[$index]} && ${MAKE_MATCH[$index]} && $kernelver =~ ${MAKE_MATCH[$index]} ]] && \
            make_command="${MAKE[$index]}"
    done
    [[ ! $make_command ]] && make_command="make -C $kernel_source_dir M=$dkms_tree/$module/$module_version/build"
    # 3.2 runs no CLEAN at all
    if release_has clean-default; then
        [[ $clean ]] || clean="make -C $kernel_source_dir M=$dkms_tree/$module/$module_version/build clean"
    else
        clean=""
    fi
    if release_has make-llvm; then
        if [[ -e $kernel_source_dir/vmlinux ]]; then
            readelf -p .comment "$kernel_source_dir/vmlinux" 2>&1 | grep -q clang && make_command="${make_command} LLVM=1"
        elif [[ -e "${kernel_config}" ]]; then
            grep -q CONFIG_CC_IS_CLANG=y "${kernel_config}" && make_command="${make_command} LLVM=1"
        fi
    elif release_has make-clang-lld; then
        if [[ -e $kernel_source_dir/vmlinux ]]; then
            readelf -p .comment "$kernel_source_dir/vmlinux" 2>/dev/null | grep -q clang && make_command="${make_command} CC=clang"
            readelf -p .comment "$kernel_source_dir/vmlinux" 2>/dev/null | grep -q LLD && make_command="${make_command} LD=ld.lld"
        elif [[ -e "${kernel_config}" ]]; then
            grep -q CONFIG_CC_IS_CLANG=y "${kernel_config}" && make_command="${make_command} CC=clang"
            grep -q CONFIG_LD_IS_LLD=y "${kernel_config}" && make_command="${make_command} LD=ld.lld"
        fi
    fi

    patch_array=()
    for ((index=0; index < ${#PATCH[@]}; index++)); do
        if [[ ${PATCH[$index]} && (! ${PATCH_MATCH[$index]} || $kernelver =~ ${PATCH_MATCH[$index]}) ]]; then
            patch_array+=("${PATCH[$index]}")
        fi
    done

    # Which BUILD_EXCLUSIVE_* directive excluded this kernel (dkms only says that one did).
    # 2.8 knows only _KERNEL and _ARCH; 3.2 adds _KERNEL_MIN/_MAX (OBSOLETE_BY is a _MAX).
    exclusion=""
    [[ $BUILD_EXCLUSIVE_KERNEL && ! $kernelver =~ $BUILD_EXCLUSIVE_KERNEL ]] && \
        exclusion="BUILD_EXCLUSIVE_KERNEL=\"$BUILD_EXCLUSIVE_KERNEL\" does not match $kernelver"
    if release_has kernel-min-max && [[ ! $exclusion ]]; then
        local max=${BUILD_EXCLUSIVE_KERNEL_MAX:-$OBSOLETE_BY}
        [[ $BUILD_EXCLUSIVE_KERNEL_MIN && "$(VER "$kernelver")" < "$(VER "$BUILD_EXCLUSIVE_KERNEL_MIN")" ]] && \
            exclusion="BUILD_EXCLUSIVE_KERNEL_MIN=\"$BUILD_EXCLUSIVE_KERNEL_MIN\": $kernelver is older"
        [[ ! $exclusion && $max && "$(VER "$kernelver")" > "$(VER "$max")" ]] && \
            exclusion="BUILD_EXCLUSIVE_KERNEL_MAX=\"$max\": $kernelver is newer"
    fi
    [[ ! $exclusion && $BUILD_EXCLUSIVE_ARCH && ! $arch =~ $BUILD_EXCLUSIVE_ARCH ]] && \
        exclusion="BUILD_EXCLUSIVE_ARCH=\"$BUILD_EXCLUSIVE_ARCH\" does not match $arch"
    if release_has build-exclusive-config && [[ ! $exclusion && $BUILD_EXCLUSIVE_CONFIG && -e $kernel_config ]]; then
        local kconf
        for kconf in $BUILD_EXCLUSIVE_CONFIG; do
            case "$kconf" in
                !*) grep -q "^${kconf#!}=[ym]" "$kernel_config" && \
                        exclusion="BUILD_EXCLUSIVE_CONFIG: ${kconf#!} is set in $kernelver" ;;
                *)  grep -q "^${kconf}=[ym]" "$kernel_config" || \
                        exclusion="BUILD_EXCLUSIVE_CONFIG: $kconf is not set in $kernelver" ;;
            esac
            [[ $exclusion ]] && break
        done
    fi

    release_has dest-location-required && ((${#dest_module_location[@]} == 0)) && conf_errors+=("No 'DEST_MODULE_LOCATION' directive specified.")
    [[ $package_name ]] || conf_errors+=("No 'PACKAGE_NAME' directive specified.")
    [[ $package_version ]] || conf_errors+=("No 'PACKAGE_VERSION' directive specified.")
}


# ======================= the untrusted steps (uid 65534) =======================

fact() { # fact KEY VALUE... : one line on fd 3; control characters in a value become `?`
    local line="" v
    for v in "$@"; do line+="${v//[[:cntrl:]]/?}"$'\t'; done
    printf '%s\n' "${line%$'\t'}" >&3
}

conf_errors=()
report_conf() {
    local i e
    fact package_name "$package_name"
    fact package_version "$package_version"
    for ((i=0; i < ${#built_module_name[@]}; i++)); do
        fact module "$i" "${built_module_name[$i]}" "${built_module_location[$i]}" \
            "${dest_module_name[$i]}" "${DEST_MODULE_LOCATION[$i]}" "${dest_module_location[$i]}" "${strip[$i]}"
    done
    fact make_command "$make_command"
    [[ $AUTOINSTALL ]] && fact autoinstall "$AUTOINSTALL"
    [[ $exclusion ]] && fact exclusion "$exclusion"
    for e in "${conf_errors[@]}"; do say "dkms.conf: Error! $e"; fact conf_error "$e"; done
    return 0
}

# dkms's run_build_script: PRE_BUILD and POST_BUILD run in the build dir, POST_ADD in the
# source dir, only if executable. 2.8 and 3.0 ignore the status; 3.2 sends the output to
# make.log (given as LOG) and stops the build on a failure.
run_build_script() { # run_build_script KIND SCRIPT [LOG]
    local kind="$1" script="$2" log="$3" dir run status
    [[ $script ]] || return 0
    case $kind in pre_build|post_build) dir=build ;; *) dir=source ;; esac
    dir="$dkms_tree/$module/$module_version/$dir"
    run="$dir/$script"
    if [[ ! -x ${run%% *} ]]; then
        say "warning: the ${kind} script is not executable: $script"
        return 0
    fi
    say "running the ${kind} script: $script"
    if [[ $log ]]; then
        ( cd "$dir" && exec $run 3>&- ) >>"$log" 2>&1
        status=$?
        ((status == 0)) || step_stop script-failed "The ${kind} script $script exited with status $status: dkms $dialect fails the build with that status (its output is in make.log)"
    else
        ( cd "$dir" && exec $run 3>&- )
        status=$?
        ((status == 0)) || say "warning: the ${kind} script exited with status $status (dkms $dialect ignores it)"
    fi
    return 0
}

step_stop() { # step_stop REASON MESSAGE: the build did not get through (the supervisor checks the reason)
    fact outcome "$1" "$2"
    exit 0
}

# `dkms add <dir>`: reads the name and version with $module unset.
step_add() {
    local syntax
    say "dkms.conf evaluated as \`dkms add\` does, for the running kernel $kernelver ($arch)"
    # DKMS sources dkms.conf and keeps whatever was assigned before a syntax error, so this is
    # not fatal there either; kfarm says it out loud instead of building from half a file.
    if ! syntax=$(bash -n "$src_dir/dkms.conf" 2>&1); then
        syntax=${syntax//$src_dir\//}
        say "warning: $syntax"
        fact warning "dkms.conf has a bash syntax error; DKMS ignores the rest of the file from there: ${syntax//$'\n'/; }"
    fi
    read_conf
    report_conf
    # dkms add links the source into its tree, then runs POST_ADD (in the source dir)
    if [[ $post_add && ${#conf_errors[@]} == 0 ]] && valid_name "$package_name" && valid_version "$package_version"; then
        module="$package_name" module_version="$package_version"
        mkdir -p "$dkms_tree/$module/$module_version" && ln -sfn "$src_dir" "$dkms_tree/$module/$module_version/source" || exit 3
        # dkms exports nothing to POST_ADD: $kernelver and the others are its shell's, not the script's
        run_build_script post_add "$post_add"
    fi
    fact outcome "done"
}

# A kernel of another arch than the container's (an arm64 kernel on an amd64 host) is
# cross-built: make gets the kernel's ARCH and CROSS_COMPILE (Debian's headers name the
# compiler $(CROSS_COMPILE)gcc-N), also exported for MAKE commands that are not `make`.
# dkms's own $arch stays the kernel's (aarch64): BUILD_EXCLUSIVE_ARCH and the tree's paths use it.
cross_environment() {
    cross_compile="" cross_make_args=""
    [[ $arch == "$(uname -m)" ]] && return 0
    case $arch in
        aarch64) cross_compile=aarch64-linux-gnu- ; export ARCH=arm64 ;;
        *) say "cannot cross-build for $arch on $(uname -m)"; exit 3 ;;
    esac
    export CROSS_COMPILE=$cross_compile
    cross_make_args="ARCH=$ARCH CROSS_COMPILE=$CROSS_COMPILE"
    say "cross-building for $arch on $(uname -m): $cross_make_args"
}

# BUILD_DEPENDS, as `dkms build` of each release treats it. What kfarm calls installed for
# this kernel: a dependency built on it in this run (the supervisor has put its Module.symvers
# in place; KFARM_DEPEND_<i>_NAME). 2.8.4 and 3.0.10 read BUILD_DEPENDS only to order `dkms
# autoinstall`: `dkms build` goes on without it (a missing one is a warning here). 3.2.2
# (do_build, after BUILD_EXCLUSIVE_* and the headers) aborts with exit 13 when one is not
# installed for the kernel.
check_build_depends() {
    local bd i name have missing=()
    for bd in "${BUILD_DEPENDS[@]}"; do
        [[ $bd ]] || continue
        have=""
        for ((i=0; i < ${KFARM_DEPEND_COUNT:-0}; i++)); do
            name=KFARM_DEPEND_${i}_NAME
            [[ ${!name} == "$bd" ]] && have=yes
        done
        [[ $have ]] || missing+=("$bd")
    done
    ((${#missing[@]})) || return 0
    if release_has build-depends-required; then
        step_stop missing-dependency "Aborting build of module $module/$module_version for kernel $kernelver ($arch) due to missing BUILD_DEPENDS: ${missing[*]}: dkms 3.2 builds a module only once each module its BUILD_DEPENDS names is installed for that kernel, and ${missing[*]} was not built for $kernelver in this run (build it in the same kfarm build)"
    fi
    say "warning: BUILD_DEPENDS names ${missing[*]}, not built for $kernelver in this run; dkms $dialect builds the module without it"
    fact warning "BUILD_DEPENDS names ${missing[*]}, which was not built for $kernelver in this run: dkms $dialect builds the module without it (BUILD_DEPENDS only orders \`dkms autoinstall\` there), so this build had no Module.symvers of ${missing[*]}"
}

# The first lines of make.log: 3.2's name the dkms version
make_log_header() {
    if release_has make-log-first; then
        echo "DKMS (dkms-$dkms_version) make.log for $module/$module_version for kernel $kernelver ($arch)"
    else
        echo "DKMS make.log for $module-$module_version for kernel $kernelver ($arch)"
    fi
    # reproducible builds: SOURCE_DATE_EPOCH is the build's date when given (gcc honours it too)
    if [[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]]; then date -u -d "@$SOURCE_DATE_EPOCH"; else date; fi
}

kernel_cc() { # the compiler the kernel's config names (cross-building: its prefixed twin)
    local cc
    cc=$(sed -n 's|^CONFIG_CC_VERSION_TEXT="*\([^" ]*\) .*|\1|p' "$1")
    [[ $cross_compile && $cc != "$cross_compile"* ]] && command -v "$cross_compile$cc" >/dev/null && cc="$cross_compile$cc"
    command -v "$cc" >/dev/null && echo "$cc"
}

kernel_variables_cc() { # 2.8-3.2: CC from the kernel's .kernelvariables, or no CC at all
    if [[ -f "$kernel_source_dir/.kernelvariables" ]]; then
        # $cross_make_args is words (ARCH=... CROSS_COMPILE=...), split on purpose
        # shellcheck disable=SC2086
        CC=$(echo -e "show-%:\n\t@echo \$(\$*)\ninclude $kernel_source_dir/.kernelvariables" | make -f - show-CC $cross_make_args)
        export CC
    else
        unset CC
    fi
}

# run_release_build_script KIND SCRIPT LOG: PRE_BUILD or POST_BUILD as the release runs it
# (into LOG and fatal where build-scripts-fatal, else ignoring its status)
run_release_build_script() {
    if release_has build-scripts-fatal; then
        run_build_script "$1" "$2" "$3"
    else
        run_build_script "$1" "$2"
    fi
}

# run_pre_build MAKE_LOG: PRE_BUILD, with the CC each release gives it and make
run_pre_build() {
    local cc
    # 3.0: CC for PRE_BUILD only, from the kernel's config: actual_build takes it away again before make
    release_has cc-config-for-pre-build && [[ -e $kernel_source_dir/.config ]] && \
        cc=$(kernel_cc "$kernel_source_dir/.config") && export CC="$cc"
    release_has cc-kernelvariables-first && kernel_variables_cc
    # 3.2: CC (and KERNEL_CC) for PRE_BUILD and make
    if release_has cc-config && [[ -e $kernel_config ]]; then
        cc=$(kernel_cc "$kernel_config") && export CC="$cc" KERNEL_CC="$cc"
    fi
    run_release_build_script pre_build "$pre_build" "$1"
    release_has cc-config-for-pre-build && kernel_variables_cc
    return 0
}

# `dkms build -m <name> -v <version>`: sources dkms.conf again with them set, then
# prepare_build + actual_build.
step_build() {
    module="$1" module_version="$2"
    read_conf
    # 2.8 and 3.0 keep the CR of a CRLF dkms.conf in every value: `dkms add` registers the
    # module as `name\r` and its build fails (measured: exit 7, `name\r.ko` is never there).
    # Such a kernel fails here too, first, with what to do about it.
    if release_has crlf-kept && ((${#_crlf_directives[@]})); then
        conf_errors=("dkms.conf has CRLF (Windows) line endings: dkms $dialect keeps the carriage return in every value (${_crlf_directives[*]:0:3} end in \\r), so this release's dkms fails the build; convert dkms.conf to LF line endings (dos2unix dkms.conf, or sed -i 's/\\r\$//' dkms.conf); dkms 3.1.5 and later (trixie) drop the CR" "${conf_errors[@]}")
    fi
    report_conf
    ((${#conf_errors[@]})) && step_stop conf ""
    [[ $exclusion ]] && step_stop excluded ""
    [[ -d $kernel_source_dir/include ]] || step_stop headers ""
    check_build_depends

    local base_dir="$dkms_tree/$module/$module_version/$kernelver/$arch"
    local build_dir="$dkms_tree/$module/$module_version/build"
    mkdir -p "$dkms_tree/$module/$module_version" || exit 3
    # dkms add: /usr/src/<m>-<v> holds the source, $dkms_tree/<m>/<v>/source links to it.
    # Here /usr/src is read-only (it holds the kernel headers), so the link goes straight
    # to the unpacked source.
    ln -sfn "$src_dir" "$dkms_tree/$module/$module_version/source"
    rm -rf "$build_dir"
    cp -a "$dkms_tree/$module/$module_version/source/" "$build_dir" || step_stop disk-full "cannot copy the source to $build_dir"
    cd "$build_dir" || exit 3

    local build_log="$build_dir/make.log"
    # 3.2 opens make.log first: the patches, PRE_BUILD and make all write there
    release_has make-log-first && make_log_header >>"$build_log"

    local p
    for p in "${patch_array[@]}"; do
        # refused on every release (3.2 does; older ones would read a patch from anywhere)
        [[ /$p/ == */../* ]] && step_stop patch-missing "Patch $p as specified in dkms.conf contains '..' path component: a patch must be in patches/"
        [[ -e $build_dir/patches/$p ]] || step_stop patch-missing "Patch $p as specified in dkms.conf cannot be found in patches/"
        say "applying patch $p"
        if release_has make-log-first; then
            patch -p1 < "./patches/$p" >>"$build_log" 2>&1 3>&-
        else
            patch -p1 < "./patches/$p" 3>&-
        fi || step_stop patch-failed "Application of patch $p failed"
    done

    cross_environment
    export kernelver arch module module_version
    run_pre_build "$build_log"

    if [[ $clean ]]; then
        say "cleaning build area: $clean"
        ( eval "$clean" ) >/dev/null 2>&1 3>&-
    fi
    release_has make-log-first || make_log_header >>"$build_log"
    local the_make_command="${make_command/#make/make -j$parallel_jobs KERNELRELEASE=$kernelver${cross_make_args:+ $cross_make_args}}"
    fact make_invocation "$the_make_command"
    say "building: $the_make_command"
    local started make_status
    started=$(date +%s)
    # The log goes to the build log stream whole, to make.log up to the log cap: a build that
    # prints without end must not fill its own build tree with the copy. (tee -p goes on
    # writing to the stream once head has had enough; the fifo because the stream, root's,
    # cannot be reopened by this uid.)
    # In a fresh private directory: a name picked with `mktemp -u` could be taken first.
    local fifo_dir fifo reader
    fifo_dir=$(mktemp -d) && fifo="$fifo_dir/make-log" && mkfifo -m 0600 "$fifo" || exit 3
    head -c "$log_limit" <"$fifo" >>"$build_log" &
    reader=$!
    ( eval "{ $the_make_command; }" 3>&- ) 2>&1 | tee -p "$fifo"
    make_status=${PIPESTATUS[0]}
    wait "$reader"
    rm -rf "$fifo_dir"
    fact make_exit "$make_status"
    fact make_seconds "$(( $(date +%s) - started ))"
    if ((make_status != 0)); then
        grep -q 'No space left on device' "$build_log" && step_stop disk-full "No space left on device"
        step_stop make-failed "Bad return status for module build on kernel: $kernelver ($arch)"
    fi

    local count built_module
    for ((count=0; count < ${#built_module_name[@]}; count++)); do
        [[ -e ${built_module_location[$count]}${built_module_name[$count]}.ko ]] && continue
        step_stop missing-module "Build of ${built_module_location[$count]}${built_module_name[$count]}.ko failed for: $kernelver ($arch): make succeeded but the module is not there; check BUILT_MODULE_NAME and BUILT_MODULE_LOCATION"
    done

    mkdir -p "$base_dir/log" "$base_dir/module"
    mv -f "$build_log" "$base_dir/log/make.log"
    for ((count=0; count < ${#built_module_name[@]}; count++)); do
        built_module="$build_dir/${built_module_location[$count]}${built_module_name[$count]}.ko"
        [[ ${strip[$count]} != no ]] && "${cross_compile}strip" -g "$built_module"
        cp -f "$built_module" "$base_dir/module/${dest_module_name[$count]}.ko"
    done
    # 3.2 keeps the build's Module.symvers next to the modules (modules that use this one's
    # symbols build against it), and its POST_BUILD writes to make.log, fatally
    release_has symvers-kept && [[ -f $build_dir/Module.symvers ]] && cp -f "$build_dir/Module.symvers" "$base_dir/module/Module.symvers"
    run_release_build_script post_build "$post_build" "$base_dir/log/make.log"
    fact outcome "done"
}


# ======================= the supervisor (root, trusted) =======================

readonly work=/kfarm out_dir=/kfarm/out
readonly result_file=/kfarm/out/result script_copy=/kfarm/driver.sh
readonly output_limit=${KFARM_OUTPUT_LIMIT:-268435456}
# the mounts a build may write to, each a size- and inode-capped tmpfs
readonly scratch_mounts=(/var/lib/dkms /kfarm/source /tmp /var/tmp /run/lock)
readonly step_reasons=" make-failed patch-missing patch-failed script-failed disk-full missing-module missing-dependency "

result() { # result KEY VALUE... : one line of out/result, control characters flattened
    local line="" v
    for v in "$@"; do line+="${v//[[:cntrl:]]/ }"$'\t'; done
    printf '%s\n' "${line%$'\t'}" >>"$result_file"
}

# The output tar is written last, on the stdout saved as fd 9; nothing else ever writes there.
emit_output() {
    tar -C "$work" --numeric-owner -cf - out >&9 || { say "error: cannot write the output"; exit 90; }
}

finish() { # finish VERDICT REASON MESSAGE
    result verdict "$1"
    [[ $2 ]] && result reason "$2"
    [[ $3 ]] && result message "${3:0:2000}"
    emit_output
    case "$1" in
        built) exit 0 ;;
        excluded) exit 77 ;;
        *) exit 1 ;;
    esac
}

# Ends every process of uid 65534: after this nothing of the build can write anywhere.
# kill(-1) as that uid signals all of them at once (and not the caller); repeated until
# /proc shows none left but zombies.
kill_untrusted() {
    local try d uid state left
    for ((try=0; try < 50; try++)); do
        "${DROP[@]}" bash -c 'kill -KILL -1' 2>/dev/null
        left=0
        for d in /proc/[0-9]*; do
            uid="" state=""
            while read -r key value _; do
                case $key in Uid:) uid=$value ;; State:) state=$value ;; esac
            done 2>/dev/null <"$d/status"
            [[ $uid == "$NOBODY" && $state != Z ]] && left=$((left + 1))
        done
        ((left == 0)) && return 0
        sleep 0.1
    done
    finish failed driver-error "processes of the build survived SIGKILL; kfarm cannot trust what it would read"
}

# run_step NAME ARGS...: one untrusted step as uid 65534, stdin empty, stdout on the log,
# facts (at most 1 MiB) into $work/steps/NAME; sets step_status.
run_step() {
    local name="$1"; shift
    local facts="$work/steps/$name" fifo="$work/steps/$name.fifo"
    mkfifo -m 0600 "$fifo" || finish failed driver-error "cannot create $fifo"
    head -c 1048576 <"$fifo" >"$facts" &
    local reader=$!
    ( cd / && exec "${DROP[@]}" bash "$script_copy" step "$name" "$kernelver" "$arch" "$@" \
        3>"$fifo" </dev/null 9>&- >&2 )
    step_status=$?
    kill_untrusted
    wait "$reader"
    rm -f "$fifo"
}

# read_facts NAME: the step's facts as data, never sourced; later keys win, lists append.
read_facts() {
    f_package_name="" f_package_version="" f_make_command="" f_autoinstall="" f_exclusion=""
    f_make_invocation="" f_make_exit="" f_make_seconds="" f_outcome="" f_outcome_message=""
    f_modules=() f_conf_errors=() f_warnings=()
    local line key value
    while IFS= read -r line || [[ $line ]]; do
        key=${line%%$'\t'*}
        [[ $line == *$'\t'* ]] && value=${line#*$'\t'} || value=""
        case $key in
            package_name) f_package_name=$value ;;
            package_version) f_package_version=$value ;;
            module) f_modules+=("$value") ;;
            make_command) f_make_command=$value ;;
            autoinstall) f_autoinstall=$value ;;
            exclusion) f_exclusion=$value ;;
            conf_error) f_conf_errors+=("$value") ;;
            warning) f_warnings+=("$value") ;;
            make_invocation) f_make_invocation=$value ;;
            make_exit) f_make_exit=$value ;;
            make_seconds) f_make_seconds=$value ;;
            outcome) f_outcome=${value%%$'\t'*}; [[ $value == *$'\t'* ]] && f_outcome_message=${value#*$'\t'} ;;
        esac
    done <"$work/steps/$1"
}

split_tabs() { # split_tabs ARRAY VALUE: fields between tabs, empty ones kept
    local -n _fields=$1
    local rest=$2
    _fields=()
    while [[ $rest == *$'\t'* ]]; do _fields+=("${rest%%$'\t'*}"); rest=${rest#*$'\t'}; done
    _fields+=("$rest")
}

# check_names: the names of the facts just read against kfarm's rules; the first bad one
# in bad_name (empty when all are good). Module records are parsed into m_* arrays.
check_names() {
    bad_name="" dup_warning=""
    m_built=() m_built_loc=() m_dest=() m_dest_loc=() m_install_loc=() m_strip=()
    # A missing one is dkms's own error (No 'PACKAGE_NAME' directive specified), said already;
    # the step's word is not taken for it, so an empty name with no such error is still refused.
    local said=${#f_conf_errors[@]}
    [[ -z $f_package_name ]] && ((said)) || valid_name "$f_package_name" || { bad_name="PACKAGE_NAME $(quote "$f_package_name") is not a valid module name (letters, digits, _ . + -; at most 64; not starting with . or -)"; return; }
    [[ -z $f_package_version ]] && ((said)) || valid_version "$f_package_version" || { bad_name="PACKAGE_VERSION $(quote "$f_package_version") is not a valid version (letters, digits, _ . + ~ -; at most 64)"; return; }
    local rec fields i
    for rec in "${f_modules[@]}"; do
        split_tabs fields "$rec"
        i=${fields[0]}
        valid_name "${fields[1]}" || { bad_name="BUILT_MODULE_NAME[$i] $(quote "${fields[1]}") is not a valid module name (letters, digits, _ . + -; at most 64)"; return; }
        valid_location "${fields[2]}" || { bad_name="BUILT_MODULE_LOCATION[$i] $(quote "${fields[2]}") is not a relative path inside the build dir (no /, . or .. segments)"; return; }
        valid_name "${fields[3]}" || { bad_name="DEST_MODULE_NAME[$i] $(quote "${fields[3]}") is not a valid module name (letters, digits, _ . + -; at most 64)"; return; }
        # both valid, else refused
        # shellcheck disable=SC2015
        valid_dest_location "${fields[4]}" && valid_dest_location "${fields[5]}" || { bad_name="DEST_MODULE_LOCATION[$i] $(quote "${fields[4]}") is not a location dkms accepts inside the module tree: it must start with /kernel, /updates or /extra and be plain path segments of letters, digits and _ . + - (no ..)"; return; }
        # 2.8 and 3.0 copy two records of one DEST_MODULE_NAME to one file, the last copy
        # winning (3.2 refuses them): one module, as the last record says
        local j
        for ((j=0; j < ${#m_dest[@]}; j++)); do
            [[ ${m_dest[$j]} == "${fields[3]}" ]] || continue
            dup_warning="DEST_MODULE_NAME[$i] repeats ${fields[3]}: dkms $dialect builds one ${fields[3]} module, from the last such record"
            unset 'm_built[j]' 'm_built_loc[j]' 'm_dest[j]' 'm_dest_loc[j]' 'm_install_loc[j]' 'm_strip[j]'
            m_built=("${m_built[@]}") m_built_loc=("${m_built_loc[@]}") m_dest=("${m_dest[@]}")
            m_dest_loc=("${m_dest_loc[@]}") m_install_loc=("${m_install_loc[@]}") m_strip=("${m_strip[@]}")
            break
        done
        m_built+=("${fields[1]}") m_built_loc+=("${fields[2]}") m_dest+=("${fields[3]}")
        m_dest_loc+=("${fields[4]}") m_install_loc+=("${fields[5]}")
        [[ ${fields[6]} == no ]] && m_strip+=(no) || m_strip+=(yes)
    done
}

# refuse_unusable_conf add|build: the pass's verdict when dkms.conf errs or names a bad name
refuse_unusable_conf() {
    check_names
    ((${#f_conf_errors[@]})) || [[ $bad_name ]] || return 0
    [[ $bad_name ]] && say "dkms.conf: Error! $bad_name"
    report_facts
    result failed_stage "$1"
    finish failed bad-conf "${f_conf_errors[0]:-$bad_name}"
}

# report_facts: what dkms.conf said, as checked; names only when valid
report_facts() {
    local i
    if [[ $bad_name ]]; then
        # result always succeeds, so this is if-then-else
        # shellcheck disable=SC2015
        valid_name "$f_package_name" && result package_name "$f_package_name" || result package_name ""
        # shellcheck disable=SC2015
        valid_version "$f_package_version" && result package_version "$f_package_version" || result package_version ""
    else
        result package_name "$f_package_name"
        result package_version "$f_package_version"
        for ((i=0; i < ${#m_built[@]}; i++)); do
            result module "$i" "${m_built[$i]}" "${m_built_loc[$i]}" "${m_dest[$i]}" "${m_dest_loc[$i]}" "${m_install_loc[$i]}" "${m_strip[$i]}"
        done
    fi
    result make_command "${f_make_command:0:4000}"
    [[ $f_autoinstall ]] && result autoinstall "${f_autoinstall:0:100}"
    [[ $f_exclusion ]] && result exclusion "${f_exclusion:0:1000}"
    return 0
}

# full_mount: the first scratch mount that has run out of space or inodes, as a sentence
full_mount() {
    local m size avail itotal iavail
    for m in "${scratch_mounts[@]}"; do
        read -r size avail itotal iavail < <(df --output=size,avail,itotal,iavail "$m" 2>/dev/null | tail -n1)
        [[ $avail =~ ^[0-9]+$ && $iavail =~ ^[0-9]+$ ]] || continue
        if ((avail < 1024)); then
            echo "$m (a $((size / 1024)) MiB tmpfs) ran out of space"; return 0
        elif ((iavail < 16)); then
            echo "$m (a tmpfs of $itotal files) ran out of inodes"; return 0
        fi
    done
    return 1
}

disk_full_message() { # disk_full_message SENTENCE
    local raise="raise --disk (the scratch mounts are sized from it and live in memory, so raise --memory with it)"
    [[ $1 == /var/lib/dkms* ]] && raise="raise --disk (the build tree's size; it lives in memory, so raise --memory with it)"
    echo "No space left on device: the build tree or a scratch mount is full: $1; $raise, or make the build write less"
}

# copy_out SRC DEST LIMIT: a regular file (not a link) from the frozen build tree, at most LIMIT bytes
copy_out() {
    [[ -f $1 && ! -L $1 ]] || return 1
    head -c "$3" -- "$1" >"$2"
}

copy_log() { # copy_log MAKE_LOG: into the output, capped, with a note when cut
    copy_out "$1" "$out_dir/tree/log/make.log" "$log_limit" || return 0
    (($(stat -c %s -- "$1") > log_limit)) && printf '\n[kfarm] make.log truncated at %s bytes\n' "$log_limit" >>"$out_dir/tree/log/make.log"
    return 0
}

# The suffix dkms gives a module on a machine running this kernel: compressed as the kernel's
# own modules are (Debian's 6.12 kernels: .ko.xz). dkms looks at the installed modules
# (modules.dep in 2.8 and 3.0, the files in 3.2); an image holds only the headers, so the
# kernel's config says how its modules are compressed.
kernel_module_suffix() {
    local config=/lib/modules/$kernelver/build/.config
    # `kfarm build --compress none|xz|zstd` overrides the kernel's choice
    case ${KFARM_COMPRESS:-auto} in
        none) echo .ko; return ;;
        xz) echo .ko.xz; return ;;
        zstd) echo .ko.zst; return ;;
    esac
    if grep -q '^CONFIG_MODULE_COMPRESS_XZ=y' "$config" 2>/dev/null; then echo .ko.xz
    elif grep -q '^CONFIG_MODULE_COMPRESS_ZSTD=y' "$config" 2>/dev/null; then echo .ko.zst
    elif grep -q '^CONFIG_MODULE_COMPRESS_GZIP=y' "$config" 2>/dev/null; then echo .ko.gz
    else echo .ko; fi
}

# compress_modules: the output's modules, compressed by root after the build is dead, with
# the options the kernel's own `make modules_install` uses. xz with CRC32 on every release:
# the kernel's in-kernel decompressor refuses CRC64, which 2.8's and 3.0's plain `xz -f`
# writes (dkms#386). gzip -n: no name or time stamp in the file, so rebuilds are identical.
compress_modules() {
    local suffix m tool
    suffix=$(kernel_module_suffix)
    result module_suffix "$suffix"
    [[ $suffix == .ko ]] && return 0
    case $suffix in
        .ko.xz) tool=(xz --check=crc32 --lzma2=dict=1MiB -f) ;;
        .ko.zst) tool=(zstd -q -f -T0 --rm) ;;
        .ko.gz) tool=(gzip -9 -n -f) ;;
    esac
    command -v "${tool[0]}" >/dev/null || finish failed driver-error "$kernelver compresses its modules with ${tool[0]}, which this image lacks (kfarm's images hold xz and gzip): use --compress xz or none"
    for m in "${m_dest[@]}"; do
        "${tool[@]}" "$out_dir/tree/module/$m.ko" || finish failed driver-error "cannot compress $m.ko with ${tool[0]}"
    done
    say "compressed as $kernelver's own modules are: ${m_dest[*]/%/$suffix}"
}

# write_overrides: the /etc/dkms/*.conf files the job carries (KFARM_OVERRIDE_<i>_NAME and
# KFARM_OVERRIDE_<i>, checked by the coordinator), root's and readable, into $overrides_dir
write_overrides() {
    local i name
    # its parent, /kfarm, exists: -m is for this one directory only
    # shellcheck disable=SC2174
    mkdir -p -m 0755 "$overrides_dir" || finish failed driver-error "cannot create $overrides_dir"
    for ((i=0; i < ${KFARM_OVERRIDE_COUNT:-0}; i++)); do
        name=KFARM_OVERRIDE_${i}_NAME
        name=${!name}
        [[ $name =~ ^[A-Za-z0-9_][A-Za-z0-9_.+~-]*\.conf$ ]] || finish failed driver-error "bad override name $(quote "$name")"
        local text=KFARM_OVERRIDE_$i
        printf '%s' "${!text}" >"$overrides_dir/$name" || finish failed driver-error "cannot write $overrides_dir/$name"
        chmod 0644 "$overrides_dir/$name"
    done
}

supervise() {
    kernelver="$1" arch="$2"
    [[ $kernelver && $arch ]] || { say "usage: driver.sh build <kernelver> <arch>"; exit 2; }
    exec 9>&1 1>&2
    umask 022
    mkdir -p "$out_dir/tree" "$work/steps" || { say "error: cannot write $work"; exit 90; }
    : >"$result_file"
    # before anything of the module runs: a release not in the table has no rules to follow
    [[ $dialect ]] || { say "error: $(release_error)"; finish failed driver-error "$(release_error)"; }
    if [[ $BASH_EXECUTION_STRING ]]; then printf '%s' "$BASH_EXECUTION_STRING" >"$script_copy"; else cat -- "$0" >"$script_copy"; fi || \
        finish failed driver-error "cannot write $script_copy"

    # the source, unpacked by uid 65534 into its tmpfs; stdin is not needed after this
    if ! ( cd / && "${DROP[@]}" tar -x -C "$src_dir" --no-same-owner -f - 9>&- ); then
        exec </dev/null
        kill_untrusted
        local where; where=$(full_mount) && finish failed disk-full "the source does not fit: $where; raise --disk"
        finish failed driver-error "cannot unpack the module source into $src_dir"
    fi
    exec </dev/null
    kill_untrusted
    [[ -f $src_dir/dkms.conf ]] || finish failed bad-conf "no dkms.conf at the top of the source tree"
    write_overrides

    # Twice, as dkms does: `dkms add <dir>` reads the name and version with $module unset, then
    # `dkms build -m <name> -v <version>` sources the file again with them set.
    # A failure in the first pass is the module's (dkms add would refuse it), not this kernel's.
    run_step add
    read_facts add
    local w
    for w in "${f_warnings[@]}"; do result warning "${w:0:1000}"; done
    [[ $f_outcome == "done" ]] || finish failed driver-error "evaluating dkms.conf (as dkms add does) ended early (status $step_status): something in dkms.conf killed it or exited"
    refuse_unusable_conf add
    local module="$f_package_name" module_version="$f_package_version"
    # A build cut short (timeout, kill) writes no result: the log then names the module (identityFromLog).
    say "module $module/$module_version (as dkms add registers it)"

    # BUILD_DEPENDS: each dependency's Module.symvers where DKMS >= 3.1.3 keeps it on a host
    # (src/coordinator/dependency-order.ts says why this path, for every release)
    # (KFARM_DEPEND_<i>_NAME, _VERSION, and KFARM_DEPEND_<i>: the file gzipped, in base64)
    local i dep_name dep_version dep_data dep_dir
    for ((i=0; i < ${KFARM_DEPEND_COUNT:-0}; i++)); do
        dep_name=KFARM_DEPEND_${i}_NAME dep_version=KFARM_DEPEND_${i}_VERSION dep_data=KFARM_DEPEND_$i
        dep_name=${!dep_name} dep_version=${!dep_version} dep_data=${!dep_data}
        # both valid, else the job is refused; then the copy, else the job fails
        # shellcheck disable=SC2015
        valid_name "$dep_name" && valid_version "$dep_version" || finish failed driver-error "bad BUILD_DEPENDS name $(quote "$dep_name/$dep_version")"
        dep_dir="/var/lib/dkms/$dep_name/$dep_version/$kernelver/$arch/module"
        # shellcheck disable=SC2015
        "${DROP[@]}" mkdir -p "$dep_dir" && printf '%s' "$dep_data" | base64 -d | gzip -dc | "${DROP[@]}" tee "$dep_dir/Module.symvers" >/dev/null || \
            finish failed driver-error "cannot put $dep_name's Module.symvers at $dep_dir"
        say "BUILD_DEPENDS $dep_name/$dep_version: its Module.symvers is at $dep_dir/Module.symvers"
    done

    local -a add_warnings=("${f_warnings[@]}")
    run_step build "$module" "$module_version"
    read_facts build
    # what only the build pass said (BUILD_DEPENDS for this kernel); the rest it said twice
    for w in "${f_warnings[@]}"; do
        [[ " ${add_warnings[*]} " == *" $w "* ]] || result warning "${w:0:1000}"
    done
    refuse_unusable_conf build
    [[ $dup_warning ]] && { say "warning: $dup_warning"; result warning "${dup_warning:0:1000}"; }
    # dkms builds a module as what `dkms add` registered (-m/-v), whatever dkms.conf says for
    # this kernel; a name or version that changes with the kernel is said, not refused
    if [[ $f_package_name != "$module" || $f_package_version != "$module_version" ]]; then
        local differs="dkms.conf says $f_package_name/$f_package_version for $kernelver but $module/$module_version for \`dkms add\`: dkms builds it as $module/$module_version, the name it was added as"
        say "warning: $differs"
        result warning "${differs:0:1000}"
        f_package_name=$module f_package_version=$module_version
    fi
    report_facts
    [[ $f_exclusion ]] && { say "excluded: $f_exclusion"; finish excluded build-exclusive "${f_exclusion:0:1000}"; }
    [[ -d /lib/modules/$kernelver/build/include ]] || \
        finish failed missing-headers "no kernel headers at /lib/modules/$kernelver/build in this image"

    [[ $f_make_invocation ]] && result make_invocation "${f_make_invocation:0:4000}"
    [[ $f_make_exit =~ ^[0-9]{1,3}$ ]] && result make_exit "$f_make_exit"
    [[ $f_make_seconds =~ ^[0-9]{1,9}$ ]] && result make_seconds "$f_make_seconds"

    local build_dir="/var/lib/dkms/$module/$module_version/build"
    local base_dir="/var/lib/dkms/$module/$module_version/$kernelver/$arch"
    mkdir -p "$out_dir/tree/log" || finish failed driver-error "cannot write $out_dir"
    if [[ $f_outcome != "done" ]]; then
        # what the build printed, for the first error (a 3.2 POST_BUILD that failed wrote to the
        # log already moved beside the modules); then whose fault: a full mount first
        if [[ -f $build_dir/make.log ]]; then copy_log "$build_dir/make.log"; else copy_log "$base_dir/log/make.log"; fi
        local where
        where=$(full_mount) && finish failed disk-full "$(disk_full_message "$where")"
        [[ $f_outcome == disk-full ]] && finish failed disk-full "$(disk_full_message "a write failed")"
        [[ $step_reasons == *" $f_outcome "* ]] && finish failed "$f_outcome" "${f_outcome_message:0:2000}"
        finish failed driver-error "the build step ended early (status $step_status) without saying why: something in the module's build killed it"
    fi

    # The verdict is the supervisor's: each expected module, a regular file, in the module dir.
    local i m size total=0
    if [[ -d $base_dir && ! -L $base_dir ]]; then
        local odd
        odd=$(cd "$base_dir" 2>/dev/null && find . -mindepth 1 ! -type f ! -type d -printf '%P -> %l\n' 2>&1 | head -n 3)
        [[ $odd ]] && { say "kfarm refused the build's output: symlink entries are not allowed: $odd"
            finish failed unsafe-output "kfarm refused the build's output: symlink entries are not allowed: ${odd//$'\n'/; }"; }
    fi
    for ((i=0; i < ${#m_dest[@]}; i++)); do
        m="$base_dir/module/${m_dest[$i]}.ko"
        if [[ ! -f $m || -L $m ]]; then
            local where; where=$(full_mount) && finish failed disk-full "$(disk_full_message "$where")"
            finish failed missing-module "Build of ${m_built_loc[$i]}${m_built[$i]}.ko failed for: $kernelver ($arch): ${m_dest[$i]}.ko is not a file in the module directory; check BUILT_MODULE_NAME and BUILT_MODULE_LOCATION"
        fi
        size=$(stat -c %s -- "$m") && total=$((total + size))
    done
    ((total > output_limit)) && finish failed output-too-large "the modules take $total bytes, more than the $output_limit-byte output cap"
    mkdir -p "$out_dir/tree/module"
    for ((i=0; i < ${#m_dest[@]}; i++)); do
        copy_out "$base_dir/module/${m_dest[$i]}.ko" "$out_dir/tree/module/${m_dest[$i]}.ko" "$output_limit" || \
            finish failed missing-module "cannot read the built module ${m_dest[$i]}.ko (the build took its read permission)"
    done
    compress_modules
    # what a module with BUILD_DEPENDS on this one links against (DKMS >= 3.1.3 keeps it in module/)
    copy_out "$build_dir/Module.symvers" "$out_dir/tree/module/Module.symvers" "$output_limit" 2>/dev/null || true
    copy_log "$base_dir/log/make.log"
    # 3.0 keeps the kernel's .config in the log dir (and so in its tarballs); 2.8 only with
    # --config, 3.2 never
    release_has config-in-log && copy_out "/lib/modules/$kernelver/build/.config" "$out_dir/tree/log/.config" "$log_limit"
    say "built ${#m_dest[@]} module(s) for $kernelver"
    finish built "" ""
}

# ======================= dispatch =======================

case $role in
    build) supervise "$2" "$3" ;;
    step)
        [[ $(id -u) == "$NOBODY" ]] || { say "error: steps run as uid $NOBODY only"; exit 2; }
        [[ $dialect ]] || { say "error: $(release_error)"; exit 2; }
        kernelver_arg="$3" arch_arg="$4"
        # as dkms starts: whatever the environment says about compilers is not the kernel's
        umask 022
        # reproducible builds: kbuild takes KBUILD_BUILD_TIMESTAMP as asking for one (pahole then
        # encodes a module's BTF without -j, whose output changes from run to run)
        if [[ $SOURCE_DATE_EPOCH =~ ^[0-9]+$ ]]; then
            KBUILD_BUILD_TIMESTAMP="$(date -u -d "@$SOURCE_DATE_EPOCH")"
            export KBUILD_BUILD_TIMESTAMP
        fi
        unset CC CXX CFLAGS CXXFLAGS LDFLAGS
        # `dkms add` runs without -k: it reads dkms.conf for the running kernel (here the
        # farm host's, as on a build machine), not for the kernel about to be built
        [[ $2 == add ]] && kernelver_arg=$(uname -r) arch_arg=$(uname -m)
        # the DKMS variables, then the step
        init_dkms_vars
        case $2 in
            add) step_add ;;
            build) step_build "$5" "$6" ;;
        esac ;;
    *) say "usage: driver.sh build <kernelver> <arch>"; exit 2 ;;
esac
