import { expect, type Page } from '@playwright/test';

export const PASSWORD = 'tally-demo';

/** Signs in through the form, as a person would, and waits for the hydrated Billing page. */
export async function signIn(page: Page, email: string) {
  await page.goto('/login');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/billing$/);
  await waitForHydration(page);
}

/** The page is live once the wasm bundle has hydrated it. */
export async function waitForHydration(page: Page) {
  await expect(page.locator('#app')).toHaveAttribute('data-hydrated', 'true');
}

export interface CreditsBody {
  workspace_id: string;
  balance: number;
  transactions: { id: string; balance_after: number; amount: number }[];
}

/** The API's view of the signed-in person's current workspace, with the page's own cookie. */
export async function apiCredits(page: Page, limit = 5): Promise<CreditsBody> {
  const response = await page.request.get(`/api/billing/credits?limit=${limit}`);
  expect(response.status()).toBe(200);
  return (await response.json()) as CreditsBody;
}

/** Credits as the page shows them: 13,033. */
export function shown(n: number): string {
  return n.toLocaleString('en-US');
}
