// Holds credits for an AI action whose cost is known only afterwards, then settles the
// actual cost (or releases the hold when the provider work fails). Node 18+, no packages.
//   TALLY_URL=http://127.0.0.1:3000 TALLY_API_KEY=tly_… node docs/integration/gate.mjs
const base = process.env.TALLY_URL;
const headers = { authorization: `Bearer ${process.env.TALLY_API_KEY}`, 'content-type': 'application/json' };

async function call(path, body) {
  const answer = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body ?? {}) });
  return { status: answer.status, body: await answer.json() };
}

const hold = await call('/api/v1/usage/reservations', {
  idempotency_key: `chat-${Date.now()}`,
  action: 'chat.completion',
  credits: 100,
  hold_seconds: 300,
});
if (hold.status !== 201) {
  console.error('not held:', hold.status, hold.body.error?.message);
  process.exit(hold.status === 402 ? 2 : 1);
}
let workFailed = false;
// … the provider work runs here; its cost turns out to be 60 credits …
const end = workFailed
  ? await call(`/api/v1/usage/reservations/${hold.body.reservation_id}/release`)
  : await call(`/api/v1/usage/reservations/${hold.body.reservation_id}/settle`, { credits: 60 });
console.log(JSON.stringify({ held: hold.body.held, ...end.body }));
process.exit(end.status === 200 ? 0 : 1);
