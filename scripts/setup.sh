#!/usr/bin/env bash
# Installs everything the toolkit and its tests need on a fresh Debian 12 machine, as root.
# Idempotent and quick when nothing is missing: it only calls apt-get for absent packages
# and `npm ci` when the lockfile changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages, and why each is here.
packages=(
  iproute2          # ip netns / veth / bridge: the local cloud
  mmdebstrap        # the local cloud's stock Debian 12 image, built once from Debian's archive
  apt-cacher-ng     # the local cloud's package mirror (its servers' apt goes through it)
  openssh-client    # the build machine's SSH onto the servers (ssh, scp, ssh-keygen)
  iptables          # host firewall backend + the local cloud's native firewall
  nftables          # nft backend
  ufw               # ufw backend (users who want `ufw status`)
  util-linux        # nsenter / unshare / mount namespaces
  procps psmisc     # ps / kill by PID in cleanups
  s3cmd             # the original's S3 tool: interop tests and benchmark baseline
  pdns-server pdns-backend-sqlite3 sqlite3   # PowerDNS for the local cloud's DNS
  lego pebble                         # certificates by ACME (DNS-01), and a local ACME test server
  bind9-dnsutils    # dig, for DNS tests
  curl ca-certificates openssl
  mariadb-server mariadb-client   # real-database tests of packages/database and packages/backup
  nginx php8.2-fpm php8.2-mysql   # real-stack tests of packages/webserver (servers install their own)
  php8.2-xml php8.2-mbstring php8.2-curl php8.2-zip php8.2-intl   # PHP extensions WordPress needs or recommends
  php8.2-cli        # php itself: tests check rewritten serialised data with PHP's own unserialize
  apache2           # the apache tests of packages/webserver (PHP through php-fpm, mod_proxy_fcgi)
  wordpress wordpress-theme-twentytwentythree   # the application of packages/webserver's tests
  chromium          # a real browser for the authentication server's end-to-end test (driven by playwright-core)
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: must run as root (it installs Debian packages and, for the local cloud, creates network namespaces)" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  # Daemons must not start at install time: the toolkit starts its own instances with its own config.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; own_policy=1; fi
  trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's pdns-server ships an enabled bind backend config; we run PowerDNS with our own config only.
fi

stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: ready"
