import { expect, test } from './fixtures';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

// The example host product hands its people over to Tally: a person signed in there follows
// "Billing & credits", lands on Tally's Billing page signed in with the role the product maps
// them to, and follows "Back to …" home. The link works once.

// One host product for the file's tests, so they run in one worker, one after another.
test.describe.configure({ mode: 'serial' });

const HOST_PORT = 3196;
const home = `http://127.0.0.1:${HOST_PORT}/`;
let host: ChildProcess;

test.beforeAll(async ({ baseURL }) => {
  host = spawn('node', [path.join(__dirname, '..', '..', 'docs', 'integration', 'host-product.mjs')], {
    env: {
      ...process.env,
      TALLY_URL: baseURL,
      TALLY_OPERATOR_TOKEN: process.env.TALLY_OPERATOR_TOKEN ?? 'e2e-operator-token-0123456789',
      TALLY_WORKSPACE_ID: 'ws_acmeai0demo0000001',
      HOST_PRODUCT_PORT: String(HOST_PORT),
    },
    stdio: 'ignore',
  });
  await expect.poll(async () => (await fetch(home).then((r) => r.status, () => 0)), { timeout: 10_000 }).toBe(200);
});

test.afterAll(() => {
  host.kill();
});

test('a person of the host product reaches Billing with their role and goes back home', async ({ page }) => {
  await page.goto(home);
  await page.getByRole('link', { name: 'Sign in as Ada (finance)' }).click();
  await page.getByRole('link', { name: 'Billing & credits' }).click();

  await expect(page).toHaveURL(/\/billing$/);
  await expect(page.getByText('ada@acme.test')).toBeVisible();
  await expect(page.getByText('Billing admin')).toBeVisible();
  await expect(page.locator('#buy-credits')).toBeVisible();

  const link = page.getByTestId('back-to');
  await expect(link).toHaveText('← Back to 127.0.0.1');
  await link.click();
  await expect(page).toHaveURL(home);
  await expect(page.getByText('Signed in as Ada')).toBeVisible();
});

test('an engineer of the host product gets read-only Billing', async ({ page }) => {
  await page.goto(home);
  await page.getByRole('link', { name: 'Sign in as Bob (engineer)' }).click();
  await page.getByRole('link', { name: 'Billing & credits' }).click();
  await expect(page).toHaveURL(/\/billing$/);
  await expect(page.getByTestId('read-only-note')).toBeVisible();
});
