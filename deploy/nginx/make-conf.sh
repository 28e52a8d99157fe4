#!/usr/bin/env bash
# Writes the nginx configuration for Reel replicas into DIR (docs/deploy.md):
#   DIR/reel-site.conf  the part for nginx's http context (the system's nginx: copy it to
#                       /etc/nginx/conf.d/reel.conf)
#   DIR/nginx.conf      a whole configuration around it, for `nginx -p DIR -c nginx.conf`, by
#                       any user (DIR/logs and DIR/tmp are created)
# Usage: make-conf.sh DIR [--listen ADDR:PORT] [--max-body-mb N] [--workers N|auto] REPLICA...
#   REPLICA: HOST:PORT of a `reel serve` (at least one); defaults: --listen 127.0.0.1:8080,
#   --max-body-mb 64 (set it to the replicas' --max-body-mb), --workers auto.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
die() {
  echo "make-conf.sh: $*" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
dir=$1
shift
listen=127.0.0.1:8080 max_body_mb=64 workers=auto replicas=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --listen) listen=${2:?--listen needs ADDR:PORT}; shift 2 ;;
    --max-body-mb) max_body_mb=${2:?--max-body-mb needs N}; shift 2 ;;
    --workers) workers=${2:?--workers needs N or auto}; shift 2 ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) replicas+=("$1"); shift ;;
  esac
done

# What goes into the configuration is checked, so no argument can add directives to it.
addr='^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$'
[[ $listen =~ $addr || $listen =~ ^[0-9]{1,5}$ ]] || die "--listen: not ADDR:PORT or PORT: $listen"
[[ $max_body_mb =~ ^[1-9][0-9]{0,3}$ ]] || die "--max-body-mb: not 1 to 9999: $max_body_mb"
[[ $workers =~ ^([1-9][0-9]{0,2}|auto)$ ]] || die "--workers: not a count or auto: $workers"
[[ ${#replicas[@]} -gt 0 ]] || die "no replica (HOST:PORT) given"
servers=""
for r in "${replicas[@]}"; do
  [[ $r =~ $addr ]] || die "replica: not HOST:PORT: $r"
  # One failure marks a replica down for 10 s: on loopback a refused connection is certain.
  servers+="    server $r max_fails=1 fail_timeout=10s;"$'\n'
done
servers=${servers%$'\n'}

mkdir -p "$dir/logs" "$dir/tmp"
fill() {  # fill TEMPLATE OUT
  local text
  text=$(<"$1")
  text=${text//@SERVERS@/$servers}
  text=${text//@LISTEN@/$listen}
  text=${text//@MAX_BODY_MB@/$max_body_mb}
  text=${text//@WORKERS@/$workers}
  printf '%s\n' "$text" > "$2.tmp"
  mv "$2.tmp" "$2"
}
fill "$here/reel-site.conf.in" "$dir/reel-site.conf"
fill "$here/nginx.conf.in" "$dir/nginx.conf"
