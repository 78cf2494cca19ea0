import { expect, test } from './fixtures';
import { PASSWORD } from './helpers';

// Before a page's script has run, or where scripts are off, its forms post straight to the
// server. A change the server refuses then comes back to the same page with the reason said,
// once, instead of a silent reload.

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('a refused change says why on the page it came back to, once', async ({ page }) => {
    await page.goto('/login');
    await page.getByLabel('Email').fill('owner@acme.test');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/billing$/);

    await page.goto('/api-keys');
    // A key's secret is shown once, in the answer: without a script the answer is a trip back
    // to the page, so the key is not made at all, and the page says why.
    const name = `No script ${Date.now()}`;
    await page.getByLabel('Name').fill(name);
    await page.getByTestId('create-key').click();
    await expect(page).toHaveURL(/\/api-keys$/);
    const refused = page.getByRole('alert').filter({ hasText: 'That change was not made.' });
    await expect(refused).toContainText('needs JavaScript');
    await expect(page.getByTestId('api-key').filter({ hasText: name })).toHaveCount(0);

    await page.reload();
    await expect(page.getByRole('heading', { level: 1, name: 'API keys' })).toBeVisible();
    await expect(page.getByText('That change was not made.')).toHaveCount(0);
  });
});
