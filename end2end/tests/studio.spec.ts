import { expect, test } from './fixtures';
import { apiCredits, signIn } from './helpers';

/** Runs a Studio action far larger than any demo balance. */
async function runOversizedAction(page: import('@playwright/test').Page) {
  await page.goto('/studio');
  await expect(page.locator('#app')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('Model').selectOption('reel-video-1');
  await page.getByLabel('Size').fill('100000');
  await page.getByRole('button', { name: 'Run action' }).click();
  await expect(page.getByTestId('insufficient-credits')).toBeVisible();
}

test('a member with too few credits is offered "Ask an admin", and the admins hear of it', async ({ browser }) => {
  const memberPage = await browser.newPage();
  await signIn(memberPage, 'member@acme.test');
  const before = await apiCredits(memberPage);
  await runOversizedAction(memberPage);
  const answer = memberPage.getByTestId('insufficient-credits');
  await expect(answer).toContainText('Out of AI credits');
  await expect(answer).toContainText('Nothing was charged');
  await expect(answer.getByRole('link', { name: 'Buy credits' })).toHaveCount(0);
  await answer.getByRole('button', { name: 'Ask an admin' }).click();
  await expect(answer.getByRole('status')).toContainText(/Request sent|already asked/);
  expect((await apiCredits(memberPage)).balance).toBe(before.balance);

  const ownerPage = await browser.newPage();
  await signIn(ownerPage, 'owner@acme.test');
  await ownerPage.getByRole('link', { name: 'Notifications' }).click();
  await expect(ownerPage.getByTestId('notifications').locator('li[data-kind="credit_request"]').first()).toContainText('member@acme.test');
});

test('an owner with too few credits is offered "Buy credits" and "Manage Auto-reload"', async ({ page }) => {
  await signIn(page, 'owner@acme.test');
  await runOversizedAction(page);
  const answer = page.getByTestId('insufficient-credits');
  await expect(answer.getByRole('link', { name: 'Buy credits' })).toHaveAttribute('href', '/billing#buy-credits');
  await expect(answer.getByRole('link', { name: 'Manage Auto-reload' })).toHaveAttribute('href', '/billing#auto-reload');
  await expect(answer.getByRole('button', { name: 'Ask an admin' })).toHaveCount(0);
});

test('a Studio action holds the estimate and charges the real cost once', async ({ page }) => {
  await signIn(page, 'admin@acme.test');
  const before = await apiCredits(page);
  await page.goto('/studio');
  await expect(page.locator('#app')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('Model').selectOption('lumen-image-2');
  await page.getByLabel('Size').fill('2');
  await page.getByRole('button', { name: 'Run action' }).click();
  await expect(page.getByRole('button', { name: 'Running…' })).toBeVisible();
  const result = page.getByTestId('action-result');
  await expect(result).toContainText('held 80 credits');
  const after = await apiCredits(page);
  const charged = before.balance - after.balance;
  expect(charged).toBeGreaterThan(0);
  expect(charged).toBeLessThanOrEqual(80);
  await expect(result).toContainText(`charged ${charged} credit`);
  expect(after.transactions[0].amount).toBe(-charged);
});

test('the rates page has one tab per kind of AI work', async ({ page }) => {
  await signIn(page, 'member@acme.test');
  await page.getByRole('link', { name: 'Rates' }).click();
  await expect(page.getByRole('heading', { name: 'AI credit rates' })).toBeVisible();
  await expect(page.locator('tr[data-model="atlas-text-large"]')).toContainText('1.5 credits per 1K tokens');
  await page.getByRole('link', { name: 'Video' }).click();
  await expect(page.locator('tr[data-model="reel-video-1"]')).toContainText('12.5 credits per second');
  await expect(page.locator('tr[data-model="atlas-text-large"]')).toHaveCount(0);
});

test('usage is charted by day, with the numbers in a table', async ({ page }) => {
  await signIn(page, 'owner@acme.test');
  const chart = page.getByRole('img', { name: /Bar chart/ });
  await expect(chart).toBeVisible();
  await page.getByText('Show the numbers').click();
  await expect(page.locator('table.numbers tbody tr').first()).toBeVisible();
  await page.getByRole('link', { name: 'By model' }).click();
  await expect(page).toHaveURL(/usage_by=model/);
  await expect(page.locator('.legend')).toContainText('reel-video-1');
});

test('an owner sends notifications to an endpoint and gets its signing secret once', async ({ page }) => {
  await signIn(page, 'owner@acme.test');
  await page.goto('/notifications');
  await expect(page.locator('#app')).toHaveAttribute('data-hydrated', 'true');
  const card = page.getByTestId('webhook');
  await card.getByLabel('Endpoint address').fill('http://hooks.example.com/tally');
  await card.getByRole('button', { name: 'Save endpoint' }).click();
  await expect(card.getByRole('alert')).toContainText('https://');
  // Nothing inside the network: the page says why.
  await card.getByLabel('Endpoint address').fill('https://169.254.169.254/latest/meta-data');
  await card.getByRole('button', { name: 'Save endpoint' }).click();
  await expect(card.getByRole('alert')).toContainText('link-local');
  // A public address (a literal one: this machine has no DNS to look a name up).
  await card.getByLabel('Endpoint address').fill('https://93.184.215.14/tally');
  await card.getByRole('button', { name: 'Save endpoint' }).click();
  await expect(card.getByTestId('webhook-secret')).toHaveText(/^tallywh_[0-9a-z]+$/);
  await page.reload();
  await expect(page.locator('#app')).toHaveAttribute('data-hydrated', 'true');
  await expect(card.getByLabel('Endpoint address')).toHaveValue('https://93.184.215.14/tally');
  await expect(card.getByTestId('webhook-secret')).toHaveCount(0);
  await card.getByRole('button', { name: 'Stop sending' }).click();
  await expect(card.getByRole('status')).toContainText('no longer sent');
});

test('a member sees no endpoint settings', async ({ page }) => {
  await signIn(page, 'member@acme.test');
  await page.goto('/notifications');
  await expect(page.getByRole('heading', { name: 'Notifications', level: 1 })).toBeVisible();
  await expect(page.getByTestId('webhook')).toHaveCount(0);
});
