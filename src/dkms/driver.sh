#!/bin/bash
# kfarm in-container build driver: does for one kernel what `dkms build` does, the way
# Debian's dkms 3.0.10 does it (read_conf, prepare_build, actual_build), and writes its
# findings for the worker to collect.
#
#   driver.sh build <kernelver> <arch>      evaluate dkms.conf, then build
#
# In:  /kfarm/source   the module source with its dkms.conf
# Out: /kfarm/out/result       tab-separated facts, one per line (parsed by driver-result.ts)
#      /kfarm/out/tree/        what dkms keeps in $dkms_tree/<m>/<v>/<k>/<a>: module/, log/
# The build log goes to stdout; the worker streams it to logs/<kernel>.log.
#
# Exit status: 0 built, 77 excluded by BUILD_EXCLUSIVE_*, anything else failed.
# Deliberately no `set -e`: dkms.conf and the module's scripts are sourced/run as dkms does,
# and dkms ignores the status of PRE_BUILD and POST_BUILD.

readonly action="$1" kernelver_arg="$2" arch_arg="$3"
[[ $action = build ]] || { echo "usage: driver.sh build <kernelver> <arch>" >&2; exit 2; }
readonly src_dir=/kfarm/source out_dir=/kfarm/out
readonly result_file="$out_dir/result"

exec 2>&1
mkdir -p "$out_dir" || exit 90
: >"$result_file"

fact() { # fact KEY VALUE... : one line, tabs and newlines flattened
    local IFS=$'\t' line
    line="$*"
    line="${line//$'\n'/ }"
    printf '%s\n' "$line" >>"$result_file"
}

finish() { # finish VERDICT REASON MESSAGE
    fact verdict "$1"
    [[ $2 ]] && fact reason "$2"
    [[ $3 ]] && fact message "$3"
    case "$1" in
        built) exit 0 ;;
        excluded) exit 77 ;;
        *) exit 1 ;;
    esac
}

say() { printf '[kfarm] %s\n' "$*"; }

# --- the variables dkms has set when it sources dkms.conf (3.0.10 main section) ---
dkms_tree=/var/lib/dkms
source_tree=/usr/src
install_tree=/lib/modules
tmp_location=${TMPDIR:-/tmp}
current_kernel=$(uname -r)
current_os=$(uname -s)
parallel_jobs=${KFARM_JOBS:-$(nproc)}
[[ $parallel_jobs = 0 ]] && parallel_jobs=""
verbose=""
force=""
conf=""
addon_modules_dir=""
kernelver="$kernelver_arg"
arch="$arch_arg"
kernel_source_dir="/lib/modules/$kernelver/build"
kernel_config="$kernel_source_dir/.config"
module=""
module_version=""

distro_version() {
    if [[ -r /etc/os-release ]]; then
        . /etc/os-release
        if [[ "$ID" = "ubuntu" ]]; then echo "$ID"
        elif [[ ${#ID_LIKE[@]} != 0 && $ID_LIKE ]]; then echo "${ID_LIKE[0]}"
        else echo "$ID"; fi
        return
    fi
    echo unknown
}
running_distribution="$(distro_version)"

readonly dkms_conf_variables="CLEAN PACKAGE_NAME
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
   MODULES_CONF_ALIAS_TYPE MODULES_CONF_OBSOLETE_ONLY"

# dkms 3.0.10 safe_source, kept to the letter: values come back through a second
# evaluation inside double quotes, and real packages depend on that behaviour.
safe_source() {
    local to_source_file="$1"; shift
    declare -a -r export_envs=("$@")
    local tmpfile
    tmpfile=$(mktemp) || finish failed driver-error "mktemp failed"
    ( exec >"$tmpfile"
    . "$to_source_file" >/dev/null
    for _export_env in "${export_envs[@]}"; do
        for _i in $(eval echo \${!$_export_env[@]}); do
            eval echo '$_export_env[$_i]=\"${'$_export_env'[$_i]}\"'
        done
    done
    )
    . "$tmpfile"
    rm -f "$tmpfile"
}

override_dest_module_location() {
    case "$running_distribution" in
        fedora* | rhel* | ovm*) echo "/extra" ;;
        sles* | suse* | opensuse*) echo "/updates" ;;
        debian* | ubuntu* | arch*) echo "/updates/dkms" ;;
        *) echo "$1" ;;
    esac
}

