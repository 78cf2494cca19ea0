import { defineConfig } from '@playwright/test';

// The app is started fresh for every run: a new SQLite database, the demo data, and the
// debug build made by `cargo leptos build`. Playwright polls /readyz until it answers.
const port = process.env.TALLY_E2E_PORT ?? '3199';
const baseURL = `http://127.0.0.1:${port}`;
// A second deployment that shows amounts in dollars (1 credit = $0.01) and sells custom
// amounts in whole dollars at face value: money.spec.ts runs against it.
export const moneyPort = process.env.TALLY_E2E_MONEY_PORT ?? '3198';

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: 2,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: [
    {
      command: 'bash end2end/serve.sh',
      cwd: '..',
      url: `${baseURL}/readyz`,
      reuseExistingServer: false,
      timeout: 120_000,
      env: { TALLY_E2E_PORT: port },
      stdout: 'ignore',
      stderr: 'pipe',
    },
    {
      command: 'bash end2end/serve.sh',
      cwd: '..',
      url: `http://127.0.0.1:${moneyPort}/readyz`,
      reuseExistingServer: false,
      timeout: 120_000,
      env: {
        TALLY_E2E_PORT: moneyPort,
        TALLY_E2E_DATA: 'end2end/.data-money',
        TALLY_BALANCE_UNIT: 'usd',
        TALLY_CREDIT_VALUE: '1',
        TALLY_CUSTOM_STEP: '100',
        TALLY_CUSTOM_MIN: '500',
        TALLY_CUSTOM_MAX: '100000',
        TALLY_CUSTOM_STEP_PRICE: '1.00',
      },
      stdout: 'ignore',
      stderr: 'pipe',
    },
  ],
});
