#!/bin/sh
# Builds a `busybox` base image offline, from the host's static busybox (Debian: busybox-static), and imports it.
#
#   contrib/mkimage-busybox.sh [IMAGE]          # default: busybox:latest
#
# The image holds /bin/busybox with a symlink per applet, minimal /etc/passwd and /etc/group (root, daemon, nobody,
# www-data ...), /tmp, /root and /home, and runs `sh` by default — the shape of Docker Hub's busybox image.
# The importing client is $BERTH (default: berth); set DOCKER_HOST/BERTH_HOST to choose the daemon. Any Docker-compatible
# client works (BERTH=docker).
set -eu
image=${1:-busybox:latest}
client=${BERTH:-berth}
busybox=${BUSYBOX:-}
if [ -z "$busybox" ]; then
    for candidate in /bin/busybox /usr/bin/busybox; do
        [ -x "$candidate" ] && busybox=$candidate && break
    done
fi
if [ -z "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1; then
    echo "mkimage-busybox: no busybox found; install Debian's busybox-static (apt-get install busybox-static)" >&2
    exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
    echo "mkimage-busybox: $busybox is dynamically linked; install busybox-static" >&2
    exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp" "$root/home" "$root/var/spool/mail" "$root/var/www" \
    "$root/proc" "$root/sys" "$root/dev" "$root/usr/bin" "$root/usr/sbin" "$root/sbin"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
GROUP
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . | "$client" import -c 'CMD ["sh"]' - "$image"
