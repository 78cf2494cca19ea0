#!/usr/bin/env bash
# Starts Tally for the browser tests: a fresh database with the demo data, served by the
# debug build that `cargo leptos build` made. Run from the repository root. TALLY_E2E_DATA
# names the database's folder, so that several servers (each configured through its
# environment) can run side by side.
set -euo pipefail
data="${TALLY_E2E_DATA:-end2end/.data}"
rm -rf "$data"
mkdir -p "$data"
export DATABASE_URL="sqlite://$data/e2e.db"
export LEPTOS_SITE_ROOT="target/site"
export LEPTOS_SITE_ADDR="127.0.0.1:${TALLY_E2E_PORT:-3199}"
# The operator token the example host product (docs/integration/host-product.mjs) uses.
export TALLY_OPERATOR_TOKEN="${TALLY_OPERATOR_TOKEN:-e2e-operator-token-0123456789}"
./target/debug/tally demo > /dev/null
# A workspace of its own for the purchase tests, so buying never moves the balances that
# other tests compare.
labs="$(./target/debug/tally workspace create --name "Buyer Labs")"
./target/debug/tally user add --workspace "$labs" --email buyer@labs.test --role owner --password tally-demo > /dev/null
./target/debug/tally user add --workspace "$labs" --email viewer@labs.test --role member --password tally-demo > /dev/null
exec ./target/debug/tally serve
