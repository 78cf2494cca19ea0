import { expect, test, type Page } from './fixtures';
import {
  apiCredits, markPage, redeliverEvents, signIn, stillMarked, waitForHydration, waitForStripeEvents,
} from './helpers';

// These tests buy credits in their own workspace ("Buyer Labs", made by serve.sh), one after
// another, so the other specs' balances never move under them.
test.describe.configure({ mode: 'serial' });

const TEAM_PACK = 25_000 + 2_500;

/** Chooses a pack, confirms it, and lands on the test-mode payment page. */
async function checkout(page: Page, pack: RegExp) {
  const buy = page.locator('#buy-credits');
  await expect(buy.getByTestId('test-mode')).toBeVisible();
  await buy.getByRole('radio', { name: pack }).check();
  await buy.getByTestId('buy-continue').click();
  const dialog = page.getByRole('dialog', { name: 'Confirm your purchase' });
  await expect(dialog).toBeVisible();
  return dialog;
}

async function payWith(page: Page, card: string) {
  await expect(page).toHaveURL(/\/_stripe\/checkout\/cs_test_/);
  await expect(page.getByRole('note')).toContainText('Test mode');
  await page.getByLabel('Card number').fill(card);
  await page.getByLabel('Expiry (MM/YY)').fill('12/34');
  await page.getByLabel('Security code').fill('123');
  await page.getByRole('button', { name: /^Pay / }).click();
}

test('an owner buys a pack in test mode and sees the balance rise exactly once', async ({ page, request }) => {
  await signIn(page, 'buyer@labs.test');
  const before = await apiCredits(page);
  const dialog = await checkout(page, /Team/);
  await expect(dialog.getByTestId('confirm-price')).toHaveText('$22.50 USD');
  await expect(dialog).toContainText('+ 2,500 credits (promotion)');
  await expect(dialog).toContainText('not a subscription');
  await dialog.getByTestId('go-to-checkout').click();
  await payWith(page, '4242 4242 4242 4242');

  await expect(page).toHaveURL(/\/billing\/purchases\/pur_/);
  const outcome = page.getByTestId('purchase-outcome');
  await expect(outcome).toHaveAttribute('data-status', 'succeeded');
  await expect(outcome).toContainText('Credits added');
  await expect(outcome.getByTestId('balance')).toHaveText((before.balance + TEAM_PACK).toLocaleString('en-US'));
  expect((await apiCredits(page)).balance).toBe(before.balance + TEAM_PACK);

  // Coming back to the page, and every event of the payment arriving again, add nothing more.
  await page.reload();
  await expect(page.getByTestId('purchase-outcome')).toHaveAttribute('data-status', 'succeeded');
  await waitForStripeEvents();
  const purchaseId = new URL(page.url()).pathname.split('/').pop() ?? '';
  expect(await redeliverEvents(request, purchaseId)).toBeGreaterThan(0);
  expect((await apiCredits(page)).balance).toBe(before.balance + TEAM_PACK);

  await page.goto('/billing');
  await expect(page.getByTestId('purchase-row').first()).toContainText('Paid');
  await expect(page.getByTestId('purchase-row').first()).toContainText('Visa •••• 4242');
  await expect(page.getByTestId('saved-card').first()).toContainText('Default');

  // The cards shown are the copy Tally keeps; "Refresh" reads them from the provider again,
  // in place, with its pending state.
  await waitForHydration(page);
  const refresh = page.getByRole('button', { name: 'Refresh saved cards' });
  const answered = page.waitForResponse((r) => r.url().endsWith('/api/refresh_cards'));
  await refresh.click();
  expect((await answered).status()).toBe(200);
  await expect(refresh).toHaveText('Refresh');
  await expect(page.locator('#payment-methods').getByTestId('saved-card').first()).toContainText('Visa •••• 4242');
  await expect(page.locator('#payment-methods [role="alert"]')).toHaveCount(0);
  await expect(page.locator('#payment-methods').getByRole('status')).toContainText('as the payment provider has');
});

