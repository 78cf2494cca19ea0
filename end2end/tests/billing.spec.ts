import { expect, test } from './fixtures';
import { apiCredits, signIn, shown, waitForHydration, PASSWORD } from './helpers';

test('an owner sees the balance, buckets and recent history of the workspace', async ({ page }) => {
  await signIn(page, 'owner@acme.test');
  const api = await apiCredits(page);
  await expect(page.getByRole('heading', { name: 'Billing', level: 1 })).toBeVisible();
  await expect(page.getByTestId('balance')).toHaveText(shown(api.balance));
  const rows = page.getByTestId('transactions').locator('tbody tr');
  await expect(rows).toHaveCount(5);
  await expect(rows.first()).toHaveAttribute('data-id', api.transactions[0].id);
  await expect(rows.first().locator('.balance-after')).toHaveText(shown(api.transactions[0].balance_after));
  await expect(page.locator('.bucket.expiring').first()).toContainText('expire on');
  await expect(page.getByTestId('read-only-note')).toHaveCount(0);
  if (process.env.TALLY_SCREENSHOT) {
    await page.setViewportSize({ width: 1200, height: 900 });
    await page.screenshot({ path: process.env.TALLY_SCREENSHOT, fullPage: true });
  }
});

test('a member sees the same figures read-only, without buy or manage controls', async ({ page }) => {
  await signIn(page, 'member@acme.test');
  const api = await apiCredits(page);
  await expect(page.getByTestId('balance')).toHaveText(shown(api.balance));
  await expect(page.getByTestId('read-only-note')).toContainText('can buy credits');
  await expect(page.getByRole('button', { name: /buy|purchase|auto-reload/i })).toHaveCount(0);
  await expect(page.getByRole('link', { name: /buy|purchase|auto-reload/i })).toHaveCount(0);
});

test('a guest is refused with a clear 403 page', async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('Email').fill('guest@acme.test');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { name: "You don't have access to Billing" })).toBeVisible();
  await expect(page.getByTestId('balance')).toHaveCount(0);
  const response = await page.goto('/billing');
  expect(response?.status()).toBe(403);
  const api = await page.request.get('/api/billing/credits');
  expect(api.status()).toBe(403);
});

test('a person in two workspaces never sees one workspace\'s figures in the other', async ({ page }) => {
  await signIn(page, 'owner@acme.test');
  const acme = await apiCredits(page, 100);
  await expect(page.getByTestId('balance')).toHaveText(shown(acme.balance));

  await page.getByLabel('Workspace').selectOption({ label: 'Acme Research' });
  await page.getByRole('button', { name: 'Switch' }).click();
  await waitForHydration(page);
  const research = await apiCredits(page, 100);
  expect(research.workspace_id).not.toBe(acme.workspace_id);
  expect(research.balance).not.toBe(acme.balance);
  await expect(page.getByTestId('balance')).toHaveText(shown(research.balance));
  await expect(page.getByTestId('low-balance')).toBeVisible();
  const acmeIds = new Set(acme.transactions.map((t) => t.id));
  const shownIds = await page.getByTestId('transactions').locator('tbody tr').evaluateAll((rows) =>
    rows.map((row) => row.getAttribute('data-id')),
  );
  expect(shownIds.length).toBeGreaterThan(0);
  for (const id of shownIds) expect(acmeIds.has(id ?? '')).toBe(false);

  await page.getByLabel('Workspace').selectOption({ label: 'Acme AI' });
  await page.getByRole('button', { name: 'Switch' }).click();
  await expect(page.getByTestId('balance')).toHaveText(shown(acme.balance));
});

test('a wrong password is refused with a message', async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('Email').fill('owner@acme.test');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText("don't match");
  await expect(page).toHaveURL(/\/login/);
});

test('the full history filters by type and pages back in time', async ({ page }) => {
  await signIn(page, 'admin@acme.test');
  await page.getByRole('link', { name: 'View full history' }).click();
  await expect(page.getByRole('heading', { name: 'Credit history' })).toBeVisible();
  const rows = page.getByTestId('transactions').locator('tbody tr');
  await expect(rows).toHaveCount(25);
  const ids = () => rows.evaluateAll((all) => all.map((row) => row.getAttribute('data-id') ?? ''));
  const newest = await ids();
  await page.getByRole('link', { name: 'Older movements' }).click();
  await expect(page).toHaveURL(/cursor=/);
  await expect(rows.first()).not.toHaveAttribute('data-id', newest[0]);
  const older = await ids();
  expect(older.length).toBeGreaterThan(0);
  // The second page carries on exactly where the first stopped, in the journal's own order
  // (newer movements by other tests may have been added before both).
  const journal = (await apiCredits(page, 100)).transactions.map((t) => t.id);
  const start = journal.indexOf(newest[0]);
  expect(start).toBeGreaterThanOrEqual(0);
  expect(journal.slice(start, start + 25)).toEqual(newest);
  expect(journal.slice(start + 25, start + 25 + older.length)).toEqual(older);

  await page.getByLabel('Type').selectOption({ label: 'Grant' });
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await expect(page).toHaveURL(/type=grant/);
  const types = await rows.evaluateAll((all) => all.map((row) => row.getAttribute('data-type')));
  expect(types.length).toBeGreaterThan(0);
  expect(new Set(types)).toEqual(new Set(['grant']));
  const csv = await page.request.get('/billing/history.csv?type=grant');
  expect(csv.status()).toBe(200);
  expect((await csv.text()).trim().split('\n').length).toBe(types.length + 1);
});

test('the Billing page fits a phone screen', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await signIn(page, 'member@acme.test');
  await expect(page.getByTestId('balance')).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
});

test('sign-in works from the keyboard alone', async ({ page }) => {
  await page.goto('/login');
  await waitForHydration(page);
  await page.getByLabel('Email').focus();
  await page.keyboard.type('member@acme.test');
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('Password')).toBeFocused();
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await expect(page).toHaveURL(/\/billing$/);
  await page.getByRole('link', { name: 'Skip to content' }).focus();
  await expect(page.getByRole('link', { name: 'Skip to content' })).toBeVisible();
});

test('the plan, upcoming expiries and what credits are not are on the Billing page', async ({ page }) => {
  await signIn(page, 'owner@acme.test');
  const api = await apiCredits(page);
  await expect(page.getByTestId('plan')).toContainText('Team plan');
  await expect(page.getByTestId('plan')).toContainText('5 paid seats, billed monthly.');
  await expect(page.getByTestId('plan-includes')).toHaveText(
    'Includes 1,000 credits per seat a month: 5,000 credits each month.',
  );
  const expiring = api.buckets.filter((b: { expires_at: string | null }) => b.expires_at);
  const lines = page.getByTestId('upcoming-expiries').locator('li');
  await expect(lines).toHaveCount(expiring.length);
  await expect(lines.first()).toHaveText(/^[\d,]+ (free|promotional|subscription) credits? expires? on \d{1,2} [A-Z][a-z]{2} \d{4}$/);
  // The help opens from the keyboard.
  await page.getByText('What AI credits are not').focus();
  await page.keyboard.press('Enter');
  await expect(page.getByText(/Proration when seats or plans change/)).toBeVisible();
  await expect(page.getByText('Credits bought in another workspace')).toBeVisible();
});