# dkms 3.0.10 read_conf, minus the caching and /etc/dkms overrides (a farm has none).
conf_errors=()
read_conf() {
    local var index array_size=0 s
    for var in $dkms_conf_variables; do unset "$var"; done
    safe_source "$src_dir/dkms.conf" $dkms_conf_variables

    package_name="$PACKAGE_NAME"
    package_version="$PACKAGE_VERSION"
    clean="$CLEAN"
    pre_build="$PRE_BUILD"
    post_build="$POST_BUILD"

    for s in ${#BUILT_MODULE_NAME[@]} ${#BUILT_MODULE_LOCATION[@]} \
             ${#DEST_MODULE_NAME[@]} ${#DEST_MODULE_LOCATION[@]}; do
        ((s > array_size)) && array_size=$s
    done
    for ((index=0; index < array_size; index++)); do
        built_module_name[$index]=${BUILT_MODULE_NAME[$index]}
        built_module_location[$index]=${BUILT_MODULE_LOCATION[$index]}
        dest_module_name[$index]=${DEST_MODULE_NAME[$index]}
        dest_module_location[$index]=${DEST_MODULE_LOCATION[$index]}
        case ${STRIP[$index]} in
            [nN]*) strip[$index]="no" ;;
            [yY]*) strip[$index]="yes" ;;
            '') strip[$index]=${strip[0]:-yes} ;;
        esac
        [[ ! ${built_module_name[$index]} ]] && ((${#DEST_MODULE_LOCATION[@]} == 1)) && \
            built_module_name[$index]=$PACKAGE_NAME
        [[ ! ${dest_module_name[$index]} ]] && dest_module_name[$index]=${built_module_name[$index]}
        [[ ${built_module_location[$index]} && ${built_module_location[$index]:(-1)} != / ]] && \
            built_module_location[$index]="${built_module_location[$index]}/"

        [[ ${built_module_name[$index]} ]] || \
            conf_errors+=("No 'BUILT_MODULE_NAME' directive specified for record #$index.")
        case ${built_module_name[$index]} in *.o|*.ko)
            conf_errors+=("'BUILT_MODULE_NAME' directive ends in '.o' or '.ko' in record #$index.") ;;
        esac
        case ${dest_module_name[$index]} in *.o|*.ko)
            conf_errors+=("'DEST_MODULE_NAME' directive ends in '.o' or '.ko' in record #$index.") ;;
        esac
        dest_module_location[$index]="$(override_dest_module_location "${dest_module_location[$index]}")"
        [[ ${DEST_MODULE_LOCATION[$index]} ]] || \
            conf_errors+=("No 'DEST_MODULE_LOCATION' directive specified for record #$index.")
        case ${DEST_MODULE_LOCATION[$index]} in
            /kernel*|/updates*|/extra*) ;;
            *) conf_errors+=("Directive 'DEST_MODULE_LOCATION' does not begin with '/kernel', '/updates', or '/extra' in record #$index.") ;;
        esac
    done

    make_command=""
    [[ ${MAKE_MATCH[0]} ]] || make_command="${MAKE[0]}"
    for ((index=0; index < ${#MAKE[@]}; index++)); do
        [[ ${MAKE[$index]} && ${MAKE_MATCH[$index]} && $kernelver =~ ${MAKE_MATCH[$index]} ]] && \
            make_command="${MAKE[$index]}"
    done
    [[ ! $make_command ]] && make_command="make -C $kernel_source_dir M=$dkms_tree/$module/$module_version/build"
    [[ ! $clean ]] && clean="make -C $kernel_source_dir M=$dkms_tree/$module/$module_version/build clean"
    if [[ -e $kernel_source_dir/vmlinux ]]; then
        readelf -p .comment "$kernel_source_dir/vmlinux" | grep -q clang && make_command="${make_command} CC=clang"
        readelf -p .comment "$kernel_source_dir/vmlinux" | grep -q LLD && make_command="${make_command} LD=ld.lld"
    elif [[ -e "${kernel_config}" ]]; then
        grep -q CONFIG_CC_IS_CLANG=y "${kernel_config}" && make_command="${make_command} CC=clang"
        grep -q CONFIG_LD_IS_LLD=y "${kernel_config}" && make_command="${make_command} LD=ld.lld"
    fi

    patch_array=()
    for ((index=0; index < ${#PATCH[@]}; index++)); do
        if [[ ${PATCH[$index]} && (! ${PATCH_MATCH[$index]} || $kernelver =~ ${PATCH_MATCH[$index]}) ]]; then
            patch_array+=("${PATCH[$index]}")
        fi
    done

    # Which BUILD_EXCLUSIVE_* directive excluded this kernel (dkms only says that one did).
    exclusion=""
    [[ $BUILD_EXCLUSIVE_KERNEL && ! $kernelver =~ $BUILD_EXCLUSIVE_KERNEL ]] && \
        exclusion="BUILD_EXCLUSIVE_KERNEL=\"$BUILD_EXCLUSIVE_KERNEL\" does not match $kernelver"
    [[ ! $exclusion && $BUILD_EXCLUSIVE_ARCH && ! $arch =~ $BUILD_EXCLUSIVE_ARCH ]] && \
        exclusion="BUILD_EXCLUSIVE_ARCH=\"$BUILD_EXCLUSIVE_ARCH\" does not match $arch"
    if [[ ! $exclusion && $BUILD_EXCLUSIVE_CONFIG && -e $kernel_source_dir/.config ]]; then
        local kconf
        for kconf in $BUILD_EXCLUSIVE_CONFIG; do
            case "$kconf" in
                !*) grep -q -E "^${kconf#!}=[ym]" "$kernel_source_dir/.config" && \
                        exclusion="BUILD_EXCLUSIVE_CONFIG: ${kconf#!} is set in $kernelver" ;;
                *)  grep -q -E "^${kconf}=[ym]" "$kernel_source_dir/.config" || \
                        exclusion="BUILD_EXCLUSIVE_CONFIG: $kconf is not set in $kernelver" ;;
            esac
            [[ $exclusion ]] && break
        done
    fi

    ((${#dest_module_location[@]} == 0)) && conf_errors+=("No 'DEST_MODULE_LOCATION' directive specified.")
    [[ $package_name ]] || conf_errors+=("No 'PACKAGE_NAME' directive specified.")
    [[ $package_version ]] || conf_errors+=("No 'PACKAGE_VERSION' directive specified.")
}

report_conf() {
    local i
    fact package_name "$package_name"
    fact package_version "$package_version"
    for ((i=0; i < ${#built_module_name[@]}; i++)); do
        fact module "$i" "${built_module_name[$i]}" "${built_module_location[$i]}" \
            "${dest_module_name[$i]}" "${DEST_MODULE_LOCATION[$i]}" "${dest_module_location[$i]}" "${strip[$i]}"
    done
    fact make_command "$make_command"
    [[ $AUTOINSTALL ]] && fact autoinstall "$AUTOINSTALL"
    [[ $exclusion ]] && fact exclusion "$exclusion"
    return 0
}

# run_build_script from dkms 3.0.10: relative to the build dir, only if executable.
run_build_script() {
    local kind="$1" script="$2" run
    [[ $script ]] || return 0
    run="$dkms_tree/$module/$module_version/build/$script"
    if [[ -x ${run%% *} ]]; then
        say "running the ${kind} script: $script"
        ( cd "$dkms_tree/$module/$module_version/build/" && exec $run )
        local status=$?
        ((status == 0)) || say "warning: the ${kind} script exited with status $status (dkms ignores it)"
    else
        say "warning: the ${kind} script is not executable: $script"
    fi
}

# --- evaluate dkms.conf ---
[[ -r $src_dir/dkms.conf ]] || finish failed bad-conf "no dkms.conf at the top of the source tree"
say "dkms.conf evaluated for kernel $kernelver ($arch)"
# DKMS sources dkms.conf and keeps whatever was assigned before a syntax error, so this is
# not fatal there either; kfarm says it out loud instead of building from half a file.
if ! syntax=$(bash -n "$src_dir/dkms.conf" 2>&1); then
    syntax=${syntax//$src_dir\//}
    say "warning: $syntax"
    fact warning "dkms.conf has a bash syntax error; DKMS ignores the rest of the file from there: ${syntax//$'\n'/; }"
fi
# Twice, as dkms does: `dkms add <dir>` reads the name and version with $module unset, then
# `dkms build -m <name> -v <version>` sources the file again with them set.
# A failure in the first pass is the module's (dkms add would refuse it), not this kernel's.
conf_pass() { # conf_pass add|build
    conf_errors=()
    read_conf
    if ((${#conf_errors[@]})); then
        for e in "${conf_errors[@]}"; do say "dkms.conf: Error! $e"; done
        report_conf
        fact failed_stage "$1"
        finish failed bad-conf "${conf_errors[0]}"
    fi
}
conf_pass add
module="$package_name"
module_version="$package_version"
conf_pass build
report_conf
if [[ $package_name != "$module" || $package_version != "$module_version" ]]; then
    finish failed bad-conf "dkms.conf says $package_name/$package_version once \$module is set, $module/$module_version before: the name and version must not depend on \$module"
fi

# --- build (dkms prepare_build + actual_build) ---
[[ $exclusion ]] && { say "excluded: $exclusion"; finish excluded build-exclusive "$exclusion"; }
[[ -d $kernel_source_dir/include ]] || \
    finish failed missing-headers "no kernel headers at $kernel_source_dir in this image"

base_dir="$dkms_tree/$module/$module_version/$kernelver/$arch"
build_dir="$dkms_tree/$module/$module_version/build"
mkdir -p "$dkms_tree/$module/$module_version" || finish failed driver-error "cannot create $dkms_tree/$module/$module_version"
# dkms add: /usr/src/<m>-<v> holds the source, $dkms_tree/<m>/<v>/source links to it.
ln -sfn "$src_dir" "$source_tree/$module-$module_version" 2>/dev/null || true
ln -sfn "$source_tree/$module-$module_version" "$dkms_tree/$module/$module_version/source"
rm -rf "$build_dir"
cp -a "$dkms_tree/$module/$module_version/source/" "$build_dir" || finish failed driver-error "cannot copy the source to $build_dir"
cd "$build_dir" || finish failed driver-error "cannot enter $build_dir"

for p in "${patch_array[@]}"; do
    [[ -e $build_dir/patches/$p ]] || finish failed patch-missing "Patch $p as specified in dkms.conf cannot be found in patches/"
    say "applying patch $p"
    patch -p1 < "./patches/$p" || finish failed patch-failed "Application of patch $p failed"
done

if [[ -e $kernel_source_dir/.config ]]; then
    cc=$(sed -n 's|^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*"|\1|p' "$kernel_source_dir/.config")
    command -v "$cc" >/dev/null && export CC="$cc"
fi
export kernelver arch module module_version
run_build_script pre_build "$pre_build"

if [[ -f "$kernel_source_dir/.kernelvariables" ]]; then
    export CC=$(echo -e "show-%:\n\t@echo \$(\$*)\ninclude $kernel_source_dir/.kernelvariables" | make -f - show-CC)
else
    unset CC
fi

build_log="$build_dir/make.log"
say "cleaning build area: $clean"
( eval "$clean" ) >/dev/null 2>&1
{ echo "DKMS make.log for $module-$module_version for kernel $kernelver ($arch)"; date; } >>"$build_log"
the_make_command="${make_command/#make/make -j$parallel_jobs KERNELRELEASE=$kernelver}"
fact make_invocation "$the_make_command"
say "building: $the_make_command"
started=$(date +%s)
( eval "{ $the_make_command; }" ) 2>&1 | tee -a "$build_log"
make_status=${PIPESTATUS[0]}
fact make_exit "$make_status"
fact make_seconds "$(( $(date +%s) - started ))"
mkdir -p "$out_dir/tree/log"
if ((make_status != 0)); then
    cp -f "$build_log" "$out_dir/tree/log/make.log"
    # tee cannot append to a full build tree, so free space is asked as well as the log
    if grep -q 'No space left on device' "$build_log" || (( $(df -m --output=avail "$dkms_tree" | tail -n1) < 1 )); then
        finish failed disk-full "No space left on device: the build tree $dkms_tree holds $(df -m --output=size "$dkms_tree" | tail -n1 | tr -d ' ') MiB (half of --memory), /tmp and /var/tmp 512 MiB each; raise --memory, or make the build write less"
    fi
    finish failed make-failed "Bad return status for module build on kernel: $kernelver ($arch)"
fi

for ((count=0; count < ${#built_module_name[@]}; count++)); do
    [[ -e ${built_module_location[$count]}${built_module_name[$count]}.ko ]] && continue
    cp -f "$build_log" "$out_dir/tree/log/make.log"
    finish failed missing-module "Build of ${built_module_location[$count]}${built_module_name[$count]}.ko failed for: $kernelver ($arch): make succeeded but the module is not there; check BUILT_MODULE_NAME and BUILT_MODULE_LOCATION"
done

mkdir -p "$base_dir/log" "$base_dir/module"
mv -f "$build_log" "$base_dir/log/make.log"
for ((count=0; count < ${#built_module_name[@]}; count++)); do
    built_module="$build_dir/${built_module_location[$count]}${built_module_name[$count]}.ko"
    [[ ${strip[$count]} != no ]] && strip -g "$built_module"
    cp -f "$built_module" "$base_dir/module/${dest_module_name[$count]}.ko"
done
run_build_script post_build "$post_build"

cp -a "$base_dir/." "$out_dir/tree/" || finish failed driver-error "cannot copy the results out"
say "built ${#built_module_name[@]} module(s) for $kernelver"
finish built "" ""