test('a declining card shows the failure and grants nothing', async ({ page }) => {
  await signIn(page, 'buyer@labs.test');
  const before = await apiCredits(page);
  const dialog = await checkout(page, /Starter/);
  // The card saved by the first purchase is offered.
  await expect(dialog).toContainText('Visa •••• 4242 (saved');
  await dialog.getByTestId('go-to-checkout').click();
  await payWith(page, '4000 0000 0000 0002');
  await expect(page.getByRole('alert')).toContainText('Your card was declined.');

  await page.getByRole('link', { name: /Back to Tally without paying/ }).click();
  const outcome = page.getByTestId('purchase-outcome');
  await expect(outcome).toHaveAttribute('data-status', 'failed');
  await expect(outcome).toContainText('Payment failed');
  await expect(outcome).toContainText('Your card was declined.');
  await expect(outcome.getByRole('link', { name: 'Try again' })).toBeVisible();
  expect((await apiCredits(page)).balance).toBe(before.balance);
});

/** Starts a Starter pack's checkout and gives back the payment page and the purchase's page. */
async function openCheckout(page: Page) {
  const dialog = await checkout(page, /Starter/);
  await dialog.getByTestId('go-to-checkout').click();
  await expect(page).toHaveURL(/\/_stripe\/checkout\/cs_test_/);
  const back = await page.getByRole('link', { name: /Back to Tally without paying/ }).getAttribute('href');
  const purchase = new URL(back ?? '', page.url()).pathname;
  expect(purchase).toMatch(/^\/billing\/purchases\/pur_/);
  return { payment: page.url(), purchase };
}

test('the purchase page keeps looking while the payment is pending and shows it when it lands', async ({ page, context }) => {
  await signIn(page, 'buyer@labs.test');
  const before = await apiCredits(page);
  const { payment, purchase } = await openCheckout(page);
  await page.goto(purchase);
  await waitForHydration(page);
  const outcome = page.getByTestId('purchase-outcome');
  await expect(outcome).toHaveAttribute('data-status', 'open');
  await expect(outcome).toContainText('Processing your payment');
  await markPage(page);

  // Paid in another tab: the waiting page sees it without being reloaded.
  const payer = await context.newPage();
  await payer.goto(payment);
  await payWith(payer, '4242 4242 4242 4242');
  await expect(payer).toHaveURL(/\/billing\/purchases\/pur_/);
  await payer.close();

  await expect(outcome).toHaveAttribute('data-status', 'succeeded');
  await expect(outcome).toContainText('Credits added');
  await expect(outcome).toHaveAttribute('data-pending', 'false');
  expect(await stillMarked(page)).toBe(true);
  expect((await apiCredits(page)).balance).toBeGreaterThan(before.balance);
  // The copy button that came with the new HTML works like the page's own.
  await outcome.getByRole('button', { name: 'Copy support details' }).click();
  await expect(outcome.getByText(/^(Copied|Could not copy; select the text instead)$/)).toBeVisible();
});

test('a buyer who left the payment page closes the checkout in place', async ({ page }) => {
  await signIn(page, 'buyer@labs.test');
  const before = await apiCredits(page);
  await openCheckout(page);
  await page.getByRole('link', { name: /Back to Tally without paying/ }).click();
  const outcome = page.getByTestId('purchase-outcome');
  await expect(outcome).toHaveAttribute('data-status', 'open');
  await expect(outcome).toContainText('You left the payment page');
  await waitForHydration(page);
  await markPage(page);
  // The page looks again while the checkout is open; what it reads keeps the way to close it.
  await page.waitForResponse((r) => r.url().includes('/billing/purchases/') && r.request().resourceType() === 'fetch');
  await expect(outcome).toContainText('You left the payment page');

  await outcome.getByTestId('cancel-checkout').click();
  await expect(outcome).toHaveAttribute('data-status', 'canceled');
  await expect(outcome).toContainText('Checkout canceled');
  await expect(outcome.getByTestId('cancel-checkout')).toHaveCount(0);
  expect(await stillMarked(page)).toBe(true);
  expect((await apiCredits(page)).balance).toBe(before.balance);
});

test('a member sees no purchase controls, and a direct call of the purchase function is refused', async ({ page }) => {
  await signIn(page, 'viewer@labs.test');
  const before = await apiCredits(page);
  await expect(page.getByTestId('buy-read-only')).toContainText('billing managers');
  await expect(page.getByTestId('buy-continue')).toHaveCount(0);
  // Sent as the page itself would (same Origin), so the refusal is the role's, not the Origin check's.
  const response = await page.request.post('/api/start_checkout', {
    form: { pack_id: 'pack_team' },
    headers: { Origin: new URL(page.url()).origin },
  });
  expect(response.status()).toBe(403);
  expect((await apiCredits(page)).balance).toBe(before.balance);
});

