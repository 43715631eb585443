#!/bin/sh
# Builds dist/python3-thingsboard-gateway_<version>_all.deb: the code, the pure-Python
# libraries it needs (bundled, pinned as in setup.py), config, unit and maintainer scripts.
# Usage: debian/build-deb.sh [version]   (default: the package version, "-1")
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
VERSION=${1:-$("$PY" -c "import re;print(re.search(r'__version__ = \"([^\"]+)\"', open('$ROOT/thingsboard_gateway/__init__.py').read()).group(1))")-1}
PACKAGE=python3-thingsboard-gateway
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/$PACKAGE
LIB=$STAGE/usr/lib/thingsboard-gateway
DOC=$STAGE/usr/share/doc/$PACKAGE
mkdir -p "$STAGE/DEBIAN" "$LIB" "$STAGE/usr/bin" "$STAGE/etc/thingsboard-gateway/config" \
         "$STAGE/lib/systemd/system" "$DOC" "$ROOT/dist"

# The gateway and its example extensions.
cp -r "$ROOT/thingsboard_gateway" "$LIB/"
cp -r "$ROOT/extensions" "$LIB/"
# Pure-Python runtime libraries, pinned like setup.py (checked by tests/integration/test_deb.py).
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
    --target "$LIB" $(cat "$ROOT/debian/bundled.txt")
rm -rf "$LIB/bin"
find "$STAGE" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$LIB" -name '*.so' -delete

install -m 0755 "$ROOT/debian/thingsboard-gateway" "$STAGE/usr/bin/thingsboard-gateway"
# Updates from ThingsBoard: installs a .deb and rolls it back for the update guard (README).
install -m 0755 "$ROOT/debian/deb-update" "$LIB/deb-update"
install -m 0644 "$ROOT/debian/thingsboard-gateway.service" "$STAGE/lib/systemd/system/"
install -m 0644 "$ROOT/debian/config/tb_gateway.json" "$ROOT/debian/config/logs.json" \
    "$ROOT/config/mqtt.json" "$ROOT/config/modbus.json" "$ROOT/config/opcua.json" \
    "$ROOT/config/simulator.json" "$ROOT/config/serial.json" "$ROOT/config/socket.json" \
    "$ROOT/config/rest.json" "$ROOT/config/request.json" "$ROOT/config/ble.json" "$ROOT/config/snmp.json" \
    "$STAGE/etc/thingsboard-gateway/config/"
# The narrowest permission for the gateway_reboot RPC: polkit lets the service user reboot,
# nothing else (README, "Reboot from ThingsBoard"); .rules for polkit >= 0.106, .pkla for Buster's 0.105.
install -D -m 0644 "$ROOT/debian/polkit/50-thingsboard-gateway-reboot.rules" \
    "$STAGE/usr/share/polkit-1/rules.d/50-thingsboard-gateway-reboot.rules"
install -D -m 0644 "$ROOT/debian/polkit/thingsboard-gateway-reboot.pkla" \
    "$STAGE/var/lib/polkit-1/localauthority/10-vendor.d/thingsboard-gateway-reboot.pkla"
# Updates from ThingsBoard: the polkit permission for systemd-run, opt-in (not installed).
install -D -m 0644 "$ROOT/debian/polkit/thingsboard-gateway-updates.rules" \
    "$ROOT/debian/polkit/thingsboard-gateway-updates.pkla" -t "$DOC/examples"
install -m 0644 "$ROOT/README.md" "$ROOT/debian/copyright" "$DOC/"
mkdir -p "$STAGE/usr/share/man/man1"
gzip -9n < "$ROOT/debian/thingsboard-gateway.1" > "$STAGE/usr/share/man/man1/thingsboard-gateway.1.gz"
sed "s/@VERSION@/$VERSION/" "$ROOT/debian/changelog" | gzip -9n > "$DOC/changelog.Debian.gz"
chmod 0644 "$DOC/changelog.Debian.gz"

(cd "$STAGE" && find etc -type f | sed 's|^|/|' | sort) > "$STAGE/DEBIAN/conffiles"
install -m 0755 "$ROOT/debian/postinst" "$ROOT/debian/prerm" "$ROOT/debian/postrm" "$STAGE/DEBIAN/"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@SIZE@/$SIZE/" "$ROOT/debian/control.in" > "$STAGE/DEBIAN/control"

find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -type f ! -path '*/DEBIAN/*' ! -path '*/usr/bin/*' ! -name deb-update -exec chmod 0644 {} +
OUT="$ROOT/dist/${PACKAGE}_${VERSION}_all.deb"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT" >/dev/null
echo "$OUT"
