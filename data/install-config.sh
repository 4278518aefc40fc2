#!/bin/sh
# meson install script (data/meson.build):
#   install-config.sh EXAMPLE CONFDIR SYSUSERS_FILE TMPFILES_FILE
# Installs EXAMPLE as CONFDIR/host.conf unless that file exists (an operator's
# config is never overwritten; the new example stays in <datadir>/zoomrtms/).
# Installing for real (no DESTDIR) as root on a systemd machine, also runs
# systemd-sysusers and systemd-tmpfiles for zoomrtms.conf and daemon-reload,
# so `systemctl enable --now zoomrtms-host` works next. Packagers (DESTDIR)
# run those from their maintainer scripts instead.
set -eu
example=$1 confdir=$2 sysusers=$3 tmpfiles=$4
destdir=${DESTDIR:-}
conf="$destdir$confdir/host.conf"
install -d -m 0755 "$destdir$confdir"
real_root=no
if [ -z "$destdir" ] && [ "$(id -u)" -eq 0 ] && [ -d /run/systemd/system ]; then
  real_root=yes
  systemd-sysusers "$sysusers"
  systemd-tmpfiles --create "$tmpfiles"
fi
if [ -e "$conf" ]; then
  echo "zoomrtms: keeping $conf (the example of this version: $example)"
else
  # no secret in it, but it may get one ([http] api-token): root-owned,
  # readable by the service's group when that exists
  if [ "$real_root" = yes ] && getent group zoomrtms >/dev/null; then
    install -m 0640 -g zoomrtms "$example" "$conf"
  else
    install -m 0644 "$example" "$conf"
  fi
  echo "zoomrtms: installed $conf"
fi
if [ "$real_root" = yes ]; then
  systemctl daemon-reload || true
fi
