#!/bin/sh
# Builds the two Python 3.7 environments `make test` runs the gateway in:
#   .venv37         only the package and its runtime dependencies, as `pip install .` gives them
#   .venv-buster37  only what the .deb's Depends/Recommends install on Raspbian Buster
#                   (debian/buster-depends.txt), for the packaged gateway
# Where no Python 3.7 interpreter is found it prints one line and exits 0: those parts are skipped.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

find_python37() {
    for candidate in "${PYTHON37:-}" "$(pyenv root 2>/dev/null)"/versions/3.7*/bin/python3.7 \
                     "$HOME"/.pyenv/versions/3.7*/bin/python3.7 /usr/local/bin/python3.7 /usr/bin/python3.7; do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        if "$candidate" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 7))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

PY37=$(find_python37) || {
    echo "python 3.7: no interpreter found (pyenv, /usr/bin, /usr/local/bin; or set PYTHON37): skipping the 3.7 runs"
    rm -rf .venv37 .venv-buster37
    exit 0
}
PIP_FLAGS="--quiet --disable-pip-version-check"

# Runtime environment: created once per setup.py, the package itself reinstalled every run.
STAMP=.venv37/.runtime-deps
if [ ! -f "$STAMP" ] || [ setup.py -nt "$STAMP" ]; then
    rm -rf .venv37
    "$PY37" -m venv .venv37
    .venv37/bin/pip install $PIP_FLAGS . 2>&1 | grep -v "^WARNING: Location" || true
    touch "$STAMP"
fi
.venv37/bin/pip install $PIP_FLAGS --no-deps --force-reinstall . 2>&1 | grep -v "^WARNING: Location" || true
rm -rf build
.venv37/bin/thingsboard-gateway version >/dev/null

# Buster-like environment: no project code at all; the packaged gateway brings its own.
STAMP=.venv-buster37/.buster-deps
if [ ! -f "$STAMP" ] || [ debian/buster-depends.txt -nt "$STAMP" ]; then
    rm -rf .venv-buster37
    "$PY37" -m venv .venv-buster37
    .venv-buster37/bin/pip install $PIP_FLAGS --no-deps -r debian/buster-depends.txt 2>&1 \
        | grep -v "^WARNING: Location" || true
    touch "$STAMP"
fi
echo "python 3.7: $("$PY37" -c 'import sys; print(sys.version.split()[0])') at $PY37 (.venv37, .venv-buster37)"
