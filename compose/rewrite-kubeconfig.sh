#!/bin/sh
# Copy a kubeconfig with its cluster's server URL replaced: rewrite-kubeconfig.sh SOURCE TARGET SERVER_URL
#
# Why: k3s writes its admin kubeconfig for use on its own host (server https://127.0.0.1:6443); the Airflow
# containers reach it as https://k3s:6443 (the certificate names "k3s" because k3s runs with --tls-san k3s).
# Only the server line changes; credentials, CA and contexts are kept byte for byte. Running it again on its
# own output gives the same file. TARGET is replaced atomically (a reader never sees half a file), mode 644.
# POSIX sh and sed only: it runs in the rancher/k3s image, whose userland is busybox.
set -eu

if [ "$#" -ne 3 ]; then
    echo "usage: $0 SOURCE TARGET SERVER_URL (e.g. $0 /output/kubeconfig.yaml /output/config https://k3s:6443)" >&2
    exit 2
fi
source=$1 target=$2 server=$3

case "$server" in
    *'|'* | *'&'* | *'\'* | *' '*)
        echo "error: SERVER_URL '$server' contains a character a URL here cannot have (| & \\ or space)" >&2
        exit 2 ;;
    https://?* | http://?*) ;;
    *)
        echo "error: SERVER_URL '$server' must start with https:// (or http://), e.g. https://k3s:6443" >&2
        exit 2 ;;
esac
if [ ! -r "$source" ]; then
    echo "error: kubeconfig SOURCE '$source' does not exist or is not readable" >&2
    exit 1
fi
pattern='^[[:space:]]*server:[[:space:]]'
count=$(grep -c "$pattern" "$source" || true)
if [ "$count" -ne 1 ]; then
    echo "error: expected one cluster 'server:' line in '$source', found $count; this script rewrites single-cluster kubeconfigs such as the one k3s writes" >&2
    exit 1
fi

tmp="$target.tmp.$$"
trap 'rm -f "$tmp"' EXIT
sed -e "s|^\([[:space:]]*server:\)[[:space:]].*\$|\1 $server|" "$source" >"$tmp"
chmod 644 "$tmp"
mv -f "$tmp" "$target"
trap - EXIT
echo "wrote $target (server $server)"
