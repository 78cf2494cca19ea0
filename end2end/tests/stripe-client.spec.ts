import { expect, test } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Stripe from 'stripe';
import { testModeKey } from './helpers';

// Stripe's official Node client (pinned at the version that speaks the emulator's API
// version) drives test mode end to end. Every object it gets back, and every event a
// registered receiver gets, is then type-checked by the TypeScript compiler against the
// client's own declarations, which Stripe generates from its API: a field missing, a value
// of the wrong type, or a field Stripe does not have fails the check.

test.describe.configure({ mode: 'serial' });

/** The types the declarations give each `object`. */
const TYPES: Record<string, string> = {
  customer: 'Stripe.Customer',
  payment_intent: 'Stripe.PaymentIntent',
  payment_method: 'Stripe.PaymentMethod',
  charge: 'Stripe.Charge',
  'checkout.session': 'Stripe.Checkout.Session',
  item: 'Stripe.LineItem',
  subscription: 'Stripe.Subscription',
  invoice: 'Stripe.Invoice',
  event: 'Stripe.Event',
  webhook_endpoint: 'Stripe.WebhookEndpoint',
  dispute: 'Stripe.Dispute',
  invoiceitem: 'Stripe.InvoiceItem',
};

/** A plain copy of what the client returned (without its response bookkeeping). */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (key, v) => (key === 'lastResponse' ? undefined : v)));
}

