import { defineConfig } from '@playwright/test';

// The app is started fresh for every run: a new SQLite database, the demo data, and the
// debug build made by `cargo leptos build`. Playwright polls /readyz until it answers.
const port = process.env.TALLY_E2E_PORT ?? '3199';
const baseURL = `http://127.0.0.1:${port}`;

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
  webServer: {
    command: 'bash end2end/serve.sh',
    cwd: '..',
    url: `${baseURL}/readyz`,
    reuseExistingServer: false,
    timeout: 120_000,
    env: { TALLY_E2E_PORT: port },
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
