// The dashboard in a real browser: Debian's Chromium driven by playwright-core.
//
//   DASHBOARD_URL=http://127.0.0.1:7071/api/v1/dashboard node --test tests/browser/dashboard.spec.mjs
//
// tests/api/test_dashboard.py runs this against `python -m shared serve` over emulator data,
// and the many-tenants part against a second app over several tenants (DASHBOARD_TENANTS_URL).
// Loopback only: any request that leaves 127.0.0.1 is aborted and fails the test. Screenshots
// go to test-artifacts/dashboard/ (ARTIFACTS_DIR overrides).

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

const PAGE = process.env.DASHBOARD_URL;
const TENANTS_PAGE = process.env.DASHBOARD_TENANTS_URL; // an app watching several tenants
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACTS_DIR
  || path.resolve(import.meta.dirname, '..', '..', 'test-artifacts', 'dashboard');
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const TIMEOUT = 20_000;
const HEALTH = ['quarantined', 'failing', 'stale', 'warning', 'paused', 'notRun', 'healthy'];
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

assert.ok(PAGE, 'set DASHBOARD_URL to the page, e.g. http://127.0.0.1:7071/api/v1/dashboard');
const ORIGIN = new URL(PAGE).origin;
assert.ok(LOOPBACK.has(new URL(PAGE).hostname), `the test only opens loopback pages, not ${PAGE}`);
if (TENANTS_PAGE) assert.ok(LOOPBACK.has(new URL(TENANTS_PAGE).hostname), `loopback only, not ${TENANTS_PAGE}`);

const apiUrl = (relative) => new URL(relative, PAGE).href; // 'jobs' -> .../api/v1/jobs
const enc = encodeURIComponent;
const jobPath = (job) => `jobs/${enc(job.servicePrincipalId)}/${enc(job.jobId)}`;
const appName = (job) => job.servicePrincipalName || job.servicePrincipalId;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Which way a job provisions, by its template: HR and cloud sync jobs into Entra ID (Workday2AAD,
// AD2AADProvisioning, ...), cross-tenant sync from this tenant's Entra ID to another's, apps out of it.
const direction = (job) => (/^Azure2Azure/.test(job.templateId || '') ? 'crossTenant'
  : /2AAD/.test(job.templateId || '') ? 'inbound' : 'outbound');

async function getJson(relative) {
  const response = await fetch(apiUrl(relative));
  assert.equal(response.status, 200, `GET ${relative}: ${response.status}`);
  return response.json();
}

// ------------------------------------------------------------ browser contexts

const contexts = [];

// A persistent context in a fresh --user-data-dir, watching for anything that goes wrong.
async function open(name, options, origin = ORIGIN) {
  const userDataDir = mkdtempSync(path.join(tmpdir(), `dashboard-${name}-`));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    timeout: TIMEOUT,
    ...options,
  });
  const problems = [];
  const requests = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || url.origin === origin) return route.continue();
    problems.push(`request left the app: ${url.href}`);
    return route.abort();
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (message) => {
    if (message.type() !== 'error' && message.type() !== 'warning') return;
    // An app without /alerts answers it 404; the page hides the section, Chromium logs the 404.
    const url = message.location().url || '';
    if (alertsStatus === 404 && /\/api\/v1\/alerts\?/.test(url) && /status of 404/.test(message.text())) return;
    problems.push(`console ${message.type()}: ${message.text()} (${url})`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('request', (request) => requests.push(request));
  const entry = { name, context, page, problems, requests, userDataDir };
  contexts.push(entry);
  return entry;
}

async function shot(page, file, fullPage = true) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, file), fullPage });
}

