import { expect, test } from './fixtures';
import { apiCredits, signIn, waitForHydration } from './helpers';

// Pages of "another site", served by the browser itself (nothing leaves the machine).
const EVIL = 'http://evil.test';

test('a form on another site cannot sign the owner out or act for them', async ({ page }) => {
  await signIn(page, 'owner@acme.test');
  const site = new URL(page.url()).origin;
  await page.route(`${EVIL}/**`, (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: `<!DOCTYPE html><title>Win a prize</title>
        <form id="f" method="post" action="${site}/logout"></form>
        <script>document.getElementById('f').submit()</script>`,
    }),
  );
  await page.goto(`${EVIL}/prize`);
  await expect(page.getByRole('heading', { name: 'That request came from another site' })).toBeVisible();

  // Still signed in: Billing opens, not the sign-in page.
  await page.goto('/billing');
  await expect(page).toHaveURL(/\/billing$/);
  await waitForHydration(page);

  // With the session cookie (a sibling subdomain would send it), a cross-site request that
  // changes state is refused, and nothing is bought.
  const before = await apiCredits(page);
  const forged = await page.request.post('/api/start_checkout', {
    form: { pack_id: 'pack_team' },
    headers: { Origin: 'https://evil.example' },
  });
  expect(forged.status()).toBe(403);
  expect((await forged.json()).error.code).toBe('forbidden');
  const same = await page.request.post('/api/load_purchases', { headers: { Origin: site } });
  const purchases = (await same.json()).purchases as { status: string }[];
  expect(purchases.filter((p) => p.status === 'open')).toHaveLength(0);
  expect((await apiCredits(page)).balance).toBe(before.balance);
});

test('the Auto-reload card shows the saved settings after a reload, and the API reports the same', async ({ page }) => {
  await signIn(page, 'billing@acme.test');
  const card = page.locator('#auto-reload');
  await card.getByLabel('When the balance falls below (credits)').fill('1234');
  await card.getByLabel('Top up to (credits)').fill('15678');
  await card.getByLabel('Monthly cap (USD)').fill('42.50');
  await card.getByTestId('save-auto-reload').click();
  await expect(card.getByTestId('auto-reload-saved')).toContainText('Auto-reload is off');

  await page.reload();
  await waitForHydration(page);
  const reloaded = page.locator('#auto-reload');
  await expect(reloaded.getByLabel('When the balance falls below (credits)')).toHaveValue('1234');
  await expect(reloaded.getByLabel('Top up to (credits)')).toHaveValue('15678');
  await expect(reloaded.getByLabel('Monthly cap (USD)')).toHaveValue('42.50');
  await expect(reloaded.getByTestId('auto-reload-state')).toHaveText('Off');
  await expect(reloaded.getByTestId('auto-reload-spend')).toContainText('of $42.50 this month');

  const response = await page.request.get('/api/billing/credits');
  const api = (await response.json()).auto_reload;
  expect(api).toMatchObject({
    enabled: false,
    threshold: 1234,
    target_balance: 15678,
    monthly_cap: { amount: 4250, currency: 'usd' },
    paused: false,
  });
});
