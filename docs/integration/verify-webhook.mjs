// Checks a notification from Tally: `Tally-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256
// of "<t>.<raw body>" with the endpoint's signing secret>`, at most five minutes old.
import { createHmac, timingSafeEqual } from 'node:crypto';

export function verify(secret, header, rawBody, nowSeconds = Math.floor(Date.now() / 1000)) {
  const parts = Object.fromEntries(String(header).split(',').map((p) => p.split('=', 2)));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || !parts.v1 || Math.abs(nowSeconds - t) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(parts.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

// As a script: TALLY_SECRET, TALLY_SIGNATURE and TALLY_BODY in the environment; exits 0 when
// the notification is Tally's.
if (import.meta.url === `file://${process.argv[1]}`) {
  const ok = verify(process.env.TALLY_SECRET, process.env.TALLY_SIGNATURE, process.env.TALLY_BODY);
  console.log(ok ? 'verified' : 'refused');
  process.exit(ok ? 0 : 1);
}
