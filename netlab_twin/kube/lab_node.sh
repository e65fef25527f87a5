#!/bin/sh
# The Kubernetes twin's helper in a local lab node (netlab_twin/kube/lab.py runs it with sh -c): $1 a verb,
# $2 the runtime owner's folder (/run/netlab-kt/OWNER). A process of the runtime is found by its marker
# NETLAB_KT=OWNER/POD_UID/(main|exec-N) in /proc/PID/environ (grep -z reads NUL-separated entries): that also
# finds what a pod's command daemonised (netserver), which leaves the process group and the pid file behind.
#   start KEY ARGV...        run ARGV (the container's main process, as the CRI's StartContainer): its pid on
#                            stdout and in KEY.pid, then wait; KEY.rc and the exit code are its exit code
#   rc KEY                   KEY.rc
#   stop KEY MARKER TENTHS   SIGTERM to every marked process, SIGKILL after TENTHS tenths of a second
#   exec MARK CMD ARGV...    print MARK, then exec ARGV; CMD (the user's argv[0]) not in PATH: exit 127, no MARK
#   record NAME / unrecord NAME   the Services this owner made (netlab-datapath service-add)
#   owners                   the owners with a process or a folder in the node
#   clean OWNER              ($2 = /run/netlab-kt) an owner's processes, Services and folder, all gone
set -u
verb=$1 dir=$2
shift 2
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
marked() { grep -lzsx "NETLAB_KT=$1.*" /proc/[0-9]*/environ | cut -d/ -f3; }
stop_marked() {
  pids=$(marked "$1")
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null
  i=0
  while [ "$i" -lt "$2" ]; do
    sleep 0.1
    pids=$(marked "$1")
    [ -n "$pids" ] || return 0
    i=$((i + 1))
  done
  for _ in 1 2 3; do
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
    sleep 0.1
    pids=$(marked "$1")
  done
}
case $verb in
  start)
    key=$1
    shift
    mkdir -p "$dir"
    rm -f "$dir/$key.pid" "$dir/$key.rc"
    "$@" </dev/null >>"$dir/$key.log" 2>&1 &
    echo $! >"$dir/$key.pid"
    echo $!
    wait $!
    rc=$?
    echo "$rc" >"$dir/$key.rc"
    exit "$rc"
    ;;
  rc)
    cat "$dir/$1.rc" 2>/dev/null
    ;;
  stop)
    stop_marked "$2" "$3"
    rm -f "$dir/$1.pid" "$dir/$1.rc"
    ;;
  exec)
    mark=$1 cmd=$2
    shift 2
    if ! command -v "$cmd" >/dev/null 2>&1; then
      # shellcheck disable=SC2016
      printf 'exec: "%s": executable file not found in $PATH' "$cmd" >&2
      exit 127
    fi
    printf '%s\n' "$mark"
    exec "$@"
    ;;
  record)
    mkdir -p "$dir"
    grep -qsx "$1" "$dir/services" || echo "$1" >>"$dir/services"
    ;;
  unrecord)
    if [ -f "$dir/services" ]; then
      grep -vx "$1" "$dir/services" >"$dir/services.new" || true
      mv "$dir/services.new" "$dir/services"
    fi
    ;;
  owners)
    { grep -hzso "^NETLAB_KT=[0-9]*-[0-9a-f]*/" /proc/[0-9]*/environ | tr '\0' '\n' | cut -d= -f2 | cut -d/ -f1
      ls "$dir" 2>/dev/null; } | sort -u
    ;;
  clean)
    stop_marked "$1/" 0
    if [ -f "$dir/$1/services" ]; then
      while read -r name; do
        /usr/local/sbin/netlab-datapath service-del "$name" >/dev/null 2>&1 || true
      done <"$dir/$1/services"
    fi
    rm -rf "${dir:?}/$1"
    ;;
esac
