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
    // Spaces pass the browser's own check of a required field; the server refuses them.
    await page.getByLabel('Name').fill('   ');
    await page.getByTestId('create-key').click();
    await expect(page).toHaveURL(/\/api-keys$/);
    const refused = page.getByRole('alert').filter({ hasText: 'That change was not made.' });
    await expect(refused).toContainText('Give the key a name of 1 to 100 characters');

    await page.reload();
    await expect(page.getByRole('heading', { level: 1, name: 'API keys' })).toBeVisible();
    await expect(page.getByText('That change was not made.')).toHaveCount(0);
  });
});
