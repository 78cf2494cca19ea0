"""Charges an AI action through Tally's credit gate, and refunds it when the provider work
fails. Python 3.8+, standard library only.

    TALLY_URL=http://127.0.0.1:3000 TALLY_API_KEY=tly_... python3 docs/integration/gate.py
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE = os.environ["TALLY_URL"]
KEY = os.environ["TALLY_API_KEY"]


def call(path, body=None):
    request = urllib.request.Request(
        BASE + path,
        data=json.dumps(body or {}).encode(),
        headers={"Authorization": "Bearer " + KEY, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


status, charge = call(
    "/api/v1/usage",
    {"idempotency_key": "video-%d" % time.time_ns(), "action": "video.generate", "credits": 40},
)
if status != 200:
    print("refused:", status, charge["error"]["message"])
    sys.exit(2 if status == 402 else 1)
provider_failed = True  # ... the provider work runs here, and fails ...
if provider_failed:
    status, refund = call("/api/v1/usage/%s/refund" % charge["transaction_id"])
    print(json.dumps({"charged": charge["charged"], "refunded": refund["refunded"], "balance": refund["balance"]}))
    sys.exit(0 if status == 200 else 1)
