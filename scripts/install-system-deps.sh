#!/usr/bin/env bash
# Installs the system programs the tests and the demo use, from Debian's packages, when they are missing.
# Best effort: without root or apt-get the tests fall back (amqtt broker) or skip with a visible reason.
set -u
want=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || want+=(mosquitto)
command -v chromium >/dev/null 2>&1 || want+=(chromium)
command -v chromedriver >/dev/null 2>&1 || want+=(chromium-driver)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: cannot install ${want[*]} (needs root and apt-get); tests fall back or skip where they are missing" >&2
  exit 0
fi
echo "installing ${want[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null 2>&1 \
  || echo "note: apt-get install ${want[*]} failed; tests fall back or skip where they are missing" >&2
exit 0
