// Debian's chromium, headless, driven by playwright-core (which downloads no browser), for
// the tests of the report page: a fresh temporary profile per launch, and every console
// message and page error the page makes, collected.

export const CHROMIUM = '/usr/bin/chromium';

/** The flags a headless chromium needs here: no sandbox (root), no GPU, nothing from outside. */
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * A browser with one page, the console messages and page errors it collects, and `close`.
 * @returns {Promise<{ context: import('playwright-core').BrowserContext, page: import('playwright-core').Page, messages: string[], close: () => Promise<void> }>}
 */
export async function openPage() {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  /** @type {string[]} */
  const messages = [];
  page.on('console', (message) => messages.push(`console.${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => messages.push(`page error: ${error.message}`));
  return { context, page, messages, close: () => browser.close() };
}
