#!/usr/bin/env bash
# Installs the build tools Tally needs, each pinned, skipping what is already there.
# Sourced by .ci/serve and .ci/test.
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"
CARGO_LEPTOS_VERSION="0.3.10"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "Adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION\$"; then
  say "Installing cargo-leptos $CARGO_LEPTOS_VERSION (takes a while, once)"
  cargo install --locked cargo-leptos --version "$CARGO_LEPTOS_VERSION"
fi

# cargo-leptos runs the wasm-bindgen found on PATH without checking its version, so it must
# match the wasm-bindgen crate in Cargo.lock exactly.
WASM_BINDGEN_VERSION="$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')"
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  say "Installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

# Node packages: Playwright, and binaryen's wasm-opt for release builds. Never a browser
# download: the tests use the system Chromium.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -x node_modules/.bin/playwright ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "Installing node packages"
  npm ci --no-audit --no-fund
fi
# The API reference page's viewer, served with the site's files (cargo-leptos copies public/).
if [ ! -f public/vendor/swagger-ui-bundle.js ] || [ node_modules/swagger-ui-dist/swagger-ui-bundle.js -nt public/vendor/swagger-ui-bundle.js ]; then
  mkdir -p public/vendor
  cp node_modules/swagger-ui-dist/{swagger-ui-bundle.js,swagger-ui.css,LICENSE} public/vendor/
fi

# localstripe, an independent fake Stripe for the gateway's contract tests (tests/contract.rs).
LOCALSTRIPE_VERSION="1.15.10"
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('localstripe') != '$LOCALSTRIPE_VERSION')" 2>/dev/null; then
  say "Installing localstripe $LOCALSTRIPE_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "localstripe==$LOCALSTRIPE_VERSION"
fi

# Schemathesis, which fuzzes the API against its OpenAPI description (.ci/schemathesis).
SCHEMATHESIS_VERSION="4.32.5"
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$SCHEMATHESIS_VERSION')" 2>/dev/null; then
  say "Installing schemathesis $SCHEMATHESIS_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "schemathesis==$SCHEMATHESIS_VERSION"
fi

# The environment cargo-leptos gives its builds; setting the same for plain cargo commands
# keeps them from rebuilding the Leptos crates.
export LEPTOS_OUTPUT_NAME=tally
export LEPTOS_SITE_ROOT=target/site
export LEPTOS_SITE_PKG_DIR=pkg
export LEPTOS_RELOAD_PORT=3001
export LEPTOS_HASH_FILES=true
export LEPTOS_HASH_FILE_NAME=hash.txt
