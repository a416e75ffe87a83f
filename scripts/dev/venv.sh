# Sourced by the test scripts: `venv DIR REQUIREMENTS` makes (or keeps) a Python venv at DIR with
# exactly REQUIREMENTS installed, remade whenever that file changes.
venv() {
  local dir=$1 req=$2
  if ! cmp -s "$req" "$dir/requirements.txt" 2>/dev/null; then
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$dir/requirements.txt"
  fi
}