// Polls from Node: with page.clock installed the page's own timers (and rAF) are the fake ones.
async function until(check, what, timeout = TIMEOUT) {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function rowCount(page) {
  return page.locator('#jobs-body tr').count();
}

async function waitForRows(page, count) {
  await page.waitForFunction((n) => document.querySelectorAll('#jobs-body tr').length === n, count);
}

// Text contrast of every visible text on the page (WCAG AA: 4.5, or 3 for large text).
async function contrastFailures(page) {
  return page.evaluate(() => {
    const parse = (color) => {
      const parts = color.match(/[\d.]+/g).map(Number);
      return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
    };
    const blend = (top, bottom) => ({
      r: top.r * top.a + bottom.r * (1 - top.a),
      g: top.g * top.a + bottom.g * (1 - top.a),
      b: top.b * top.a + bottom.b * (1 - top.a),
      a: 1,
    });
    const background = (element) => {
      const layers = [];
      for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
        const color = parse(getComputedStyle(node).backgroundColor);
        if (color.a > 0) layers.push(color);
        if (color.a >= 1) break;
      }
      let result = { r: 255, g: 255, b: 255, a: 1 };
      for (const layer of layers.reverse()) result = blend(layer, result);
      return result;
    };
    const luminance = ({ r, g, b }) => {
      const channel = (value) => {
        const c = value / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    const failures = [];
    for (const element of document.querySelectorAll('body *')) {
      const ownText = [...element.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!ownText || element.closest('.visually-hidden, svg, [hidden]') || !element.getClientRects().length) continue;
      const style = getComputedStyle(element);
      if (style.visibility === 'hidden' || style.display === 'none') continue;
      const back = background(element);
      const fore = blend(parse(style.color), back);
      const [light, dark] = [luminance(fore), luminance(back)].sort((a, b) => b - a);
      const ratio = (light + 0.05) / (dark + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) {
        failures.push(`${element.tagName.toLowerCase()}.${element.className} "${element.textContent.trim().slice(0, 30)}": ${ratio.toFixed(2)}`);
      }
    }
    return failures;
  });
}

// ------------------------------------------------------------ known data, from the API

let jobs;
let summary;
let busiest;
let alertsStatus;
let openAlertCount = 0;
let errorJob; // the job with the most provisioning-log events in 7 days, with its groups
const examplesOf = {}; // direction -> the job of that direction with the most events, with its groups

before(async () => {
  jobs = (await getJson('jobs')).value;
  summary = await getJson('summary');
  assert.ok(jobs.length >= 5, `the test wants a tenant with jobs; the API lists ${jobs.length}`);
  // The job to open: one with failed runs if any has several runs, then the most runs.
  let best = { score: -1 };
  for (const job of jobs) {
    const runs = (await getJson(`${jobPath(job)}/executions?top=200`)).value;
    const failed = runs.some((run) => run.state === 'Failed');
    const score = (failed && runs.length >= 3 ? 1000 : 0) + runs.length;
    if (score > best.score) best = { job, runs: runs.length, list: runs, score };
  }
  const detail = await getJson(jobPath(best.job));
  busiest = { ...best, detail };
  assert.ok(busiest.runs >= 3, `the test wants a job with several runs; the busiest has ${busiest.runs}`);
  const alerts = await fetch(apiUrl('alerts?status=open&top=1000'));
  alertsStatus = alerts.status;
  if (alerts.ok) openAlertCount = (await alerts.json()).value.length;
  // Error groups (the seeding polls collect the demo's provisioning logs): the job with most events.
  const errors = await getJson('errors?window=7d&top=1000');
  assert.equal(errors.collection.mode, 'samples', 'the seeding polls run with PROVISIONING_LOGS=samples');
  const byJob = new Map();
  for (const group of errors.value) {
    const key = `${group.servicePrincipalId}/${group.jobId}`;
    byJob.set(key, (byJob.get(key) || 0) + group.count);
  }
  const [top] = [...byJob].sort((a, b) => b[1] - a[1]);
  assert.ok(top, 'the demo tenant\'s failing jobs log failures: some error groups are stored');
  const job = jobs.find((candidate) => `${candidate.servicePrincipalId}/${candidate.jobId}` === top[0]);
  assert.ok(job, `error groups of a job the API lists: ${top[0]}`);
  errorJob = { job, groups: (await getJson(`${jobPath(job)}/errors?window=7d`)).value };
  for (const [key] of [...byJob].sort((a, b) => b[1] - a[1])) {
    const candidate = jobs.find((j) => `${j.servicePrincipalId}/${j.jobId}` === key);
    if (!candidate || examplesOf[direction(candidate)]) continue;
    examplesOf[direction(candidate)] = { job: candidate, groups: (await getJson(`${jobPath(candidate)}/errors?window=7d`)).value };
  }
});

after(async () => {
  for (const { context, userDataDir } of contexts) {
    await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------ the tests

describe('dashboard', () => {
  test('serves the page with its CSP, and everything it loads comes from the app', async () => {
    const response = await fetch(PAGE);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/html/);
    const csp = response.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
    const html = await response.text();
    assert.doesNotMatch(html, /<script>(?!<)|\sstyle=|\son[a-z]+=/i, 'no inline script, style or handler');
    assert.doesNotMatch(html, /https?:\/\//, 'no absolute URL in the page');
  });

  test('desktop: tiles, every job in the table, filters, keyboard sort, a job with its chart', async () => {
    const { page, problems, requests } = await open('desktop', { viewport: { width: 1280, height: 800 } });
    try {
      await page.goto(PAGE);
      await waitForRows(page, jobs.length);
      await page.getByRole('table', { name: /Provisioning jobs/ }).waitFor();

      // Tiles: counts by health from /summary, and every job in the table.
      const tile = (health) => page.locator(`#tiles button[data-health="${health}"] .tile-count`);
      assert.equal(await tile('').textContent(), String(summary.jobs.total));
      for (const health of HEALTH) {
        assert.equal(await tile(health).textContent(), String(summary.jobs.byHealth[health] || 0), `${health} tile`);
      }
      const names = await page.locator('#jobs-body a.app-link').allTextContents();
      assert.deepEqual([...names].sort(), jobs.map(appName).sort());
      assert.equal(await page.locator('#jobs-count').textContent(), `${jobs.length} jobs`);
      for (const badge of await page.locator('#jobs-body .badge').allTextContents()) assert.ok(badge.trim(), 'badge has text');
      await page.locator('#status').filter({ hasText: 'Updated at' }).waitFor();

      await shot(page, 'desktop-overview.png');

      // Alerts: shown when the API has them, hidden when it has no /alerts.
      if (alertsStatus === 404) {
        assert.equal(await page.locator('#alerts-section').isHidden(), true);
      } else {
        assert.equal(alertsStatus, 200);
        await page.locator('#alerts-section').waitFor();
        assert.equal(await page.locator('#alerts > li').count(), Math.min(openAlertCount, 5));
        if (openAlertCount > 5) {
          const toggle = page.getByRole('button', { name: /Show all \d+ open alerts/ });
          assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
          await toggle.click();
          assert.equal(await page.locator('#alerts > li').count(), Math.min(openAlertCount, 100));
          assert.equal(await page.locator('#alerts-toggle').getAttribute('aria-expanded'), 'true');
        }
      }
      assert.deepEqual(await contrastFailures(page), [], 'text contrast (overview)');

      // The text filter: a word from the names that some jobs have and others do not.
      const words = new Map();
      for (const job of jobs) {
        for (const word of new Set(appName(job).toLowerCase().split(/[^a-z0-9]+/).filter((w) => w.length > 3))) {
          words.set(word, (words.get(word) || 0) + 1);
        }
      }
      const [word, expected] = [...words].filter(([, n]) => n < jobs.length).sort((a, b) => b[1] - a[1])[0];
      const filter = page.getByLabel('Filter', { exact: true });
      await filter.fill(word.toUpperCase());
      const expectedRows = jobs.filter((job) => [job.servicePrincipalName, job.jobId, job.templateId, job.statusCode]
        .join(' ').toLowerCase().includes(word)).length;
      assert.ok(expectedRows >= expected && expectedRows < jobs.length);
      await waitForRows(page, expectedRows);
      assert.equal(await page.locator('#jobs-count').textContent(), `${expectedRows} of ${jobs.length} jobs shown`);
      for (const text of await page.locator('#jobs-body tr').allTextContents()) assert.match(text.toLowerCase(), new RegExp(word));
      await filter.fill('');
      await waitForRows(page, jobs.length);

      // The health select, then a tile, then clearing.
      const quarantined = jobs.filter((job) => job.health === 'quarantined').length;
      await page.getByLabel('Health', { exact: true }).selectOption('quarantined');
      await waitForRows(page, quarantined);
      assert.deepEqual(new Set(await page.locator('#jobs-body .badge').allTextContents()), new Set(['Quarantined']));
      assert.equal(await page.locator('#tiles button[data-health="quarantined"]').getAttribute('aria-pressed'), 'true');
      await shot(page, 'desktop-filtered.png', false);
      await page.locator('#tiles button[data-health="healthy"]').click();
      await waitForRows(page, jobs.filter((job) => job.health === 'healthy').length);
      assert.equal(await page.getByLabel('Health', { exact: true }).inputValue(), 'healthy');
      await page.getByRole('button', { name: 'Clear filters' }).click();
      await waitForRows(page, jobs.length);

      // Keyboard sort: Tab from the filter reaches the first column's sort button.
      await filter.focus();
      for (let i = 0; i < 3; i += 1) await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.closest('th')?.dataset.sort), 'name');
      await page.keyboard.press('Enter');
      const nameHeader = page.locator('#jobs-table th[data-sort="name"]');
      assert.equal(await nameHeader.getAttribute('aria-sort'), 'ascending');
      const ascending = await page.locator('#jobs-body a.app-link').allTextContents();
      assert.deepEqual(ascending, [...ascending].sort((a, b) => a.localeCompare(b)));
      await page.keyboard.press('Space');
      assert.equal(await nameHeader.getAttribute('aria-sort'), 'descending');
      const descending = await page.locator('#jobs-body a.app-link').allTextContents();
      assert.deepEqual(descending, [...descending].sort((a, b) => b.localeCompare(a)));
      await page.locator('#jobs-table th[data-sort="escrowed"] button').press('Enter');
      assert.equal(await page.locator('#jobs-table th[data-sort="escrowed"]').getAttribute('aria-sort'), 'descending');
      const escrowed = (await page.locator('#jobs-body td[data-label="Escrowed"]').allTextContents())
        .map((text) => text.replace(/[^\d]/g, '')).filter(Boolean).map(Number);
      assert.deepEqual(escrowed, [...escrowed].sort((a, b) => b - a));
      assert.equal(await nameHeader.getAttribute('aria-sort'), null);

      // One job, opened from the keyboard: its chart draws, its timeline lists its events.
      const link = page.locator('#jobs-body tr', { hasText: busiest.job.jobId }).getByRole('link');
      await link.focus();
      await page.keyboard.press('Enter');
      await page.locator('#chart svg.chart-svg').waitFor();
      assert.equal(await page.locator('#job-heading').textContent(), appName(busiest.job));
      assert.equal(await page.evaluate(() => document.activeElement.id), 'job-heading');
      const runs = busiest.list;
      assert.equal(await page.locator('#chart svg').getAttribute('data-runs'), String(runs.length));
      for (const key of ['countImported', 'countExported', 'countEscrowed']) {
        const drawn = await page.locator(`#chart [data-series="${key}"] .point`).count();
        assert.equal(drawn, runs.filter((run) => run[key] !== null).length, `${key} points`);
        assert.equal(await page.locator(`#chart [data-series="${key}"] path.line`).count(), 1, `${key} line`);
      }
      const failedRuns = runs.filter((run) => run.state === 'Failed').length;
      assert.equal(await page.locator('#chart .failed-mark').count(), failedRuns);
      const box = await page.locator('#chart svg').boundingBox();
      assert.ok(box.width > 600 && box.height > 200, `chart is ${box.width}x${box.height}`);
      assert.equal(await page.locator('#timeline > li').count(), busiest.detail.events.length);
      assert.equal(await page.locator('#runs-body tr').count(), runs.length);
      await shot(page, 'desktop-job.png');
      assert.deepEqual(await contrastFailures(page), [], 'text contrast (job)');
      await page.getByLabel('Logarithmic scale').check();
      assert.equal(await page.locator('#chart [data-series="countImported"] .point').count(),
        runs.filter((run) => run.countImported !== null).length);

      // Back to the table, focus on the job's link again.
      await page.getByRole('link', { name: '← All jobs' }).click();
      await waitForRows(page, jobs.length);
      // Focus moves once the list's last call has ended (the rows may show before it).
      const focused = () => page.evaluate(() => document.activeElement.textContent);
      await until(async () => (await focused()) === appName(busiest.job), 'focus back on the job\'s link', 5_000)
        .catch(async (error) => { assert.equal(await focused(), appName(busiest.job)); throw error; });

      // Only same-origin requests, with no key when the page has none; one tenant: none named.
      const calls = requests.filter((request) => request.resourceType() === 'fetch');
      assert.ok(calls.length >= 5);
      for (const request of calls) assert.equal(request.headers()['x-functions-key'], undefined);
      for (const request of calls) assert.ok(!new URL(request.url()).searchParams.has('tenant'), request.url());
      assert.ok(calls.some((request) => new URL(request.url()).pathname.endsWith('/api/v1/tenants')), 'the page asked');
      assert.equal(await page.locator('#tenant-pick').isHidden(), true, 'one tenant: no picker');
      assert.equal(await page.locator('#tenants-view').isHidden(), true);
      assert.equal(await page.locator('#subtitle').textContent(), 'Provisioning jobs of this tenant');
      assert.deepEqual(problems, []);
    } catch (error) {
      await shot(page, 'desktop-failure.png').catch(() => {});
      throw error;
    }
  });

  test('a job\'s errors from the provisioning logs: groups, trend, examples linked to Entra; the "off" hint', async () => {
    const { page, problems } = await open('errors', { viewport: { width: 1280, height: 800 } });
    try {
      const { job, groups } = errorJob;
      await page.goto(`${PAGE}#job/${enc(job.servicePrincipalId)}/${enc(job.jobId)}`);
      await page.getByRole('heading', { name: 'Errors (provisioning logs)' }).waitFor();
      const items = page.locator('#error-groups > li');
      await items.first().waitFor();
      assert.equal(await items.count(), groups.length);
      // Most events first, each with its code, count and a trend of the window's days.
      const counts = (await page.locator('#error-groups .error-count').allTextContents())
        .map((text) => Number(text.replace(/[^\d]/g, '')));
      assert.deepEqual(counts, [...counts].sort((a, b) => b - a));
      const first = items.first();
      const top = [...groups].sort((a, b) => b.count - a.count)[0];
      assert.equal(await first.locator('.error-code').textContent(), top.errorCode);
      assert.equal(counts[0], top.count);
      assert.ok(top.errorCode && top.count > 0);
      if (top.reason) assert.equal(await first.locator('.error-reason').textContent(), top.reason);
      const trend = first.locator('svg.trend');
      assert.equal(await trend.getAttribute('role'), 'img');
      assert.match(await trend.getAttribute('aria-label'), /^Events per day: /);
      assert.equal(await trend.locator('rect').count(), 8, 'the 7d window covers 8 UTC days');
      const drawn = (await trend.locator('rect').evaluateAll((bars) => bars.map((bar) => Number(bar.dataset.count))))
        .reduce((sum, n) => sum + n, 0);
      assert.equal(drawn, top.count, 'the bars add up to the group\'s count');
      assert.ok(await first.locator('.error-seen time').count() === 2, 'first and last seen');

      // Examples: users and groups with a GUID link to the Entra admin center, in a new tab
      // (which side's id: the next test).
      const links = page.locator('#error-groups a.sample-link');
      assert.ok(await links.count() > 0);
      for (const link of await links.all()) {
        const href = await link.getAttribute('href');
        assert.ok(href.startsWith('https://entra.microsoft.com/#view/'), href);
        assert.match(href, /\/(userId|groupId)\/[0-9a-f-]{36}$/i);
        assert.equal(await link.getAttribute('target'), '_blank');
        assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
      }
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.locator('#errors-section').screenshot({ path: path.join(ARTIFACTS, 'desktop-errors.png') });
      assert.deepEqual(await contrastFailures(page), [], 'text contrast (errors)');

      // Collection off: the hint, and what it needs; reasons from the API go in as text.
      await page.route(/\/errors\?window=7d$/, (route) => route.fulfill({
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify({
          value: [], nextLink: null, window: { name: '7d', from: '2026-11-23T00:00:00Z', to: '2026-11-30T12:00:00Z' },
          collection: { mode: 'off', status: null, cursor: null },
        }),
      }));
      await page.getByRole('button', { name: 'Refresh now' }).click();
      await page.locator('#errors-note').filter({ hasText: 'PROVISIONING_LOGS' }).waitFor();
      assert.match(await page.locator('#errors-note').textContent(), /AuditLog\.Read\.All and Directory\.Read\.All/);
      assert.equal(await items.count(), 0);
      assert.deepEqual(problems, []);
    } catch (error) {
      await shot(page, 'errors-failure.png').catch(() => {});
      throw error;
    }
  });

  test('an example links to Entra only on its side in this tenant: inbound the target, outbound and cross-tenant the source', async () => {
    const { page, problems } = await open('examples', { viewport: { width: 1280, height: 800 } });
    const hrefs = () => page.locator('#error-groups a.sample-link')
      .evaluateAll((links) => links.map((link) => [link.getAttribute('href'), link.dataset.side]));
    const idOf = (href) => decodeURIComponent(href.split('/').pop()).toLowerCase();
    try {
      for (const [way, side] of [['inbound', 'target'], ['outbound', 'source'], ['crossTenant', 'source']]) {
        assert.ok(examplesOf[way], `the demo has a ${way} job with error groups`);
        const { job, groups } = examplesOf[way];
        const samples = groups.flatMap((group) => group.samples);
        assert.ok(samples.every((sample) => sample.sourceSystem && sample.targetSystem), `${way}: examples name both systems`);
        const other = side === 'source' ? 'target' : 'source';
        const expected = new Set(samples
          .filter((sample) => /^(user|group)$/i.test(sample.identityType || '') && GUID.test(sample[`${side}Id`] || ''))
          .map((sample) => sample[`${side}Id`].toLowerCase()));
        assert.ok(expected.size > 0, `${way}: the demo's examples have ${side} ids of users or groups to link`);
        await page.goto(`${PAGE}#job/${enc(job.servicePrincipalId)}/${enc(job.jobId)}`);
        await page.locator('#error-groups > li').first().waitFor();
        await page.locator('#error-groups a.sample-link').first().waitFor();
        const linked = await hrefs();
        assert.deepEqual(new Set(linked.map(([href]) => idOf(href))), expected, `${way}: the ${side} ids are linked`);
        assert.ok(linked.every(([, linkedSide]) => linkedSide === side), `${way}: only ${side}s`);
        for (const sample of samples) {
          // e.g. an HR worker id: a GUID too in the demo, yet never linked into Entra.
          const id = (sample[`${other}Id`] || '').toLowerCase();
          if (id) assert.ok(!linked.some(([href]) => idOf(href) === id), `${way}: ${other} ${id} is not linked`);
        }
      }

      // Examples stored before the systems were kept, or of systems that are not Entra ID (on-premises
      // Active Directory), are text only; Microsoft's newer name for Entra ID counts as the old one.
      const guid = (n) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
      const sample = (n, sourceSystem, targetSystem) => ({
        eventId: `e${n}`, activityDateTime: '2026-11-30T09:00:00Z', identityType: 'User',
        sourceId: guid(n), sourceDisplayName: `Source ${n}`, targetId: guid(100 + n), targetDisplayName: `Target ${n}`,
        ...(sourceSystem === undefined ? {} : { sourceSystem, targetSystem }),
      });
      const routed = [
        sample(1), // stored before the systems were kept
        sample(2, 'Workday', 'Active Directory'),
        sample(3, 'Microsoft Entra ID', 'Slack'),
        sample(4, 'Workday', 'Microsoft Entra ID'),
        sample(5, 'Azure Active Directory', 'Azure Active Directory'),
        sample(6, null, null),
      ];
      const { job } = examplesOf.outbound;
      await page.route(/\/errors\?window=7d$/, (route) => route.fulfill({
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify({
          value: [{
            jobId: job.jobId, servicePrincipalId: job.servicePrincipalId, status: 'failure', action: 'update',
            errorCode: 'EntryConflict', reason: null, errorCategory: null, count: 6,
            firstSeen: '2026-11-30T09:00:00Z', lastSeen: '2026-11-30T09:00:00Z', days: { '2026-11-30': 6 }, samples: routed,
          }],
          nextLink: null,
          window: { name: '7d', from: '2026-11-23T00:00:00Z', to: '2026-11-30T12:00:00Z' },
          collection: { mode: 'samples', status: 'ok', cursor: null },
        }),
      }));
      await page.getByRole('button', { name: 'Refresh now' }).click();
      await page.locator('#error-groups [data-code="EntryConflict"]').waitFor();
      await until(async () => (await page.locator('#error-groups > li').count()) === 1, 'the routed group alone');
      assert.deepEqual((await hrefs()).map(([href, linkedSide]) => [idOf(href), linkedSide]),
        [[guid(3), 'source'], [guid(104), 'target'], [guid(5), 'source']]);
      assert.equal(await page.locator('#error-groups .error-samples li').count(), routed.length);
      assert.deepEqual(problems, []);
    } catch (error) {
      await shot(page, 'examples-failure.png').catch(() => {});
      throw error;
    }
  });

  test('an API error is shown and cleared; it refreshes every minute, not while hidden', async () => {
    const { page, problems, requests } = await open('refresh', { viewport: { width: 1024, height: 700 } });
    try {
      await page.clock.install();
      let failing = true;
      await page.route('**/api/v1/summary', (route) => (failing
        ? route.fulfill({
          status: 503,
          contentType: 'application/problem+json',
          body: JSON.stringify({ type: 'about:blank', title: 'Service unavailable', status: 503, detail: 'Table <b>Storage</b> is down' }),
        })
        : route.fallback()));
      await page.goto(PAGE);
      const error = page.getByRole('alert');
      await error.filter({ hasText: 'Table <b>Storage</b> is down' }).waitFor(); // as text, not markup
      assert.equal(await page.locator('#error b').count(), 0);
      assert.match(await page.locator('#status').textContent(), /Refresh failed/);
      await shot(page, 'desktop-error.png', false);

      failing = false;
      const summaries = () => requests.filter((request) => new URL(request.url()).pathname.endsWith('/summary')).length;
      const before = summaries();
      await page.clock.runFor(61_000); // the minute's refresh
      await until(async () => (await rowCount(page)) === jobs.length, 'the table after the refresh');
      await page.locator('#error').waitFor({ state: 'hidden' });
      assert.equal(summaries(), before + 1);

      // Hidden: no refresh however long; visible again after a minute: one at once.
      await page.evaluate(() => {
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
        document.dispatchEvent(new Event('visibilitychange'));
      });
      await page.clock.runFor(5 * 60_000);
      assert.equal(summaries(), before + 1);
      await page.evaluate(() => {
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
        document.dispatchEvent(new Event('visibilitychange'));
      });
      await until(() => summaries() === before + 2, 'a refresh on becoming visible');
      await page.clock.runFor(1_000);
      assert.equal(summaries(), before + 2);

      // 401: a sign-in button, which the page builds only when pressed.
      await page.route('**/api/v1/jobs', (route) => route.fulfill({
        status: 401,
        contentType: 'application/problem+json',
        body: JSON.stringify({ status: 401, title: 'Unauthorized', detail: 'sign in' }),
      }));
      await page.getByRole('button', { name: 'Refresh now' }).click();
      await error.getByRole('button', { name: 'Sign in' }).waitFor();

      // A job that is not stored (an old link): said so, with the API's reason.
      await page.unroute('**/api/v1/jobs');
      await page.goto(`${PAGE}#job/no-such-sp/no-such-job`);
      await page.locator('#job-heading').filter({ hasText: 'No such job' }).waitFor();
      await error.filter({ hasText: 'GET /api/v1/jobs lists the jobs there are' }).waitFor();
      await page.getByRole('link', { name: '← All jobs' }).click();
      await until(async () => (await rowCount(page)) === jobs.length, 'the table again');
      // Cleared once the whole list has loaded (the table may show before the last call ends).
      await error.waitFor({ state: 'hidden', timeout: 5_000 });
      const expected = problems.filter((problem) => !/status of (401|404|503)/.test(problem));
      assert.deepEqual(expected, []);
    } catch (failure) {
      await shot(page, 'refresh-failure.png').catch(() => {});
      throw failure;
    }
  });

  test('phone: cards without sideways scrolling, the key sent as x-functions-key and kept out of the page', async () => {
    const key = `test-key-${Math.random().toString(36).slice(2)}`;
    const { page, problems, requests } = await open('phone', {
      viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
    });
    try {
      await page.goto(`${PAGE}?code=${key}`);
      await waitForRows(page, jobs.length);
      await page.locator('#status').filter({ hasText: 'Updated at' }).waitFor();
      assert.equal(page.url(), PAGE, 'the key is taken out of the address bar');
      assert.equal(await page.evaluate(() => sessionStorage.getItem('entraSyncMonitor.functionKey')), key);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
      assert.equal(await page.locator('#jobs-body tr').first().evaluate((row) => getComputedStyle(row).display), 'block');
      await shot(page, 'phone-overview.png', false);
      await shot(page, 'phone-overview-full.png');

      await page.locator('#jobs-body tr', { hasText: busiest.job.jobId }).getByRole('link').tap();
      await page.locator('#chart svg.chart-svg').waitFor();
      const box = await page.locator('#chart svg').boundingBox();
      assert.ok(box.width <= 390 && box.width > 250, `chart width ${box.width}`);
      assert.ok(await page.locator('#chart .point').count() > 0);
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
      await shot(page, 'phone-job.png');

      const calls = requests.filter((request) => request.resourceType() === 'fetch');
      assert.ok(calls.length >= 5);
      for (const request of calls) {
        assert.equal(request.headers()['x-functions-key'], key, request.url());
        assert.ok(!request.url().includes(key), 'the key is never in an API URL');
      }
      assert.ok(!(await page.content()).includes(key), 'the key is never written into the page');

      // Loaded again in this tab without ?code=, the page still has the key: sessionStorage.
      const seen = requests.length;
      await page.goto(PAGE);
      await waitForRows(page, jobs.length);
      const again = requests.slice(seen).filter((request) => request.resourceType() === 'fetch');
      assert.ok(again.length >= 2);
      for (const request of again) assert.equal(request.headers()['x-functions-key'], key, request.url());
      assert.ok(!problems.some((problem) => problem.includes(key)));
      assert.deepEqual(problems, []);
    } catch (error) {
      await shot(page, 'phone-failure.png').catch(() => {});
      throw error;
    }
  });

  test('signing in after a 401 sends the browser to /.auth/login with no key in any URL', async () => {
    const key = `test-key-${Math.random().toString(36).slice(2)}`;
    const { page, requests } = await open('sign-in', { viewport: { width: 1280, height: 800 } });
    const unauthorized = { status: 401, contentType: 'application/problem+json', body: '{"status":401,"detail":"sign in"}' };
    await page.route(/\/api\/v1\/(summary|jobs|alerts)/, (route) => route.fulfill(unauthorized));
    await page.route(/\/\.auth\/login\//, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'login' }));
    try {
      await page.goto(`${PAGE}/?code=${key}#job/a/b`); // by the trailing-slash redirect, which keeps the query
      const signIn = page.getByRole('button', { name: 'Sign in' });
      await signIn.waitFor();
      assert.equal(page.url(), `${PAGE}#job/a/b`, 'the address bar keeps the view, not the key');
      const [login] = await Promise.all([page.waitForRequest(/\/\.auth\/login\/aad/), signIn.click()]);
      const back = new URL(login.url()).searchParams.get('post_login_redirect_uri');
      assert.equal(back, `${new URL(PAGE).pathname}#job/a/b`);
      for (const request of requests) {
        // The URL typed in (and its trailing-slash redirect) is the one place the key may be.
        if (request.isNavigationRequest() && request.url().startsWith(PAGE)) continue;
        assert.ok(!request.url().includes(key), `no key in ${request.url()}`);
      }
    } catch (error) {
      await shot(page, 'sign-in-failure.png').catch(() => {});
      throw error;
    }
  });
});

describe('many tenants', () => {
  const skip = !TENANTS_PAGE && 'set DASHBOARD_TENANTS_URL to the page of an app that watches several tenants';
  const get = async (relative) => {
    const response = await fetch(new URL(relative, TENANTS_PAGE).href);
    assert.equal(response.status, 200, `GET ${relative}: ${response.status}`);
    return response.json();
  };
  const CONSENT = 'Consent missing or revoked — an admin of this tenant must consent again; see docs/multitenant.md.';

  test('a tenant picker, all tenants at a glance, and each tenant\'s own jobs', { skip }, async () => {
    const tenants = (await get('tenants')).value;
    const summary = await get('tenants/summary');
    assert.ok(tenants.length >= 3, `the test wants several tenants; the API lists ${tenants.length}`);
    const byName = (name) => tenants.find((tenant) => tenant.displayName === name);
    const home = tenants.find((tenant) => tenant.source === 'home');
    const fabrikam = byName('Fabrikam');
    const northwind = byName('Northwind');
    assert.ok(home && fabrikam && northwind, 'the home tenant, Fabrikam and Northwind');
    assert.equal(northwind.state, 'consentMissing', 'Northwind\'s Graph refuses every read');
    const jobsOf = {};
    for (const tenant of [home, fabrikam]) jobsOf[tenant.tenantId] = (await get(`jobs?tenant=${tenant.tenantId}`)).value;
    const homeJobs = jobsOf[home.tenantId];
    const fabrikamJobs = jobsOf[fabrikam.tenantId];
    assert.ok(homeJobs.length > 0 && fabrikamJobs.length > 0);
    assert.equal(new Set([...homeJobs, ...fabrikamJobs].map((job) => job.jobId)).size, homeJobs.length + fabrikamJobs.length,
      'the two tenants have no job in common, so the table shows whose jobs it lists');

    const { page, problems, requests } = await open('tenants', { viewport: { width: 1280, height: 800 } }, new URL(TENANTS_PAGE).origin);
    const names = async () => (await page.locator('#jobs-body a.app-link').allTextContents()).sort();
    // The calls about one tenant (all but /tenants and /tenants/summary).
    const tenantCalls = () => requests.filter((request) => request.resourceType() === 'fetch')
      .map((request) => new URL(request.url()))
      .filter((url) => !/\/api\/v1\/tenants(\/summary)?$/.test(url.pathname));
    try {
      // No tenant named: all of them, and a picker that names each with its state.
      await page.goto(TENANTS_PAGE);
      await page.locator('#tenants-body tr').first().waitFor();
      assert.equal(await page.locator('#overview-view').isHidden(), true);
      const picker = page.getByLabel('Tenant', { exact: true });
      assert.equal(await picker.inputValue(), '');
      const options = await picker.locator('option').allTextContents();
      assert.equal(options.length, tenants.length + 1);
      assert.match(options[0], /^All tenants \(\d+, 1 needs attention\)$/);
      assert.ok(options.includes('Northwind (consent missing)'), options.join(' | '));
      assert.ok(options.includes('Fabrikam'), options.join(' | '));
      assert.ok(options.includes(home.tenantId), 'a tenant without a name is shown by its id');

      // The table: each tenant with its state, in words; the one needing attention marked.
      assert.equal(await page.locator('#tenants-body tr').count(), tenants.length);
      for (const tenant of tenants) {
        const row = page.locator(`#tenants-body tr[data-tenant="${tenant.tenantId}"]`);
        assert.equal(await row.getAttribute('data-state'), tenant.state);
        assert.equal(await row.locator('td[data-label="Jobs"]').textContent(), String(tenant.jobs.total));
        assert.equal(await row.locator('td[data-label="Quarantined"]').textContent(), String(tenant.jobs.quarantined));
        assert.equal(/\battention\b/.test(await row.getAttribute('class') || ''), tenant.state !== 'healthy', tenant.displayName);
      }
      const revoked = page.locator(`#tenants-body tr[data-tenant="${northwind.tenantId}"]`);
      assert.equal(await revoked.locator('.badge').textContent(), 'Consent missing');
      assert.equal(await revoked.locator('.state-why').textContent(), CONSENT);
      assert.match(await revoked.locator('td[data-label="First error"]').textContent(), /403/);
      assert.match(await revoked.locator('td[data-label="Last poll"]').textContent(), /^failed/);
      assert.match(await page.locator('#tenants-count').textContent(), /1 consent missing/);
      // The jobs quarantined now, across tenants, each with its tenant.
      assert.ok(summary.quarantinedJobs.length > 0, 'the demo tenant has jobs in quarantine');
      assert.equal(await page.locator('#tq-body tr').count(), summary.quarantinedJobs.length);
      assert.deepEqual(await page.locator('#tq-body tr').evaluateAll((rows) => rows.map((row) => row.dataset.tenant)),
        summary.quarantinedJobs.map((job) => job.tenantId));
      assert.deepEqual(tenantCalls().map(String), [], 'all tenants: no call about one tenant');
      await page.locator('#status').filter({ hasText: 'Updated at' }).waitFor();
      await shot(page, 'tenants-overview.png');
      assert.deepEqual(await contrastFailures(page), [], 'text contrast (all tenants)');

      // A tenant selected from the table: its jobs, and every call about it names it.
      await page.locator(`#tenants-body tr[data-tenant="${fabrikam.tenantId}"] a.tenant-link`).click();
      await waitForRows(page, fabrikamJobs.length);
      assert.deepEqual(await names(), fabrikamJobs.map(appName).sort());
      assert.equal(new URL(page.url()).searchParams.get('tenant'), fabrikam.tenantId);
      assert.equal(await picker.inputValue(), fabrikam.tenantId);
      assert.equal(await page.locator('#subtitle').textContent(), 'Provisioning jobs of Fabrikam');
      const tile = page.locator('#tiles button[data-health=""] .tile-count');
      assert.equal(await tile.textContent(), String(fabrikam.jobs.total));
      const calls = tenantCalls();
      assert.ok(calls.length >= 3);
      for (const url of calls) assert.equal(url.searchParams.get('tenant'), fabrikam.tenantId, url.href);

      // Another from the picker: its jobs, none of the last one's.
      const before = tenantCalls().length;
      await picker.selectOption(home.tenantId);
      await waitForRows(page, homeJobs.length);
      assert.deepEqual(await names(), homeJobs.map(appName).sort());
      for (const url of tenantCalls().slice(before)) assert.equal(url.searchParams.get('tenant'), home.tenantId, url.href);
      await shot(page, 'tenants-one.png', false);

      // Remembered in the address: a reload shows the same tenant; Back the one before.
      await page.reload();
      await waitForRows(page, homeJobs.length);
      assert.equal(await picker.inputValue(), home.tenantId);
      await page.goBack();
      await waitForRows(page, fabrikamJobs.length);
      assert.deepEqual(await names(), fabrikamJobs.map(appName).sort());
      assert.equal(await picker.inputValue(), fabrikam.tenantId);

      // The revoked tenant's own page says what to do.
      await picker.selectOption(northwind.tenantId);
      await page.locator('#tenant-note').filter({ hasText: CONSENT }).waitFor();
      await waitForRows(page, 0);
      await page.locator('#jobs-empty').filter({ hasText: 'its last poll read none' }).waitFor();

      // All tenants again, then a quarantined job opened from there: that tenant's job.
      await picker.selectOption('');
      await page.locator('#tenants-view').waitFor();
      assert.equal(new URL(page.url()).searchParams.has('tenant'), false);
      const [job] = summary.quarantinedJobs;
      await page.locator('#tq-body tr').first().getByRole('link', { name: appName(job) }).click();
      await page.locator('#job-heading').filter({ hasText: appName(job) }).waitFor();
      assert.equal(new URL(page.url()).searchParams.get('tenant'), job.tenantId);
      assert.equal(await page.evaluate(() => document.activeElement.id), 'job-heading');
      assert.equal(await picker.inputValue(), job.tenantId);

      // A tenant that is not there (any more): all tenants, and a message saying so.
      const gone = '00000000-0000-4000-8000-00000000dead';
      await page.goto(`${TENANTS_PAGE}?tenant=${gone}#job/a/b`);
      await page.locator('#notice').filter({ hasText: `The tenant ${gone} is not watched here any more` }).waitFor();
      await page.locator('#tenants-body tr').first().waitFor();
      assert.equal(page.url(), TENANTS_PAGE, 'the address forgets it');
      assert.equal(await picker.inputValue(), '');

      // One removed between the list and its data (the API's 404 for it): the same.
      await page.goto(`${TENANTS_PAGE}?tenant=${fabrikam.tenantId}`);
      await waitForRows(page, fabrikamJobs.length);
      await page.route(/\/api\/v1\/summary\?/, (route) => route.fulfill({
        status: 404,
        contentType: 'application/problem+json',
        body: JSON.stringify({ status: 404, title: 'Not Found', detail: 'No such tenant is watched here, or it is not yours to see' }),
      }));
      await page.getByRole('button', { name: 'Refresh now' }).click();
      await page.locator('#notice').filter({ hasText: `The tenant ${fabrikam.tenantId} is not watched here any more` }).waitFor();
      await page.locator('#tenants-view').waitFor();
      assert.equal(page.url(), TENANTS_PAGE);
      assert.equal(await page.locator('#error').isHidden(), true, 'a notice, not an error');
      await page.unroute(/\/api\/v1\/summary\?/);
      problems.splice(0, problems.length, ...problems.filter((problem) => !/status of 404/.test(problem)));

      // On a phone: no sideways scrolling, tenants as cards.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(TENANTS_PAGE);
      await page.locator('#tenants-body tr').first().waitFor();
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling');
      assert.equal(await page.locator('#tenants-body tr').first().evaluate((row) => getComputedStyle(row).display), 'block');
      await shot(page, 'phone-tenants.png');
      assert.deepEqual(problems, []);
    } catch (error) {
      await shot(page, 'tenants-failure.png').catch(() => {});
      throw error;
    }
  });
});

describe('API reference', () => {
  test('Swagger UI from the app under its CSP: the document, "Try it out", the key as a header only', async () => {
    const key = `test-key-${Math.random().toString(36).slice(2)}`;
    const docs = `${ORIGIN}/api/docs`;
    const { page, problems, requests } = await open('reference', { viewport: { width: 1280, height: 800 } });
    try {
      const response = await page.goto(`${docs}?code=${key}`);
      assert.match(response.headers()['content-security-policy'], /script-src 'self'/);
      await page.locator('.opblock-summary-path', { hasText: '/api/v1/summary' }).first().waitFor();
      assert.equal(page.url(), docs, 'the key is taken out of the address bar');
      assert.ok(await page.locator('.opblock').count() >= 5);

      await page.locator('.opblock-summary', { hasText: '/api/v1/summary' }).first().click();
      await page.getByRole('button', { name: 'Try it out' }).click();
      await page.getByRole('button', { name: 'Execute' }).click();
      await page.locator('.live-responses-table .response-col_status', { hasText: '200' }).waitFor();
      await shot(page, 'reference.png', false);

      const calls = requests.filter((request) => ['fetch', 'xhr'].includes(request.resourceType()));
      assert.ok(calls.some((request) => request.url().endsWith('/api/openapi.json')), 'the document');
      assert.ok(calls.some((request) => new URL(request.url()).pathname === '/api/v1/summary'), '"Try it out"');
      for (const request of calls) {
        assert.equal(request.headers()['x-functions-key'], key, request.url());
        assert.ok(!request.url().includes(key), 'the key is never in an API URL');
      }
      assert.ok(!(await page.content()).includes(key), 'the key is never shown (the curl line included)');
      assert.deepEqual(problems, [], 'no CSP violation, no request to another host');
    } catch (error) {
      await shot(page, 'reference-failure.png').catch(() => {});
      throw error;
    }
  });
});
