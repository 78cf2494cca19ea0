import { expect, type APIRequestContext, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import path from 'node:path';

export const PASSWORD = 'tally-demo';

/** Signs in through the form, as a person would, and waits for the hydrated Billing page. */
export async function signIn(page: Page, email: string) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/billing$/);
  await waitForHydration(page);
}

/** Marks the page, so that a test can tell later that it was never loaded again. */
export async function markPage(page: Page) {
  await page.evaluate(() => { (window as unknown as { tallyMarked: boolean }).tallyMarked = true; });
}

/** Whether the page marked by `markPage` is still the one shown (nothing loaded it again). */
export async function stillMarked(page: Page) {
  return page.evaluate(() => (window as unknown as { tallyMarked?: boolean }).tallyMarked === true);
}

/** The page is live once the wasm bundle has hydrated it. */
export async function waitForHydration(page: Page) {
  await expect(page.locator('#app')).toHaveAttribute('data-hydrated', 'true');
}

export interface CreditsBody {
  workspace_id: string;
  balance: number;
  transactions: { id: string; balance_after: number; amount: number }[];
}

/** The API's view of the signed-in person's current workspace, with the page's own cookie. */
export async function apiCredits(page: Page, limit = 5): Promise<CreditsBody> {
  const response = await page.request.get(`/api/billing/credits?limit=${limit}`);
  expect(response.status()).toBe(200);
  return (await response.json()) as CreditsBody;
}

/** Credits as the page shows them: 13,033. */
export function shown(n: number): string {
  return n.toLocaleString('en-US');
}

/** The browser tests' database (end2end/serve.sh makes it), read as an operator could. */
const database = path.join(__dirname, '..', '.data', 'e2e.db');

function sql(query: string): string[] {
  return execFileSync('sqlite3', [database, query], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.length > 0);
}

/** Waits until /webhooks/stripe has applied every event test mode has sent so far. */
export async function waitForStripeEvents() {
  await expect
    .poll(
      () =>
        Number(
          sql(
            "SELECT COUNT(*) FROM stripe_emulator_objects WHERE kind = 'event' AND id NOT IN (SELECT id FROM stripe_events)",
          )[0],
        ),
      { message: 'every test-mode event applied' },
    )
    .toBe(0);
}

/**
 * Delivers every test-mode event that names the purchase to /webhooks/stripe again, freshly
 * signed, as Stripe does when it retries; returns how many were sent.
 */
export async function redeliverEvents(request: APIRequestContext, purchaseId: string): Promise<number> {
  expect(purchaseId).toMatch(/^pur_[a-z0-9]+$/);
  const secret = sql("SELECT value FROM test_mode_secrets WHERE name = 'webhook_secret'")[0];
  const events = sql(
    `SELECT body FROM stripe_emulator_objects WHERE kind = 'event' AND body LIKE '%${purchaseId}%' ORDER BY created_at, id`,
  );
  for (const body of events) {
    const t = Math.floor(Date.now() / 1000);
    const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    const answer = await request.post('/webhooks/stripe', {
      headers: { 'stripe-signature': `t=${t},v1=${v1}`, 'content-type': 'application/json' },
      data: body,
    });
    expect(answer.status()).toBe(200);
  }
  return events.length;
}

/** Test mode's API key, read from the database as an operator could (never served). */
export function testModeKey(): string {
  return sql("SELECT value FROM test_mode_secrets WHERE name = 'api_key'")[0];
}
