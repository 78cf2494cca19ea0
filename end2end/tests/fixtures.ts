import { test as base, expect } from '@playwright/test';

/**
 * Every test fails on a Content-Security-Policy violation in the browser: the pages must work
 * under their policy, not around it. Pages of the test's own context are watched.
 */
export const test = base.extend<{ cspGuard: void }>({
  cspGuard: [
    async ({ context }, use) => {
      const violations: string[] = [];
      context.on('console', (message) => {
        if (/Content.Security.Policy/i.test(message.text())) violations.push(message.text());
      });
      context.on('weberror', (error) => {
        if (/Content.Security.Policy/i.test(String(error.error()))) violations.push(String(error.error()));
      });
      await use();
      expect(violations, 'Content-Security-Policy violations').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
export type { Page } from '@playwright/test';
