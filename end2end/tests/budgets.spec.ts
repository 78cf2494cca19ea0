import { expect, test } from './fixtures';
import { apiCredits, markPage, signIn, stillMarked, waitForHydration } from './helpers';

// A billing manager caps one member on the Budgets page; that member's Studio action past
// the cap is refused with the budget named, and nothing is charged. The member is new to
// this run (signed in from the host product with a portal link), so no other test meets
// the budget.

const operator = process.env.TALLY_OPERATOR_TOKEN ?? 'e2e-operator-token-0123456789';

test('a member past the budget a billing manager set is refused with the limit named', async ({ browser, baseURL }) => {
  const email = `capped-${Date.now()}@acme.test`;
  const answer = await fetch(`${baseURL}/api/operator/portal_sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
    body: JSON.stringify({ workspace_id: 'ws_acmeai0demo0000001', user: { email }, role: 'member' }),
  });
  expect(answer.status).toBe(201);
  const { url } = (await answer.json()) as { url: string };
  const member = await browser.newPage();
  await member.goto(url);
  await expect(member).toHaveURL(/\/billing$/);

  const manager = await browser.newPage();
  await manager.setViewportSize({ width: 390, height: 844 });
  await signIn(manager, 'billing@acme.test');
  await manager.getByRole('link', { name: 'Budgets' }).click();
  await expect(manager).toHaveURL(/\/budgets$/);
  await waitForHydration(manager);
  await manager.getByLabel('On', { exact: true }).selectOption('member');
  await manager.getByLabel("Member's email").fill(email);
  await manager.getByLabel('Per', { exact: true }).selectOption('day');
  await manager.getByLabel('Limit in credits').fill('20');
  await manager.getByLabel('When it is reached').selectOption('hard');
  await manager.getByRole('button', { name: 'Add budget' }).click();
  await expect(manager.getByRole('status')).toContainText('Budget added: 20 credits per day');
  const row = manager.getByTestId('budget').filter({ hasText: email });
  await expect(row).toContainText('0 of 20 credits used today');
  await expect(row.getByRole('meter')).toHaveAttribute('aria-valuemax', '20');

  // The member sees the budget on Billing, then runs an action it cannot pay for.
  await member.reload();
  await waitForHydration(member);
  await expect(member.getByTestId('your-budgets')).toContainText('20 credits left');
  const before = await apiCredits(member);
  await member.goto('/studio');
  await waitForHydration(member);
  await member.getByLabel('Model').selectOption('lumen-image-2');
  await member.getByLabel('Size').fill('1');
  await member.getByRole('button', { name: 'Run action' }).click();
  const refusal = member.getByTestId('over-budget');
  await expect(refusal).toContainText('Budget reached');
  await expect(refusal).toContainText('your daily budget has 20 of 20 left');
  await expect(refusal).toContainText('Nothing was charged');
  await expect(refusal.getByRole('button', { name: 'Ask an admin' })).toBeVisible();
  expect((await apiCredits(member)).balance).toBe(before.balance);

  // Raised on the page, the same action goes through.
  await manager.reload();
  await waitForHydration(manager);
  const raised = manager.getByTestId('budget').filter({ hasText: email });
  await raised.getByLabel('Limit', { exact: true }).fill('500');
  await raised.getByRole('button', { name: 'Save' }).click();
  await expect(manager.getByRole('status')).toContainText(`${email}'s budget is now 500 credits`);
  await member.getByRole('button', { name: 'Run action' }).click();
  await expect(member.getByTestId('action-result')).toContainText('held 40 credits');
});

test('a billing manager keeps credits apart for a project, then gives them back', async ({ page }) => {
  const project = `e2e-pool-${Date.now()}`;
  await signIn(page, 'billing@acme.test');
  await page.goto('/budgets');
  await waitForHydration(page);
  const pools = page.locator('section', { has: page.getByRole('heading', { name: 'Pools', exact: true }) });
  const keep = page.locator('section', { has: page.getByRole('heading', { name: 'Keep credits apart' }) });
  await keep.getByLabel('For', { exact: true }).selectOption('project');
  await keep.getByLabel('Project', { exact: true }).fill(project);
  await keep.getByLabel('Credits to keep (credits)').fill('3');
  await keep.getByRole('button', { name: 'Keep credits' }).click();
  await expect(keep.getByText(`3 credits kept for ${project}.`)).toBeVisible();
  const item = pools.getByTestId('pool').filter({ hasText: project });
  await expect(item).toContainText('3 credits left; nothing more once spent');
  await markPage(page);

  // The pool's own forms: a change answered in place, the list read again with it.
  await item.getByLabel('Keeps').fill('5');
  await item.getByRole('button', { name: 'Save' }).click();
  await expect(pools.getByRole('status')).toHaveText(`${project} now keeps 5 credits.`);
  await expect(item).toContainText('5 credits left; nothing more once spent');

  // A refusal is said in the same place, and the pool stays as it was.
  await item.getByLabel('Keeps').fill('999999999');
  await item.getByRole('button', { name: 'Save' }).click();
  await expect(pools.getByRole('alert')).toBeVisible();
  await expect(item).toContainText('5 credits left');
  // A refusal reads nothing again: the button is given back, with what was typed.
  await expect(item.getByRole('button', { name: 'Save', exact: true })).toBeEnabled();
  await expect(item.getByLabel('Keeps')).toHaveValue('999999999');

  await item.getByRole('button', { name: `Remove the pool for ${project}` }).click();
  await expect(pools.getByText(`The pool for ${project} is removed`)).toBeVisible();
  await expect(pools.getByTestId('pool').filter({ hasText: project })).toHaveCount(0);
  // Each answer showed in place: the page was never loaded again.
  expect(await stillMarked(page)).toBe(true);
});

// The forms are plain HTML forms posting to their server functions, so they work before the
// page's script has run (or where it never does): the server answers by sending the browser
// back to the page (with an empty query: an error would be in it), which shows the change.
test('a budget is added and removed with the page script turned off', async ({ browser }) => {
  const project = `e2e-nojs-${Date.now()}`;
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/login');
  await page.getByLabel('Email').fill('billing@acme.test');
  await page.getByLabel('Password').fill('tally-demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/billing$/);

  await page.goto('/budgets');
  await page.locator('#budget-scope').selectOption('project');
  await page.locator('#budget-target').fill(project);
  await page.locator('#budget-limit').fill('5');
  await page.getByRole('button', { name: 'Add budget' }).click();
  await expect(page).toHaveURL(/\/budgets\??$/);
  const row = page.getByTestId('budget').filter({ hasText: project });
  await expect(row).toContainText('0 of 5 credits used this month');

  await row.getByRole('button', { name: `Remove the budget on ${project}` }).click();
  await expect(page).toHaveURL(/\/budgets\??$/);
  await expect(page.getByTestId('budget').filter({ hasText: project })).toHaveCount(0);
  await context.close();
});