test('the official Stripe client drives test mode, and every object has its declared type', async ({ request, baseURL }) => {
  test.setTimeout(120_000);
  // Test mode answers under /_stripe/v1; the client calls /v1, so a small relay on this
  // machine puts the prefix in front.
  const target = new URL(baseURL!);
  const relay = http.createServer((req, res) => {
    const forward = http.request(
      { host: target.hostname, port: target.port, path: `/_stripe${req.url}`, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(forward);
  });
  await new Promise<void>((done) => relay.listen(0, '127.0.0.1', done));
  const stripe = new Stripe(testModeKey(), {
    host: '127.0.0.1',
    port: (relay.address() as AddressInfo).port,
    protocol: 'http',
    maxNetworkRetries: 0,
  });
  const seen: { object: string; body: unknown }[] = [];
  const keep = <T>(value: T): T => {
    const body = plain(value) as { object?: string; data?: unknown[] };
    if (body.object === 'list') {
      for (const item of body.data ?? []) {
        const object = (item as { object: string }).object;
        seen.push({ object, body: item });
      }
    } else if (body.object) {
      seen.push({ object: body.object, body });
    }
    return value;
  };

  // A receiver on this machine, registered like any other endpoint.
  const received: { body: string; signature: string }[] = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      received.push({ body, signature: String(req.headers['stripe-signature']) });
      res.end('ok');
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  const port = (receiver.address() as AddressInfo).port;
  const endpoint = keep(
    await stripe.webhookEndpoints.create({ url: `http://127.0.0.1:${port}/hook`, enabled_events: ['*'] }),
  );
  expect(endpoint.secret).toMatch(/^whsec_/);

  // A customer, and a checkout of two line items paid on the hosted page.
  const customer = keep(await stripe.customers.create({ name: 'Client Labs', email: 'client@labs.test' }));
  const session = keep(
    await stripe.checkout.sessions.create({
      mode: 'payment',
      customer: customer.id,
      success_url: `${baseURL}/billing`,
      cancel_url: `${baseURL}/billing`,
      line_items: [
        { price_data: { currency: 'usd', unit_amount: 1000, product_data: { name: 'Credits' } }, quantity: 1 },
        { price_data: { currency: 'usd', unit_amount: 500, product_data: { name: 'Bonus' } }, quantity: 2 },
      ],
      payment_intent_data: { setup_future_usage: 'off_session' },
    }),
  );
  expect(session.amount_total).toBe(2000);
  expect(session.payment_intent).toBeNull();
  const paid = await request.post(session.url!, {
    form: { card_number: '4242424242424242', expiry: '12/40', cvc: '123', name: 'Client Owner' },
    maxRedirects: 0,
  });
  expect(paid.status()).toBe(303);
  const completed = keep(await stripe.checkout.sessions.retrieve(session.id, { expand: ['payment_intent', 'line_items'] }));
  expect(completed.status).toBe('complete');
  expect((completed.payment_intent as Stripe.PaymentIntent).status).toBe('succeeded');
  expect(completed.line_items!.data.map((i) => i.amount_total)).toEqual([1000, 1000]);
  expect(completed.customer_details!.email).toBe('client@labs.test');

  // The card saved at checkout, charged off session.
  const cards = keep(await stripe.customers.listPaymentMethods(customer.id, { type: 'card' }));
  const card = cards.data[0];
  const charged = keep(
    await stripe.paymentIntents.create({
      amount: 1920,
      currency: 'usd',
      customer: customer.id,
      payment_method: card.id,
      off_session: true,
      confirm: true,
    }),
  );
  expect(charged.status).toBe('succeeded');
  keep(await stripe.charges.retrieve(charged.latest_charge as string));

  // A charge the cardholder disputes a little later.
  const disputed = keep(
    await stripe.paymentIntents.create({
      amount: 1500,
      currency: 'usd',
      customer: customer.id,
      payment_method: 'pm_card_createDispute',
      confirm: true,
    }),
  );
  expect(disputed.status).toBe('succeeded');

  // A decline and a bank that wants the cardholder: card errors, as Stripe raises them.
  for (const [method, code] of [
    ['pm_card_visa_chargeDeclined', 'card_declined'],
    ['pm_card_authenticationRequired', 'authentication_required'],
  ]) {
    const attached = keep(await stripe.paymentMethods.attach(method, { customer: customer.id }).catch((e) => e));
    const pm = attached instanceof Stripe.errors.StripeError ? method : (attached as Stripe.PaymentMethod).id;
    const error = await stripe.paymentIntents
      .create({ amount: 500, currency: 'usd', customer: customer.id, payment_method: pm, off_session: true, confirm: true })
      .then(() => null, (e) => e);
    expect(error).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(error.code).toBe(code);
    const intent = keep(error.raw.payment_intent as Stripe.PaymentIntent);
    expect(intent.status).toBe('requires_payment_method');
  }

  // Manual capture, and the same request retried under one key; another request under it
  // is refused.
  const held = keep(
    await stripe.paymentIntents.create(
      { amount: 700, currency: 'usd', customer: customer.id, payment_method: card.id, capture_method: 'manual', confirm: true },
      { idempotencyKey: 'client-held-1' },
    ),
  );
  expect(held.status).toBe('requires_capture');
  const again = await stripe.paymentIntents.create(
    { amount: 700, currency: 'usd', customer: customer.id, payment_method: card.id, capture_method: 'manual', confirm: true },
    { idempotencyKey: 'client-held-1' },
  );
  expect(again.id).toBe(held.id);
  const conflict = await stripe.paymentIntents
    .create({ amount: 701, currency: 'usd' }, { idempotencyKey: 'client-held-1' })
    .then(() => null, (e) => e);
  expect(conflict).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
  keep(await stripe.paymentIntents.capture(held.id));

  // A subscription without a card waits; the customer's default card pays the next one.
  const bare = keep(await stripe.customers.create({ name: 'No Card Labs' }));
  const waiting = keep(
    await stripe.subscriptions.create({ customer: bare.id, items: [{ price: 'price_team_month', quantity: 2 }] }),
  );
  expect(waiting.status).toBe('incomplete');
  const invoices = keep(await stripe.invoices.list({ customer: bare.id }));
  expect(invoices.data[0].status).toBe('open');
  const active = keep(
    await stripe.subscriptions.create({ customer: customer.id, items: [{ price: 'price_team_month', quantity: 1 }] }),
  );
  expect(active.status).toBe('active');
  // More seats: by default prorated into pending items that the renewal collects; with
  // `always_invoice`, invoiced at once.
  keep(await stripe.subscriptions.update(active.id, { items: [{ id: active.items.data[0].id, quantity: 3 }] }));
  const pending = keep(await stripe.invoiceItems.list({ customer: customer.id, pending: true }));
  expect(pending.data.map((item) => item.proration)).toEqual([true, true]);
  const renewed = (await stripe.rawRequest('POST', `/v1/test_helpers/subscriptions/${active.id}/advance`, {})) as unknown as { latest_invoice: string };
  const renewal = keep(await stripe.invoices.retrieve(renewed.latest_invoice));
  expect(renewal.lines.data.map((line) => line.parent?.type)).toEqual(['subscription_item_details', 'invoice_item_details', 'invoice_item_details']);
  keep(await stripe.invoiceItems.retrieve(pending.data[0].id));
  const now = keep(await stripe.subscriptions.update(active.id, { items: [{ id: active.items.data[0].id, quantity: 4 }], proration_behavior: 'always_invoice' }));
  const update = keep(await stripe.invoices.retrieve(now.latest_invoice as string));
  expect(update.billing_reason).toBe('subscription_update');

  // Pages: the client's auto-pagination walks every customer once.
  for (let i = 0; i < 3; i++) keep(await stripe.customers.create({ name: `Page ${i}` }));
  const everyone = await stripe.customers.list({ limit: 2 }).autoPagingToArray({ limit: 100 });
  expect(new Set(everyone.map((c) => c.id)).size).toBe(everyone.length);
  expect(everyone.length).toBeGreaterThanOrEqual(5);

  // Stripe's errors as the client raises them.
  const missing = await stripe.customers.retrieve('cus_nobody').then(() => null, (e) => e);
  expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
  expect(missing.code).toBe('resource_missing');
  const unknown = await stripe.rawRequest('GET', '/v1/balance_transactions').then(() => null, (e) => e);
  expect(unknown).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);

  // Every delivered event verifies with the endpoint's secret, and a tampered one does not.
  await expect.poll(() => received.filter((r) => r.body.includes('invoice.paid')).length).toBeGreaterThan(0);
  await expect.poll(() => received.filter((r) => r.body.includes('charge.dispute.created')).length).toBeGreaterThan(0);
  await expect.poll(() => received.filter((r) => r.body.includes('customer.subscription.updated')).length).toBeGreaterThan(0);
  await stripe.webhookEndpoints.del(endpoint.id);
  receiver.close();
  relay.close();
  for (const { body, signature } of received) {
    keep(stripe.webhooks.constructEvent(body, signature, endpoint.secret!));
  }
  expect(() => stripe.webhooks.constructEvent(received[0].body.replace('"livemode":false', '"livemode":true'), received[0].signature, endpoint.secret!)).toThrow();

  // The compiler checks every object against its declared type.
  const dir = path.join(__dirname, '..', '.data', 'stripe-types');
  mkdirSync(dir, { recursive: true });
  const checked = seen.filter((s) => TYPES[s.object]);
  const source = [
    "import Stripe from 'stripe';",
    // On the wire a decimal is a string; the client makes it a Decimal as it reads it.
    'type Wire<T> = T extends Stripe.Decimal ? string : T extends string | number | boolean | null | undefined ? T : T extends (infer U)[] ? Wire<U>[] : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;',
    ...checked.map((s, i) => `export const o${i}: Wire<${TYPES[s.object]}> = ${JSON.stringify(s.body)};`),
  ].join('\n');
  writeFileSync(path.join(dir, 'objects.ts'), source);
  const tsc = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsc');
  let report = '';
  try {
    execFileSync(tsc, ['--noEmit', '--strict', '--esModuleInterop', '--skipLibCheck', '--module', 'commonjs', '--target', 'es2022', path.join(dir, 'objects.ts')], { encoding: 'utf8' });
  } catch (failure) {
    report = String((failure as { stdout?: string }).stdout ?? failure);
  }
  const errors = report.split('\n').filter((line) => line.includes('error TS'));
  const kinds = new Set(checked.map((s) => s.object));
  console.log(`Stripe types: ${checked.length} objects of ${kinds.size} kinds checked, ${errors.length} errors, ${received.length} events verified`);
  expect(errors, report).toEqual([]);
});
