"""Checks a notification from Tally: `Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256
of "<t>.<raw body>" with the endpoint's signing secret>`, at most five minutes old."""
import hashlib
import hmac
import os
import sys
import time


def verify(secret, header, raw_body, now=None):
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - t) > 300:
        return False
    expected = hmac.new(secret.encode(), f"{t}.{raw_body}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


if __name__ == "__main__":
    ok = verify(os.environ["TALLY_SECRET"], os.environ["TALLY_SIGNATURE"], os.environ["TALLY_BODY"])
    print("verified" if ok else "refused")
    sys.exit(0 if ok else 1)
