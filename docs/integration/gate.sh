#!/usr/bin/env bash
# Charges an AI action through Tally's credit gate with curl, before the provider work runs.
#   TALLY_URL=http://127.0.0.1:3000 TALLY_API_KEY=tly_… bash docs/integration/gate.sh
set -euo pipefail
key="gen-$(date +%s)-$RANDOM"   # one key per action: a retry with it is charged once
answer=$(curl -sS -w '\n%{http_code}' "$TALLY_URL/api/v1/usage" \
  -H "Authorization: Bearer $TALLY_API_KEY" -H 'Content-Type: application/json' \
  -d "{\"idempotency_key\": \"$key\", \"action\": \"image.generate\", \"credits\": 25, \"actor\": \"member@acme.test\"}")
status=$(tail -n 1 <<< "$answer")
body=$(head -n -1 <<< "$answer")
case "$status" in
  200) echo "charged: $body" ;;                       # run the provider work now
  402) echo "not enough credits: $body"; exit 2 ;;    # show error.message, offer error.recovery
  *) echo "refused ($status): $body"; exit 1 ;;
esac
