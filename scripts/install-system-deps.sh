#!/usr/bin/env bash
# Installs the system programs the tests and the demo use, from Debian's packages, when they are missing.
# Best effort: without root or apt-get the tests fall back (amqtt broker) or skip with a visible reason.
set -u
want=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || want+=(mosquitto)
command -v chromium >/dev/null 2>&1 || want+=(chromium)
command -v chromedriver >/dev/null 2>&1 || want+=(chromium-driver)
# A real RTSP server for the stream tests: GStreamer's, driven from the system python3 (python3-gi); x264enc
# (plugins-ugly) encodes the generated H.264 test streams.
dpkg -s python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
  gstreamer1.0-plugins-ugly >/dev/null 2>&1 \
  || want+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
            gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-tools)
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
