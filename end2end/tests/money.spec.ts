import { expect, test } from './fixtures';
import { signIn, waitForHydration } from './helpers';
import { moneyPort } from '../playwright.config';

// A deployment that shows amounts in dollars (TALLY_BALANCE_UNIT=usd, one credit = $0.01)
// and sells custom amounts in $1.00 steps at face value: every figure people read or type is
// money with its currency, while the API keeps counting credits beside `balance_money`.

test.use({ baseURL: `http://127.0.0.1:${moneyPort}` });

/** $1,234.56 for 123,456 credits. */
function dollars(credits: number): string {
  return `$${(credits / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

interface MoneyCredits {
  balance: number;
  balance_money: { amount: number; currency: string } | null;
  transactions: { amount: number; balance_after: number }[];
}

test('balances, history, budgets, rates and custom amounts read in dollars', async ({ page }) => {
  await signIn(page, 'owner@acme.test');

  // The API counts credits and adds the same balance in money.
  const response = await page.request.get('/api/billing/credits?limit=5');
  expect(response.status()).toBe(200);
  const credits = (await response.json()) as MoneyCredits;
  expect(credits.balance_money).toEqual({ amount: credits.balance, currency: 'usd' });

  // Billing shows that balance, and each movement, as money.
  await expect(page.getByTestId('balance')).toHaveText(dollars(credits.balance));
  await expect(page.locator('.balance-unit')).toHaveText('available');
  const newest = credits.transactions[0];
  const row = page.getByTestId('transactions').locator('tbody tr').first();
  await expect(row.locator('.balance-after')).toHaveText(dollars(newest.balance_after));
  await expect(row.locator('.amount')).toHaveText(
    `${newest.amount < 0 ? '-' : '+'}${dollars(Math.abs(newest.amount))}`,
  );
  await expect(page.getByTestId('usage-total')).toContainText(/^\$[\d,]+\.\d\d used in the last 30 days$/);

  // A custom amount is typed in dollars, on the deployment's terms, stated before checkout.
  await page.getByRole('radio', { name: /Custom amount/ }).check();
  await expect(page.locator('#buy-credits')).toContainText(
    'Custom amounts come in steps of $1.00, from $5.00 to $1,000.00, at $1.00 USD per step.',
  );
  const amount = page.getByLabel('Amount to buy (USD)');
  await amount.fill('12.34');
  await expect(page.locator('#custom-feedback')).toHaveText('Custom amounts come in steps of $1.00.');
  await expect(page.getByTestId('buy-continue')).toBeDisabled();
  await amount.fill('25');
  await expect(page.locator('#custom-feedback')).toHaveText('$25.00 for $25.00 USD.');
  await page.getByTestId('buy-continue').click();
  await expect(page.getByTestId('confirm-credits')).toHaveText('$25.00');
  await page.getByRole('button', { name: 'Cancel' }).click();

  // Auto-reload's fields read in dollars too.
  const reload = page.locator('#auto-reload');
  await expect(reload.getByLabel('When the balance falls below (USD)')).toHaveValue(/^\d+\.\d\d$/);

  // Rates keep the fractions of a cent they have.
  await page.goto('/billing/rates');
  await expect(page.locator('[data-model="atlas-text-large"]')).toContainText('$0.015 per 1K tokens');
});

test('a billing manager sets a budget in dollars and sees it in dollars', async ({ page }) => {
  await signIn(page, 'billing@acme.test');
  await page.goto('/budgets');
  await waitForHydration(page);
  await page.getByLabel('On', { exact: true }).selectOption('workspace');
  await page.getByLabel('Per', { exact: true }).selectOption('lifetime');
  await page.getByLabel('Limit in USD').fill('1234.50');
  await page.getByLabel('When it is reached').selectOption('soft');
  await page.getByRole('button', { name: 'Add budget' }).click();
  await expect(page.getByRole('status')).toContainText('Budget added: $1,234.50 per lifetime');
  const budget = page.getByTestId('budget').filter({ hasText: '$1,234.50' }).first();
  await expect(budget).toContainText('of $1,234.50 used in all');
  await expect(budget.getByRole('spinbutton', { name: 'Limit' })).toHaveValue('1234.50');

  // The API keeps counting credits: $1,234.50 is 123,450 of them.
  const answer = await page.request.get('/api/v1/budgets');
  expect(answer.status()).toBe(200);
  const { data } = (await answer.json()) as { data: { scope: string; limit: number }[] };
  expect(data.some((b) => b.scope === 'workspace' && b.limit === 123_450)).toBe(true);
});
