import { expect, test } from './fixtures';

// The API reference: Swagger UI, served from Tally's own files, shows the OpenAPI description
// without breaking the page's Content-Security-Policy (the fixture fails on any violation) and
// without fetching anything from elsewhere.

test('the API reference shows every operation of the description', async ({ page, request, baseURL }) => {
  const description = await (await request.get('/api/openapi.json')).json();
  // Every operation of the paths, and the notification Tally posts (the webhooks section).
  const count = (items: Record<string, object>) => Object.values(items).flatMap((item) => Object.keys(item)).length;
  const operations = count(description.paths) + count(description.webhooks ?? {});
  const elsewhere: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(baseURL!) && !r.url().startsWith('data:')) elsewhere.push(r.url());
  });
  await page.goto('/api/docs');
  await expect(page.locator('.swagger-ui .info .title')).toContainText('Tally');
  await expect(page.locator('.opblock')).toHaveCount(operations);
  await expect(page.locator('.opblock-summary-path', { hasText: '/api/v1/usage' }).first()).toBeVisible();
  expect(elsewhere).toEqual([]);
});