test('at phone width the purchase controls give way to a note', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await signIn(page, 'buyer@labs.test');
  await expect(page.getByTestId('wide-screen-note')).toBeVisible();
  await expect(page.getByTestId('buy-continue')).toBeHidden();
});

test('an owner turns Auto-reload on, a Studio action crosses the threshold, and the top-up lands', async ({ page }) => {
  await signIn(page, 'buyer@labs.test');
  const before = await apiCredits(page);
  const threshold = before.balance - 100;
  const card = page.locator('#auto-reload');
  await expect(card.getByTestId('auto-reload-state')).toHaveText('Off');
  await card.getByLabel('Turn on Auto-reload').check();
  await card.getByLabel('When the balance falls below (credits)').fill(String(threshold));
  await card.getByLabel('Top up to (credits)').fill(String(threshold + 10_000));
  await card.getByLabel('Monthly cap (USD)').fill('50');
  await card.getByTestId('save-auto-reload').click();
  await expect(card.getByTestId('auto-reload-saved')).toContainText('Auto-reload is on');

  await page.goto('/studio');
  await expect(page.locator('#app')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('Model').selectOption('lumen-image-2');
  await page.getByLabel('Size').fill('20');
  await page.getByRole('button', { name: 'Run action' }).click();
  await expect(page.getByTestId('action-result')).toBeVisible();

  // The reload job tops up toward the target within seconds.
  await expect
    .poll(async () => (await apiCredits(page)).balance, { timeout: 15_000 })
    .toBeGreaterThanOrEqual(threshold + 10_000);
  const after = await apiCredits(page, 20);
  expect(after.transactions.filter((t) => t.amount > 0 && (t as { type?: string }).type === 'auto_reload')).toHaveLength(1);

  await page.goto('/billing');
  await expect(page.locator('#auto-reload').getByTestId('auto-reload-state')).toHaveText('On');
  await expect(page.locator('#auto-reload').getByTestId('auto-reload-last')).toContainText('succeeded');
  await expect(page.getByTestId('purchase-row').first()).toContainText('Auto-reload');
});

test('the Auto-reload form shows only the chosen mode’s field and says what the next reload buys', async ({ page }) => {
  await signIn(page, 'buyer@labs.test');
  await waitForHydration(page);
  const card = page.locator('#auto-reload');
  await card.getByLabel('When the balance falls below (credits)').fill('1000');

  await card.getByRole('radio', { name: 'a fixed number of credits' }).check();
  await expect(card.getByLabel('Top up to (credits)')).toHaveCount(0);
  await card.getByLabel('Credits to buy each time').fill('10000');
  await expect(card.getByTestId('auto-reload-preview')).toContainText('buys 10,000 credits for $12.00 USD');

  await card.getByRole('radio', { name: 'a credit pack' }).check();
  await expect(card.getByLabel('Credits to buy each time')).toHaveCount(0);
  await card.getByLabel('Pack to buy').selectOption('pack_team');
  await expect(card.getByTestId('auto-reload-preview')).toContainText(
    'the Team pack: 25,000 credits and 2,500 bonus credits for $22.50 USD',
  );
  await card.getByLabel('Monthly cap (USD)').fill('50');
  await card.getByTestId('save-auto-reload').click();
  await expect(card.getByTestId('auto-reload-saved')).toContainText('the next reload buys the Team pack');

  // Saved: the page comes back in pack mode with the pack chosen, and the API says so.
  await page.reload();
  const again = page.locator('#auto-reload');
  await expect(again.getByRole('radio', { name: 'a credit pack' })).toBeChecked();
  await expect(again.getByLabel('Pack to buy')).toHaveValue('pack_team');
  const credits = (await apiCredits(page)) as unknown as { auto_reload: { mode: string; pack_id: string } };
  expect(credits.auto_reload.mode).toBe('pack');
  expect(credits.auto_reload.pack_id).toBe('pack_team');

  // A fixed amount below the threshold is refused with the reason, and nothing changes.
  await waitForHydration(page);
  await again.getByRole('radio', { name: 'a fixed number of credits' }).check();
  await again.getByLabel('Credits to buy each time').fill('5000');
  await again.getByLabel('When the balance falls below (credits)').fill('6000');
  await again.getByTestId('save-auto-reload').click();
  await expect(again.getByRole('alert')).toContainText('threshold must not be above what one reload buys');
  await page.reload();
  await expect(page.locator('#auto-reload').getByRole('radio', { name: 'a credit pack' })).toBeChecked();
});
