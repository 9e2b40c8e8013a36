# Sourced by scripts/test and scripts/demo: make .venv (Python >= 3.11) and install the project with its test extras.
# Reinstalls only when pyproject.toml changed since the last install, so repeated runs start at once.

cd "$(dirname "${BASH_SOURCE[0]}")/.."

pick_python() {
    local candidate
    for candidate in python3.11 python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ]; then
    if ! PYTHON="$(pick_python)"; then
        echo "error: Python >= 3.11 is required (tried python3.11, python3.12, python3.13, python3); install one and retry" >&2
        exit 1
    fi
    echo "creating .venv with $PYTHON ($("$PYTHON" --version 2>&1))" >&2
    "$PYTHON" -m venv .venv
fi

stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "installing the project into .venv (pip install -e '.[test]')" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[test]'
    rm -f .venv/.installed-*
    touch "$stamp"
fi
