import { expect, test } from './fixtures';
import { signIn, waitForHydration } from './helpers';

// Owners make, copy and revoke API keys in the browser; nobody else sees the page's keys.

test('an owner creates a key, sees it once, uses it, and revokes it', async ({ page, request }) => {
  await signIn(page, 'owner@acme.test');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API keys' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'API keys' })).toBeVisible();
  await waitForHydration(page);

  const name = `E2E backend ${Date.now()}`;
  await page.getByLabel('Name').fill(name);
  await page.getByTestId('create-key').click();
  const secret = (await page.getByTestId('new-key-secret').textContent()) ?? '';
  expect(secret).toMatch(/^tly_[0-9a-f]+$/);
  await expect(page.getByTestId('copy-key')).toBeVisible();
  const row = page.getByTestId('api-key').filter({ hasText: name });
  await expect(row).toContainText('Never');
  await expect(row).toContainText('Active');

  const works = await request.get('/api/billing/credits', { headers: { Authorization: `Bearer ${secret}` } });
  expect(works.status()).toBe(200);

  // A reload shows the key without its secret.
  await page.reload();
  await expect(page.getByTestId('api-key').filter({ hasText: name })).toBeVisible();
  await expect(page.getByText(secret)).toHaveCount(0);

  await waitForHydration(page);
  await page.getByRole('button', { name: `Revoke ${name}` }).click();
  await expect(page.getByRole('status').filter({ hasText: 'is revoked' })).toBeVisible();
  await expect(page.getByTestId('api-key').filter({ hasText: name })).toContainText('Revoked');
  const refused = await request.get('/api/billing/credits', { headers: { Authorization: `Bearer ${secret}` } });
  expect(refused.status()).toBe(401);
});

test('people other than owners are told who manages keys', async ({ page }) => {
  await signIn(page, 'billing@acme.test');
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'API keys' })).toHaveCount(0);
  const answer = await page.goto('/api-keys');
  expect(answer?.status()).toBe(403);
  await expect(page.getByRole('heading', { name: 'Only owners manage API keys' })).toBeVisible();
  await expect(page.getByTestId('api-key')).toHaveCount(0);
});
