// Entra Sync Monitor dashboard: reads only the public API (/api/v1/...), the JSON a portal gets.
// Hand-written, no framework, no build step. Every text from the API goes in with textContent
// (el() below), never as markup. The function key (FunctionKey, from key.js, loaded first) is
// sent as the x-functions-key header only: never in a URL, the console or the page.
'use strict';

(() => {
  const HEALTH = [
    ['quarantined', 'Quarantined'],
    ['failing', 'Failing'],
    ['stale', 'Stale'],
    ['unobserved', 'Not observed'],
    ['warning', 'Warning'],
    ['paused', 'Paused'],
    ['notRun', 'Not run'],
    ['healthy', 'Healthy'],
  ];
  const HEALTH_LABEL = Object.fromEntries(HEALTH);
  const HEALTH_RANK = Object.fromEntries(HEALTH.map(([key], index) => [key, index]));
  const EVENT_LABEL = {
    jobAppeared: 'Job appeared',
    statusCodeChanged: 'Status changed',
    quarantineEntered: 'Entered quarantine',
    quarantineReasonChanged: 'Quarantine reason changed',
    quarantineLeft: 'Left quarantine',
    healthChanged: 'Health changed',
    jobRemoved: 'Job removed',
    alertsMuted: 'Alerts muted',
    alertsUnmuted: 'Alerts unmuted',
    jobRestarted: 'Restart requested',
    jobPaused: 'Pause requested',
    jobStarted: 'Start requested',
  };
  const SEVERITY_RANK = { critical: 0, error: 1, warning: 2, info: 3 };
  const SERIES = [
    { key: 'countImported', label: 'Imported', cls: 's-imported', marker: 'circle' },
    { key: 'countExported', label: 'Exported', cls: 's-exported', marker: 'square' },
    { key: 'countEscrowed', label: 'Escrowed', cls: 's-escrowed', marker: 'diamond' },
  ];
  // Columns whose first click sorts largest / newest first.
  const DESCENDING_FIRST = new Set(['lastRun', 'escrowed', 'quarantine']);
  const REFRESH_MS = 60_000;
  const CHART_RUNS = 200;
  const ALERTS_FOLDED = 5; // alerts shown before "Show all"
  const ALERTS_SHOWN = 100;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const ERRORS_WINDOW = '7d';
  const ERROR_STATUS = {
    failure: ['Failure', 'h-failing'],
    warning: ['Warning', 'h-warning'],
    skipped: ['Skipped', 'h-paused'],
  };
  // Links out to the object in the Entra admin center (opened in a new tab; nothing is loaded from there).
  const ENTRA_OBJECT = {
    user: 'https://entra.microsoft.com/#view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/overview/userId/',
    group: 'https://entra.microsoft.com/#view/Microsoft_AAD_IAM/GroupDetailsMenuBlade/~/Overview/groupId/',
  };
  const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  // Entra ID as a provisioning system (an example's sourceSystem / targetSystem): Microsoft's
  // examples name it "Azure Active Directory", its pages now "Microsoft Entra ID".
  const ENTRA_SYSTEMS = new Set(['azure active directory', 'microsoft entra id']);
  const LOG_PERMISSIONS = 'AuditLog.Read.All and Directory.Read.All';
  // A tenant's state (GET /api/v1/tenants): its label, badge class, and what it means to a person.
  const TENANT_STATE = {
    consentMissing: ['Consent missing', 'h-quarantined',
      'Consent missing or revoked — an admin of this tenant must consent again; see docs/multitenant.md.'],
    signInFailed: ['Sign-in failed', 'h-failing',
      'The app could not get a token for this tenant: check its tenant id and the app\'s credentials; see docs/multitenant.md.'],
    failing: ['Failing', 'h-failing', 'The last poll of this tenant failed: see its first error.'],
    throttled: ['Throttled', 'h-stale',
      'Microsoft Graph throttled the reads, so some were left undone; the next polls catch up.'],
    stale: ['Stale', 'h-stale', 'No poll of this tenant has ended lately: check that the poller runs.'],
    degraded: ['Degraded', 'h-warning', 'The last poll read only part of this tenant: some reads failed.'],
    notPolled: ['Not polled yet', 'h-notRun', 'This tenant has not been polled yet; the next poll reads it.'],
    disabled: ['Disabled', 'h-paused', 'This tenant is disabled: it is not polled.'],
    healthy: ['Healthy', 'h-healthy', 'The last poll read everything.'],
  };
  const TENANT_STATES = Object.keys(TENANT_STATE);

  const KEY = FunctionKey.value;

  const state = {
    jobs: [],
    jobsLoaded: false,
    summary: null,
    alerts: null, // null: the API has no /alerts (or it failed: alertsError)
    alertsError: null,
    sort: { key: 'health', dir: 'asc' },
    filterText: '',
    filterHealth: '',
    route: { view: 'overview', tenant: null },
    tenants: null, // GET /api/v1/tenants' list; null until it answers, [] from an app without it
    tenantsTried: false,
    tenantsSummary: null,
    tenantsViewAt: 0,
    pickerKey: '',
    handledHref: null, // the address the page shows (popstate and hashchange both fire for some)
    detail: null,
    runs: [],
    runsMore: false,
    jobAlerts: null,
    jobErrors: null, // { body, error } of GET .../errors
    lastUpdated: null,
    overviewAt: 0,
    loading: false,
    pending: false,
    timer: null,
    openReasons: new Set(),
    alertsExpanded: false,
    lastJobKey: null,
  };

  // ------------------------------------------------------------ helpers

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    setAttributes(node, attrs);
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setAttributes(node, attrs);
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function setAttributes(node, attrs) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'text') node.textContent = String(value);
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
  }

  function hidden(text) {
    return el('span', { class: 'visually-hidden', text });
  }

  function none(spoken = 'none') {
    return [el('span', { 'aria-hidden': 'true', class: 'muted', text: '—' }), hidden(spoken)];
  }

  const numberFormat = new Intl.NumberFormat();
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
  const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'long' });
  const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const axisTimeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const axisDateFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
  const utcDayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });

  function fmtNumber(value) {
    return value === null || value === undefined ? '—' : numberFormat.format(value);
  }

  function parseTime(text) {
    if (typeof text !== 'string' || !text) return null;
    // Graph sends up to 7 fractional digits; Date.parse is only sure of 3.
    const time = Date.parse(text.replace(/(\.\d{3})\d+/, '$1'));
    return Number.isNaN(time) ? null : time;
  }

  function fmtSpan(seconds) {
    const minutes = Math.round(Math.abs(seconds) / 60);
    if (Math.abs(seconds) < 60) return `${Math.round(Math.abs(seconds))} s`;
    if (minutes < 60) return `${minutes} min`;
    if (minutes < 24 * 60) {
      const hours = Math.floor(minutes / 60);
      const rest = minutes % 60;
      return rest && hours < 10 ? `${hours} h ${rest} min` : `${Math.round(minutes / 60)} h`;
    }
    const hours = Math.round(Math.abs(seconds) / 3600);
    const days = Math.floor(hours / 24);
    const rest = hours % 24;
    return rest && days < 10 ? `${days} d ${rest} h` : `${Math.round(hours / 24)} d`;
  }

  function fmtAgo(time, now = Date.now()) {
    const seconds = (now - time) / 1000;
    if (Math.abs(seconds) < 45) return 'just now';
    return seconds > 0 ? `${fmtSpan(seconds)} ago` : `in ${fmtSpan(-seconds)}`;
  }

  // <time> with the local date and time; the exact instant in its title.
  function timeEl(text, { relative = false, cls = '' } = {}) {
    const time = parseTime(text);
    if (time === null) return none('never');
    const date = new Date(time);
    return el('time', {
      datetime: text,
      title: `${fullFormat.format(date)} (${text})`,
      class: cls || null,
      text: relative ? fmtAgo(time) : dateTimeFormat.format(date),
    });
  }

  function badge(health) {
    const label = HEALTH_LABEL[health] || health || 'Unknown';
    return el('span', { class: `badge h-${HEALTH_LABEL[health] ? health : 'unknown'}`, text: label });
  }

  function stateLabel(runState) {
    const cls = runState === 'Failed' ? 'run-failed' : runState === 'Succeeded' ? 'run-ok' : 'run-other';
    return el('span', { class: `run-state ${cls}`, text: runState || 'unknown state' });
  }

  function jobKey(job) {
    return `${job.servicePrincipalId}\u0000${job.jobId}`;
  }

  function jobHash(servicePrincipalId, jobId) {
    return `#job/${encodeURIComponent(servicePrincipalId)}/${encodeURIComponent(jobId)}`;
  }

  function jobPath(servicePrincipalId, jobId) {
    return `jobs/${encodeURIComponent(servicePrincipalId)}/${encodeURIComponent(jobId)}`;
  }

  // When this stretch of quarantine began: seriesBegan (the first quarantine of the series;
  // currentBegan moves with each retry), else currentBegan, as the API's summary counts it.
  function quarantineSince(job) {
    const q = job.quarantine;
    if (!q || (job.statusCode !== 'Quarantine' && job.health !== 'quarantined')) return null;
    return parseTime(q.seriesBegan) !== null ? q.seriesBegan : parseTime(q.currentBegan) !== null ? q.currentBegan : null;
  }

  function quarantineSeconds(job, now = Date.now()) {
    const since = quarantineSince(job);
    return since === null ? null : Math.max(0, (now - parseTime(since)) / 1000);
  }

  // A run's place in time. Graph can report a run partially (cloud sync's last success comes
  // with no id and a 0001-01-01 timeBegan, but a real timeEnded): use whichever time it has.
  function runStart(run) {
    return run.timeBegan || run.timeEnded;
  }

  function runEnd(run) {
    return run.timeEnded || run.timeBegan;
  }

  function partialNote(run) {
    return run.activityIdentifier && run.timeBegan ? [] : [el('span', { class: 'muted', text: ' (partial record from Graph)' })];
  }

  function appName(item) {
    return item.servicePrincipalName || item.servicePrincipalId || '(unnamed)';
  }

  // ------------------------------------------------------------ the API

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail || (status ? `HTTP ${status}` : 'no answer'));
      this.status = status;
      this.detail = detail;
    }
  }

  // `path` is relative to this page (/api/v1/dashboard), so `jobs` is /api/v1/jobs on any host.
  // With several tenants every call about one tenant names it (`tenant=`); /tenants calls do not.
  async function api(path, ofTenant = true) {
    const headers = { Accept: 'application/json' };
    if (KEY) headers['x-functions-key'] = KEY;
    const url = ofTenant ? withTenant(path) : path;
    let response;
    try {
      response = await fetch(url, { headers, credentials: 'same-origin', cache: 'no-cache' });
    } catch {
      throw new ApiError(0, 'The API did not answer: the network or the app is down.');
    }
    if (!response.ok) {
      let detail = '';
      try {
        const body = await response.json();
        if (body && typeof body.detail === 'string') detail = body.detail;
      } catch {
        detail = '';
      }
      throw new ApiError(response.status, detail);
    }
    return response.json();
  }

  // A nextLink made same-origin and relative (the page may sit behind a proxy that renames hosts),
  // with no key in it even if an older API put one there.
  function sameOrigin(link) {
    return FunctionKey.withoutKey(link);
  }

  // The tenant the page's calls name: none with one tenant (the API's default), else the one
  // in the address (the list unknown yet: still the one asked for).
  function apiTenant() {
    if (state.tenants && state.tenants.length <= 1) return null;
    return state.route.tenant || null;
  }

  function withTenant(path) {
    const tenant = apiTenant();
    if (!tenant) return path;
    const url = new URL(path, window.location.href);
    if (!url.searchParams.has('tenant')) url.searchParams.set('tenant', tenant); // a nextLink has it
    return url.pathname + url.search;
  }

  async function allJobs() {
    const jobs = [];
    let page = await api('jobs');
    jobs.push(...page.value);
    for (let pages = 1; page.nextLink && pages < 50; pages += 1) {
      page = await api(sameOrigin(page.nextLink));
      jobs.push(...page.value);
    }
    return jobs;
  }

  async function openAlerts(query = '') {
    try {
      const body = await api(`alerts?status=open&top=1000${query}`);
      return { alerts: body.value, error: null };
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
        return { alerts: null, error: null }; // this app has no alerts endpoint
      }
      return { alerts: null, error };
    }
  }

  // ------------------------------------------------------------ status and errors

  function setStatus(text) {
    $('status').textContent = text;
  }

  function showError(error) {
    const box = $('error');
    box.replaceChildren();
    const status = error instanceof ApiError ? error.status : 0;
    let lead = 'The data could not be loaded.';
    if (status === 401) lead = 'You are not signed in, or the function key is missing or wrong.';
    if (status === 403) lead = 'You are signed in but may not read this API.';
    if (status === 503) lead = 'The app cannot read its data right now.';
    box.append(el('strong', { text: lead }), ' ', el('span', { text: error.message || '' }));
    if (status === 401) {
      box.append(' ', el('button', {
        type: 'button',
        class: 'button secondary',
        text: 'Sign in',
        onclick: () => {
          // Back to this view after signing in; the key stays in sessionStorage, never in this URL.
          const back = FunctionKey.withoutKey(window.location.href);
          window.location.assign(`/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(back)}`);
        },
      }));
    }
    box.hidden = false;
  }

  function clearError() {
    $('error').hidden = true;
    $('error').replaceChildren();
  }

  // ------------------------------------------------------------ refresh

  async function refresh() {
    if (state.loading) {
      state.pending = true;
      return;
    }
    state.loading = true;
    clearTimeout(state.timer);
    state.timer = null;
    setStatus('Refreshing…');
    let route = state.route;
    try {
      // The tenants first: which to name, and whether the picker shows (once with one tenant).
      const tenantsError = state.tenants === null || several() ? await loadTenants() : null;
      route = state.route; // loadTenants may have put the default tenant in, or a gone one out
      const view = currentView();
      if (view === 'tenants') {
        if (tenantsError) throw tenantsError;
        await loadTenantsView();
      } else if (view === 'job') {
        await loadJob(route);
      } else {
        await loadOverview();
      }
      state.lastUpdated = Date.now();
      clearError();
      setStatus(`Updated at ${clockFormat.format(new Date(state.lastUpdated))}; refreshes every minute`);
    } catch (error) {
      if (error instanceof TenantGone) {
        forgetTenant(error.tenant);
        state.pending = true; // again, for the view it falls back to
      } else {
        showError(error);
      }
      if (route.view === 'job' && state.route === route && !state.detail) {
        $('job-heading').textContent = error.status === 404 ? 'No such job' : 'The job could not be loaded';
      }
      const last = state.lastUpdated ? `; showing data from ${clockFormat.format(new Date(state.lastUpdated))}` : '';
      setStatus(`Refresh failed at ${clockFormat.format(new Date())}${last}`);
    } finally {
      state.loading = false;
      if (state.pending) {
        state.pending = false;
        refresh();
      } else {
        schedule();
      }
    }
  }

  function schedule(delay = REFRESH_MS) {
    clearTimeout(state.timer);
    state.timer = document.hidden ? null : setTimeout(refresh, delay);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(state.timer);
      state.timer = null;
      return;
    }
    const age = state.lastUpdated ? Date.now() - state.lastUpdated : Infinity;
    if (age >= REFRESH_MS) refresh();
    else schedule(REFRESH_MS - age);
  });

  // ------------------------------------------------------------ tenants: the picker, the overview

  // A tenant named in the address that the API no longer has (or no longer grants: the same 404).
  class TenantGone extends Error {
    constructor(tenant) {
      super(`no tenant ${tenant}`);
      this.tenant = tenant;
    }
  }

  function several() {
    return Boolean(state.tenants && state.tenants.length > 1);
  }

  function tenantId(tenant) {
    return String(tenant.tenantId || '').toLowerCase();
  }

  function tenantName(tenant) {
    return tenant.displayName || tenant.tenantId;
  }

  function findTenant(id) {
    return (state.tenants || []).find((tenant) => tenantId(tenant) === id) || null;
  }

  function tenantState(tenant) {
    const known = TENANT_STATE[tenant.state];
    return known ? [tenant.state, ...known] : [tenant.state, tenant.state || 'Unknown', 'h-unknown', ''];
  }

  function needsAttention(tenant) {
    return tenant.state !== 'healthy' && tenant.state !== 'disabled';
  }

  // This page with `tenant` in its query (none: the page's default) and `hash`; never a key.
  function pageUrl(tenant, hash) {
    const url = new URL(window.location.href);
    if (tenant) url.searchParams.set('tenant', tenant);
    else url.searchParams.delete('tenant');
    url.hash = hash || '';
    return FunctionKey.withoutKey(url.href);
  }

  function replaceUrl(url) {
    window.history.replaceState(window.history.state, '', url);
    state.handledHref = window.location.href;
    state.route = parseRoute();
  }

  // Which view the address asks for: with several tenants and none named, all of them.
  function currentView() {
    if (state.route.view === 'job') return 'job';
    return several() && !state.route.tenant ? 'tenants' : 'overview';
  }

  function applyView() {
    // Until the tenants are known (or could not be), no view: it may be all tenants or one.
    const view = state.tenants === null && !state.tenantsTried ? null : currentView();
    $('tenants-view').hidden = view !== 'tenants';
    $('overview-view').hidden = view !== 'overview';
    $('job-view').hidden = view !== 'job';
    renderPicker();
  }

  // GET /api/v1/tenants; returns the error instead of throwing (the other calls say it too).
  async function loadTenants() {
    let list;
    try {
      list = (await api('tenants', false)).value || [];
    } catch (error) {
      state.tenantsTried = true;
      if (!(error instanceof ApiError && (error.status === 404 || error.status === 405))) {
        applyView();
        return error;
      }
      list = []; // an app without /tenants: one tenant, as before
    }
    state.tenants = list;
    state.tenantsTried = true;
    const wanted = state.route.tenant;
    if (wanted && list.length && !findTenant(wanted)) {
      forgetTenant(wanted);
    } else if (several() && state.route.view === 'job' && !wanted) {
      // An old link to a job: the tenant the API answers for without one, named from now on.
      const home = list.find((tenant) => tenant.source === 'home') || list[0];
      replaceUrl(pageUrl(tenantId(home), window.location.hash));
    }
    applyView();
    return null;
  }

  // The tenant in the address is not there (any more): back to the default, and say so.
  function forgetTenant(tenant) {
    replaceUrl(pageUrl(null, ''));
    resetTenantData();
    applyView();
    const instead = several() ? 'showing all tenants instead' : 'showing this app\'s tenant instead';
    setNotice(`The tenant ${tenant.slice(0, 64)} is not watched here any more, or is not yours to see: ${instead}.`);
  }

  function setNotice(text) {
    $('notice').textContent = text;
    $('notice').hidden = !text;
  }

  // Another tenant: nothing of the last one stays on screen.
  function resetTenantData() {
    Object.assign(state, {
      jobs: [], jobsLoaded: false, summary: null, alerts: null, alertsError: null, overviewAt: 0,
      openReasons: new Set(), alertsExpanded: false, lastJobKey: null, detail: null,
    });
    for (const id of ['tiles', 'alerts', 'jobs-body', 'last-poll']) $(id).replaceChildren();
    $('jobs-count').textContent = '';
    $('jobs-empty').hidden = true;
    $('alerts-section').hidden = true;
    $('tenant-note').hidden = true;
  }

  function chooseTenant(tenant, hash = '') {
    setNotice('');
    window.history.pushState(null, '', pageUrl(tenant, hash));
    showRoute(Boolean(hash));
  }

  // A link that selects a tenant (and a view of it) in the page; a new tab or window opens it there.
  function tenantLink(tenant, hash, attrs) {
    return el('a', {
      ...attrs,
      href: pageUrl(tenant, hash),
      onclick: (event) => {
        if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        chooseTenant(tenant, hash);
        if (!hash) $('main').focus();
      },
    });
  }

  function renderPicker() {
    const show = several();
    $('tenant-pick').hidden = !show;
    const shown = show && state.route.tenant ? findTenant(state.route.tenant) : null;
    $('subtitle').textContent = !show ? 'Provisioning jobs of this tenant'
      : shown ? `Provisioning jobs of ${tenantName(shown)}` : `All ${state.tenants.length} tenants`;
    if (!show) return;
    const attention = state.tenants.filter(needsAttention).length;
    const options = [['', `All tenants (${state.tenants.length}${attention ? `, ${attention} need${attention === 1 ? 's' : ''} attention` : ''})`]];
    for (const tenant of state.tenants) {
      const [key, label] = tenantState(tenant);
      options.push([tenantId(tenant), `${tenantName(tenant)}${key === 'healthy' ? '' : ` (${label.toLowerCase()})`}`]);
    }
    const select = $('tenant-select');
    const key = JSON.stringify(options);
    if (key !== state.pickerKey) { // rebuilt only when it changed: an open list stays open
      state.pickerKey = key;
      select.replaceChildren(...options.map(([value, text]) => el('option', { value, text })));
    }
    select.value = state.route.tenant || '';
  }

  // On a tenant's own page: what its state means, when it is not healthy.
  function renderTenantNote() {
    const note = $('tenant-note');
    const tenant = several() && state.route.tenant ? findTenant(state.route.tenant) : null;
    if (tenant && state.route.view === 'overview') document.title = `${tenantName(tenant)}: Entra Sync Monitor`;
    if (!tenant || tenant.state === 'healthy') {
      note.hidden = true;
      return;
    }
    const [key, label, cls, meaning] = tenantState(tenant);
    note.className = `tenant-note st-${key}`;
    note.replaceChildren(el('span', { class: `badge ${cls}`, text: label }), ' ', `${tenantName(tenant)}: ${meaning}`);
    note.hidden = false;
  }

  async function loadTenantsView() {
    state.tenantsSummary = await api('tenants/summary', false);
    state.tenantsViewAt = Date.now();
    renderTenantsView();
  }

  function counted(counts, order, label) {
    const known = order.filter((key) => counts[key]);
    const rest = Object.keys(counts).filter((key) => counts[key] && !order.includes(key)).sort();
    return [...known, ...rest].map((key) => `${fmtNumber(counts[key])} ${label(key)}`).join(', ');
  }

  function renderTenantsView() {
    const summary = state.tenantsSummary;
    const tenants = state.tenants || [];
    if (!summary) return;
    const stateLabel = (key) => (TENANT_STATE[key] ? TENANT_STATE[key][0].toLowerCase() : key);
    const healthLabel = (key) => (HEALTH_LABEL[key] || key).toLowerCase();
    const count = summary.tenants.count;
    $('tenants-count').textContent = `${count} tenant${count === 1 ? '' : 's'}: ${counted(summary.tenants.byState, TENANT_STATES, stateLabel)}`;
    const jobs = summary.jobs;
    $('tenants-jobs').textContent = `${fmtNumber(jobs.total)} job${jobs.total === 1 ? '' : 's'} in all`
      + (jobs.total ? `: ${counted(jobs.byHealth, HEALTH.map(([key]) => key), healthLabel)}.` : '.');
    const attention = new Set((summary.attention || []).map(tenantId));
    $('tenants-body').replaceChildren(...tenants.map((tenant) => tenantRow(tenant, attention.has(tenantId(tenant)))));

    const quarantined = summary.quarantinedJobs || [];
    $('tq-body').replaceChildren(...quarantined.map(quarantinedRow));
    $('tq-wrap').hidden = !quarantined.length;
    $('tq-empty').hidden = quarantined.length > 0;
    const more = jobs.quarantined > quarantined.length ? `, the ${quarantined.length} longest shown` : '';
    $('tq-count').textContent = `${fmtNumber(jobs.quarantined)} in quarantine${more}`;
    document.title = 'All tenants: Entra Sync Monitor';
  }

  function tenantRow(tenant, attention) {
    const id = tenantId(tenant);
    const [key, label, cls, meaning] = tenantState(tenant);
    const poll = tenant.lastPoll;
    const jobs = tenant.jobs || { total: 0, byHealth: {}, quarantined: 0 };
    const byHealth = counted(jobs.byHealth || {}, HEALTH.map(([health]) => health), (health) => (HEALTH_LABEL[health] || health).toLowerCase());
    const errors = poll && poll.errorCount ? `, ${poll.errorCount} error${poll.errorCount === 1 ? '' : 's'}` : '';
    return el('tr', { class: attention ? 'attention' : null, 'data-tenant': id, 'data-state': key },
      cell('Tenant', null,
        tenantLink(id, '', { class: 'tenant-link', text: tenantName(tenant) }),
        el('span', { class: 'sub mono', text: [tenant.displayName ? id : '', tenant.source === 'home' ? 'home tenant' : ''].filter(Boolean).join(' · ') })),
      cell('State', null,
        el('span', { class: `badge ${cls}`, text: label }),
        attention ? hidden(' (needs attention)') : null,
        key === 'healthy' ? null : el('span', { class: 'sub state-why', text: meaning })),
      cell('Jobs', 'num', fmtNumber(jobs.total)),
      cell('By health', null, ...(byHealth ? [byHealth] : none('no jobs'))),
      cell('Quarantined', 'num', fmtNumber(jobs.quarantined)),
      cell('Last poll', null, ...(poll
        ? [el('span', { class: 'poll-status', text: `${poll.status}${errors}` }), timeEl(poll.endedAt || poll.startedAt, { relative: true, cls: 'sub' })]
        : none('never'))),
      cell('First error', 'first-error', ...(poll && poll.firstError
        ? [el('span', { title: poll.firstError, text: poll.firstError })]
        : none())));
  }

  function quarantinedRow(job) {
    const id = String(job.tenantId || '').toLowerCase();
    const tenant = findTenant(id);
    const seconds = job.secondsInQuarantine;
    return el('tr', { 'data-tenant': id },
      cell('Tenant', null, tenantLink(id, '', { text: tenant ? tenantName(tenant) : id })),
      cell('Application', null, tenantLink(id, jobHash(job.servicePrincipalId, job.jobId), { class: 'app-link', text: appName(job) })),
      cell('Job', null,
        el('span', { class: 'template', text: job.templateId || '—' }),
        el('span', { class: 'sub mono job-id', title: job.jobId, text: job.jobId })),
      cell('Reason', 'reason', job.reason || '—'),
      cell('In quarantine', 'num', ...(seconds === null || seconds === undefined ? none('unknown')
        : [el('span', { title: job.since ? `since ${job.since}` : null, text: fmtSpan(seconds) })])),
      cell('Next attempt', null, ...(job.nextAttempt ? [timeEl(job.nextAttempt, { relative: true })] : none())));
  }

  // ------------------------------------------------------------ overview

  async function loadOverview() {
    // Each part shows what it could read; the first failure is reported after.
    const tenant = apiTenant();
    const [summary, jobs, alerts] = await Promise.allSettled([api('summary'), allJobs(), openAlerts()]);
    if (apiTenant() !== tenant) return; // another tenant was chosen meanwhile
    if (tenant && summary.status === 'rejected' && summary.reason.status === 404) throw new TenantGone(tenant);
    if (summary.status === 'fulfilled') state.summary = summary.value;
    if (jobs.status === 'fulfilled') {
      state.jobs = jobs.value;
      state.jobsLoaded = true;
    }
    if (alerts.status === 'fulfilled') {
      state.alerts = alerts.value.alerts;
      state.alertsError = alerts.value.error;
    }
    renderOverview();
    const failed = [summary, jobs].find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    state.overviewAt = Date.now();
  }

  function renderOverview() {
    renderTenantNote();
    renderTiles();
    renderAlerts();
    renderJobs();
  }

  function renderTiles() {
    const summary = state.summary;
    if (!summary && !state.jobs.length) return;
    // The summary's counts; until it answers, the table's.
    const byHealth = summary ? summary.jobs.byHealth || {} : {};
    if (!summary) for (const job of state.jobs) byHealth[job.health] = (byHealth[job.health] || 0) + 1;
    const total = summary ? summary.jobs.total : state.jobs.length;
    const tile = (health, label, count) => {
      const pressed = state.filterHealth === health;
      return el('li', null, el('button', {
        type: 'button',
        class: `tile t-${health || 'all'}`,
        'aria-pressed': pressed ? 'true' : 'false',
        'data-health': health,
        onclick: () => setHealthFilter(pressed ? '' : health),
      }, el('span', { class: 'tile-count', text: fmtNumber(count) }), el('span', { class: 'tile-label', text: label })));
    };
    $('tiles').replaceChildren(
      tile('', 'All jobs', total),
      ...HEALTH.map(([health, label]) => tile(health, label, byHealth[health] || 0)),
    );
    const poll = summary ? summary.lastPoll : undefined;
    const lastPoll = $('last-poll');
    lastPoll.replaceChildren();
    if (poll === undefined) return;
    if (!poll) {
      lastPoll.append('No poll has been recorded yet.');
    } else {
      const errors = poll.errorCount ? `, ${poll.errorCount} error${poll.errorCount === 1 ? '' : 's'}` : '';
      lastPoll.append(`Last poll ${poll.status}${errors}, `, timeEl(poll.endedAt || poll.startedAt, { relative: true }));
    }
  }

  function alertItem(alert, withJob) {
    const severity = SEVERITY_RANK[alert.severity] === undefined ? 'info' : alert.severity;
    const heading = el('p', { class: 'alert-title' });
    if (withJob) {
      heading.append(el('a', { href: jobHash(alert.servicePrincipalId, alert.jobId), text: appName(alert) }), ': ');
    }
    heading.append(el('strong', { text: alert.title }), ' ',
      el('span', { class: 'muted alert-meta' }, '· opened ', timeEl(alert.openedAt, { relative: true })));
    if (alert.mutedUntil) heading.append(el('span', { class: 'muted alert-meta' }, ' · muted until ', timeEl(alert.mutedUntil)));
    return el('li', { class: `alert sev-${severity}` },
      el('span', { class: 'sev', text: severity.charAt(0).toUpperCase() + severity.slice(1) }),
      el('div', { class: 'alert-body' }, heading, el('p', { class: 'alert-summary', title: alert.summary, text: alert.summary })));
  }

  function sortAlerts(alerts) {
    return [...alerts].sort((a, b) => (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9)
      || String(b.openedAt).localeCompare(String(a.openedAt)));
  }

  function renderAlerts() {
    const section = $('alerts-section');
    if (state.alerts === null && !state.alertsError) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    const list = $('alerts');
    const empty = $('alerts-empty');
    if (state.alertsError) {
      list.replaceChildren();
      empty.hidden = false;
      empty.textContent = `The alerts could not be read: ${state.alertsError.message}`;
      $('alerts-count').textContent = '';
      return;
    }
    const alerts = sortAlerts(state.alerts);
    const shown = state.alertsExpanded ? ALERTS_SHOWN : ALERTS_FOLDED;
    list.replaceChildren(...alerts.slice(0, shown).map((alert) => alertItem(alert, true)));
    empty.hidden = alerts.length > 0;
    empty.textContent = 'No open alerts.';
    const more = alerts.length > ALERTS_SHOWN ? `, the ${ALERTS_SHOWN} most severe shown` : '';
    $('alerts-count').textContent = `${alerts.length} open${more}`;
    const toggle = $('alerts-toggle');
    toggle.hidden = alerts.length <= ALERTS_FOLDED;
    toggle.setAttribute('aria-expanded', state.alertsExpanded ? 'true' : 'false');
    toggle.textContent = state.alertsExpanded
      ? `Show the ${ALERTS_FOLDED} most severe only`
      : `Show all ${Math.min(alerts.length, ALERTS_SHOWN)} open alerts`;
  }

  function setHealthFilter(health) {
    state.filterHealth = health;
    $('filter-health').value = health;
    renderTiles();
    renderJobs();
  }

  function matches(job, text, health) {
    if (health && job.health !== health) return false;
    if (!text) return true;
    const haystack = [
      job.servicePrincipalName, job.jobId, job.templateId, job.statusCode, HEALTH_LABEL[job.health] || job.health,
    ].join('\u0000').toLowerCase();
    return haystack.includes(text);
  }

  function sortValue(job, key, now) {
    switch (key) {
      case 'name': return (job.servicePrincipalName || '').toLowerCase();
      case 'template': return (job.templateId || '').toLowerCase() || null;
      case 'health': return HEALTH_RANK[job.health] ?? HEALTH.length;
      case 'status': return (job.statusCode || '').toLowerCase() || null;
      case 'lastRun': return parseTime(job.lastExecution && runStart(job.lastExecution));
      case 'escrowed': return job.lastExecution ? job.lastExecution.countEscrowed ?? null : null;
      case 'quarantine': return quarantineSeconds(job, now);
      default: return null;
    }
  }

  function compareJobs(key, dir, now) {
    const sign = dir === 'desc' ? -1 : 1;
    return (a, b) => {
      const x = sortValue(a, key, now);
      const y = sortValue(b, key, now);
      if (x === null && y !== null) return 1; // nothing to compare sorts last, either way
      if (y === null && x !== null) return -1;
      if (x !== null && y !== null && x !== y) return (x < y ? -1 : 1) * sign;
      const byName = (a.servicePrincipalName || '').localeCompare(b.servicePrincipalName || '');
      return byName || a.jobId.localeCompare(b.jobId);
    };
  }

  function visibleJobs(now) {
    const text = state.filterText.trim().toLowerCase();
    return state.jobs
      .filter((job) => matches(job, text, state.filterHealth))
      .sort(compareJobs(state.sort.key, state.sort.dir, now));
  }

  // A cell holds one wrapper: on a phone the cell is a grid of its label and that wrapper.
  function cell(label, cls, ...content) {
    return el('td', { 'data-label': label, role: 'cell', class: cls || null }, el('div', { class: 'cell' }, ...content));
  }

  function jobRow(job, now) {
    const key = jobKey(job);
    const last = job.lastExecution;
    const health = [badge(job.health)];
    if (job.healthReasons && job.healthReasons.length) {
      health[0].setAttribute('title', job.healthReasons.join('\n'));
      const details = el('details', { class: 'why', 'data-key': key },
        el('summary', null, 'Why', hidden(`: ${HEALTH_LABEL[job.health] || job.health}, ${appName(job)}`)),
        el('ul', null, job.healthReasons.map((reason) => el('li', { text: reason }))));
      details.open = state.openReasons.has(key);
      details.addEventListener('toggle', () => {
        if (details.open) state.openReasons.add(key);
        else state.openReasons.delete(key);
      });
      health.push(details);
    }
    const lastRun = last
      ? [stateLabel(last.state), timeEl(runStart(last), { relative: true, cls: 'sub' })]
      : [el('span', { class: 'muted', text: 'never' })];
    const escrowed = last ? last.countEscrowed : null;
    const quarantine = quarantineSeconds(job, now);
    return el('tr', { 'data-key': key, role: 'row' },
      cell('Application', null,
        el('a', { href: jobHash(job.servicePrincipalId, job.jobId), class: 'app-link', 'data-key': key, text: appName(job) })),
      cell('Job', null,
        el('span', { class: 'template', text: job.templateId || '—' }),
        el('span', { class: 'sub mono job-id', title: job.jobId, text: job.jobId })),
      cell('Health', null, ...health),
      cell('Status', null, job.statusCode || '—'),
      cell('Last run', null, ...lastRun),
      cell('Escrowed', escrowed ? 'num escrowed' : 'num',
        ...(escrowed === null || escrowed === undefined ? none() : [fmtNumber(escrowed)])),
      cell('In quarantine', 'num',
        ...(quarantine === null ? none('not quarantined') : [el('span', {
          class: 'quarantine-span',
          title: `since ${quarantineSince(job)}`,
          text: fmtSpan(quarantine),
        })])));
  }

  function renderJobs() {
    const now = Date.now();
    const body = $('jobs-body');
    // Keep the keyboard where it was across a re-render (a refresh, a filter change).
    const active = document.activeElement;
    const activeKey = active && body.contains(active) ? active.closest('[data-key]')?.getAttribute('data-key') : null;
    const activeKind = active && active.tagName === 'SUMMARY' ? 'summary' : 'link';
    const jobs = visibleJobs(now);
    body.replaceChildren(...jobs.map((job) => jobRow(job, now)));
    const total = state.jobs.length;
    $('jobs-count').textContent = !state.jobsLoaded ? '' : jobs.length === total
      ? `${total} job${total === 1 ? '' : 's'}`
      : `${jobs.length} of ${total} jobs shown`;
    const empty = $('jobs-empty');
    empty.hidden = jobs.length > 0 || !state.jobsLoaded;
    const tenant = several() && state.route.tenant ? findTenant(state.route.tenant) : null;
    empty.textContent = total ? 'No job matches these filters.'
      : tenant && tenant.lastPoll ? `No jobs are stored for ${tenantName(tenant)}: its last poll read none.`
        : 'No jobs are stored yet: the first poll has not run.';
    for (const th of document.querySelectorAll('#jobs-table th[data-sort]')) {
      const key = th.getAttribute('data-sort');
      const arrow = th.querySelector('.arrow');
      if (key === state.sort.key) {
        th.setAttribute('aria-sort', state.sort.dir === 'asc' ? 'ascending' : 'descending');
        arrow.textContent = state.sort.dir === 'asc' ? '▲' : '▼';
      } else {
        th.removeAttribute('aria-sort');
        arrow.textContent = '';
      }
    }
    if (activeKey) {
      const row = [...body.rows].find((r) => r.getAttribute('data-key') === activeKey);
      const target = row && (activeKind === 'summary' ? row.querySelector('summary') : row.querySelector('a'));
      if (target) target.focus();
    }
  }

  function sortBy(key) {
    if (state.sort.key === key) state.sort.dir = state.sort.dir === 'asc' ? 'desc' : 'asc';
    else state.sort = { key, dir: DESCENDING_FIRST.has(key) ? 'desc' : 'asc' };
    renderJobs();
  }

  // ------------------------------------------------------------ one job

  async function loadJob(route) {
    const path = jobPath(route.servicePrincipalId, route.jobId);
    const [detail, runs, alerts, errors] = await Promise.all([
      api(path),
      api(`${path}/executions?top=${CHART_RUNS}`),
      openAlerts(`&servicePrincipalId=${encodeURIComponent(route.servicePrincipalId)}&jobId=${encodeURIComponent(route.jobId)}`),
      jobErrors(path),
    ]);
    if (state.route !== route) return; // the reader moved on meanwhile
    state.detail = detail;
    state.runs = runs.value;
    state.runsMore = Boolean(runs.nextLink);
    state.jobAlerts = alerts.alerts;
    state.jobErrors = errors;
    renderJob();
  }

  function fact(term, ...value) {
    return el('div', null, el('dt', { text: term }), el('dd', null, ...value));
  }

  function renderJob() {
    const { job, events } = state.detail;
    document.title = `${appName(job)}: Entra Sync Monitor`;
    $('job-heading').textContent = appName(job);
    $('job-badge').replaceChildren(badge(job.health));
    $('job-sub').textContent = [job.templateId, job.jobId].filter(Boolean).join(' · ');
    $('job-reasons').replaceChildren(...(job.healthReasons || []).map((reason) => el('li', { text: reason })));

    const facts = [];
    facts.push(fact('Status', job.statusCode || '—'));
    const interval = job.scheduleIntervalSeconds ? `every ${fmtSpan(job.scheduleIntervalSeconds)}` : 'no interval';
    facts.push(fact('Schedule', `${job.scheduleState || 'unknown'}, ${interval}`));
    const last = job.lastExecution;
    facts.push(fact('Last run', ...(last
      ? [stateLabel(last.state), ' ', timeEl(runStart(last)), ' (', timeEl(runStart(last), { relative: true }), ')', ...partialNote(last)]
      : [el('span', { class: 'muted', text: 'never' })])));
    const success = job.lastSuccessfulExecution;
    facts.push(fact('Last success', ...(success
      ? ['ended ', timeEl(runEnd(success)), ' (', timeEl(runEnd(success), { relative: true }), ')', ...partialNote(success)]
      : none('never'))));
    facts.push(fact('Escrowed (last run)', last && last.countEscrowed !== null ? fmtNumber(last.countEscrowed) : '—'));
    facts.push(fact('Successive failures', fmtNumber(job.countSuccessiveCompleteFailures ?? 0)));
    const seconds = quarantineSeconds(job);
    if (seconds !== null) {
      const q = job.quarantine;
      facts.push(fact('In quarantine', `${fmtSpan(seconds)} (since `, timeEl(quarantineSince(job)), ')'));
      if (q.currentBegan && q.currentBegan !== quarantineSince(job)) facts.push(fact('This quarantine since', timeEl(q.currentBegan)));
      if (q.reason) facts.push(fact('Quarantine reason', q.reason));
      if (q.nextAttempt) facts.push(fact('Next attempt', timeEl(q.nextAttempt), ' (', timeEl(q.nextAttempt, { relative: true }), ')'));
      if (q.error && (q.error.code || q.error.message)) {
        facts.push(fact('Quarantine error', [q.error.code, q.error.message].filter(Boolean).join(': ')));
      }
    }
    const counts = Object.entries(job.synchronizedEntryCountByType || {});
    if (counts.length) {
      // SCIM types arrive as URNs (urn:ietf:params:scim:schemas:core:2.0:User): the last part reads.
      const text = counts.map(([type, n]) => `${type.split(':').pop() || type} ${fmtNumber(n)}`).join(' · ');
      facts.push(fact('Objects in sync', el('span', { title: counts.map(([type]) => type).join(', '), text })));
    }
    facts.push(fact('Observed since', timeEl(job.observedAt)));
    if (job.notObservedSince) {
      facts.push(fact('Not observed since', timeEl(job.notObservedSince), ' (', timeEl(job.notObservedSince, { relative: true }), ')',
        job.notObservedReason ? `: ${job.notObservedReason}` : ''));
    }
    facts.push(fact('Service principal', el('span', { class: 'mono', text: job.servicePrincipalId })));
    if (job.anomalies && job.anomalies.length) facts.push(fact('Unreadable fields', job.anomalies.join(', ')));
    $('job-facts').replaceChildren(...facts);

    renderChart();
    renderRunsTable();
    $('timeline').replaceChildren(...events.map(eventItem));
    $('timeline-empty').hidden = events.length > 0;

    renderErrors();

    const jobAlerts = state.jobAlerts;
    $('job-alerts-section').hidden = !(jobAlerts && jobAlerts.length);
    $('job-alerts').replaceChildren(...sortAlerts(jobAlerts || []).map((alert) => alertItem(alert, false)));
  }

  function eventItem(event) {
    const label = (value) => (value && HEALTH_LABEL[value]) || value;
    const change = event.previous || event.current
      ? el('span', { class: 'change' }, label(event.previous) || 'none', ' → ', label(event.current) || 'none')
      : null;
    return el('li', { class: `event k-${event.kind}` },
      timeEl(event.at, { cls: 'event-time' }),
      el('div', { class: 'event-body' },
        el('strong', { text: EVENT_LABEL[event.kind] || event.kind }), change ? ': ' : null, change,
        event.detail ? el('p', { class: 'muted', text: event.detail }) : null,
        event.actor ? el('p', { class: 'muted event-actor' }, auditText(event)) : null));
  }

  // Who made a write through the API, and why (the audit trail; text only, never markup).
  function auditText(event) {
    const who = event.actor.name || event.actor.objectId || 'unknown caller';
    const id = event.actor.objectId && event.actor.name ? ` (${event.actor.objectId})` : '';
    return `by ${who}${id}` + (event.reason ? ` — “${event.reason}”` : '');
  }

  function renderRunsTable() {
    $('runs-body').replaceChildren(...state.runs.map((run) => el('tr', null,
      el('td', null, timeEl(run.timeBegan)),
      el('td', null, stateLabel(run.state)),
      el('td', { class: 'num', text: fmtNumber(run.countImported) }),
      el('td', { class: 'num', text: fmtNumber(run.countExported) }),
      el('td', { class: 'num', text: fmtNumber(run.countEscrowed) }),
      el('td', { text: run.error ? [run.error.code, run.error.message].filter(Boolean).join(': ') : '' }))));
  }

  // ------------------------------------------------------------ errors from the provisioning logs

  // The job's error groups (GET .../errors); a failure here never hides the rest of the page.
  async function jobErrors(path) {
    try {
      return { body: await api(`${path}/errors?window=${ERRORS_WINDOW}`), error: null };
    } catch (error) {
      return { body: null, error };
    }
  }

  function renderErrors() {
    const note = $('errors-note');
    const list = $('error-groups');
    list.replaceChildren();
    const { body, error } = state.jobErrors || {};
    if (!body) {
      const status = error instanceof ApiError ? error.status : 0;
      note.textContent = status === 404 || status === 405
        ? 'This app does not serve error groups from the provisioning logs.'
        : `The error groups could not be loaded${error && error.message ? `: ${error.message}` : '.'}`;
      return;
    }
    const collection = body.collection || {};
    const groups = [...(body.value || [])].sort((a, b) => (b.count || 0) - (a.count || 0)
      || String(b.lastSeen || '').localeCompare(String(a.lastSeen || '')));
    const lines = [];
    if (collection.mode === 'off') {
      lines.push('Collection is off: set PROVISIONING_LOGS to counts or samples, and grant the app '
        + `${LOG_PERMISSIONS} on Microsoft Graph, to see why objects fail.`);
    } else if (collection.status === 'notPermitted') {
      lines.push('Graph refused to give the provisioning logs: grant the app '
        + `${LOG_PERMISSIONS} (application permissions on Microsoft Graph, with admin consent).`);
    } else if (collection.status === 'error') {
      lines.push('The last poll could not read the provisioning logs; the groups below may be behind.');
    }
    if (!groups.length) {
      if (collection.mode !== 'off') lines.push('No failed, skipped or warning events in the last 7 days.');
    } else {
      const events = groups.reduce((sum, group) => sum + (Number(group.count) || 0), 0);
      lines.push(`${fmtNumber(events)} event${events === 1 ? '' : 's'} in ${groups.length} group${groups.length === 1 ? '' : 's'}`
        + ' (failed, skipped or warning) in the last 7 days, most events first. Days are UTC.');
    }
    note.textContent = lines.join(' ');
    list.append(...groups.map((group) => errorGroupItem(group, windowDays(body.window, groups))));
  }

  // The UTC days of the window ("2026-11-23" .. "2026-11-30"), or the groups' days without one.
  function windowDays(window, groups) {
    const from = parseTime(window && window.from);
    const to = parseTime(window && window.to);
    if (from !== null && to !== null && to >= from) {
      const days = [];
      const day = new Date(from);
      day.setUTCHours(0, 0, 0, 0);
      for (; day.getTime() <= to && days.length < 400; day.setUTCDate(day.getUTCDate() + 1)) {
        days.push(day.toISOString().slice(0, 10));
      }
      return days;
    }
    return [...new Set(groups.flatMap((group) => Object.keys(group.days || {})))].sort();
  }

  function errorGroupItem(group, days) {
    const [label, cls] = ERROR_STATUS[group.status] || [group.status || 'Unknown', 'h-unknown'];
    const count = Number(group.count) || 0;
    const samples = group.samples || [];
    return el('li', { class: 'error-group', 'data-code': group.errorCode || '' },
      el('div', { class: 'error-head' },
        el('span', { class: `badge ${cls}`, text: label }),
        el('strong', { class: 'error-code', text: group.errorCode || '(no error code)' }),
        el('span', { class: 'error-action', text: group.action ? `on ${group.action}` : '' }),
        el('span', { class: 'error-count', text: `${fmtNumber(count)} event${count === 1 ? '' : 's'}` })),
      el('p', { class: 'error-seen muted' }, 'First seen ', timeEl(group.firstSeen), ', last seen ', timeEl(group.lastSeen),
        group.errorCategory ? ` · ${group.errorCategory}` : ''),
      group.reason ? el('p', { class: 'error-reason', text: group.reason }) : null,
      trend(group, days),
      samples.length
        ? el('div', { class: 'error-samples' },
          el('span', { class: 'muted', text: 'Examples: ' }),
          el('ul', null, ...samples.map((sample) => el('li', null, sampleLink(sample)))))
        : null);
  }

  // Events per UTC day as a row of bars; the same numbers as text for screen readers.
  function trend(group, days) {
    const counts = days.map((day) => Number((group.days || {})[day]) || 0);
    const max = Math.max(1, ...counts);
    const text = `Events per day: ${days.map((day, i) => `${utcDayFormat.format(new Date(`${day}T00:00:00Z`))} ${fmtNumber(counts[i])}`).join(', ')}`;
    const bar = 10;
    const gap = 3;
    const height = 28;
    const width = Math.max(bar, days.length * (bar + gap) - gap);
    const chart = svg('svg', {
      viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': text, class: 'trend',
    }, svg('title', { text }));
    days.forEach((day, i) => {
      const h = counts[i] ? Math.max(2, Math.round((counts[i] / max) * (height - 2))) : 1;
      chart.append(svg('rect', {
        x: i * (bar + gap), y: height - h, width: bar, height: h,
        class: counts[i] ? 'trend-bar' : 'trend-bar zero', 'data-day': day, 'data-count': counts[i],
      }));
    });
    return chart;
  }

  function isEntra(system) {
    return typeof system === 'string' && ENTRA_SYSTEMS.has(system.trim().toLowerCase());
  }

  // The side of an example that is an object of this tenant's Entra ID: the source when it came
  // from Entra ID (outbound apps; cross-tenant sync, pushed by the source tenant, so its target is
  // another tenant's object), else the target when it went to Entra ID (HR and other inbound jobs,
  // whose source id is the HR system's). Neither when Graph named no system (older examples).
  function entraSide(sample) {
    if (isEntra(sample.sourceSystem)) return 'source';
    if (isEntra(sample.targetSystem)) return 'target';
    return null;
  }

  // An example object, linked to the Entra admin center when its Entra side is a user or group
  // with a GUID; otherwise its name only. The title tells both sides.
  function sampleLink(sample) {
    const type = String(sample.identityType || '').toLowerCase();
    const side = entraSide(sample);
    const id = side === 'source' ? sample.sourceId : side === 'target' ? sample.targetId : null;
    const names = side === 'target'
      ? [sample.targetDisplayName, sample.sourceDisplayName]
      : [sample.sourceDisplayName, sample.targetDisplayName];
    const name = names.find(Boolean) || sample.sourceId || sample.targetId || '(unnamed)';
    const when = sample.activityDateTime ? [' (', timeEl(sample.activityDateTime), ')'] : [];
    const ends = [['from', sample.sourceSystem, sample.sourceId], ['to', sample.targetSystem, sample.targetId]]
      .filter(([, system, objectId]) => system || objectId)
      .map(([word, system, objectId]) => [word, system, objectId].filter(Boolean).join(' '));
    const title = [sample.identityType, ...ends].filter(Boolean).join(', ') || null;
    if (!ENTRA_OBJECT[type] || typeof id !== 'string' || !GUID.test(id)) return [el('span', { title, text: name }), ...when];
    const system = side === 'source' ? sample.sourceSystem : sample.targetSystem;
    return [el('a', {
      href: `${ENTRA_OBJECT[type]}${encodeURIComponent(id)}`,
      target: '_blank',
      rel: 'noopener noreferrer',
      class: 'sample-link',
      'data-side': side,
      title,
      text: name,
    }), hidden(` (${sample.identityType} in ${system}, opens the Entra admin center in a new tab)`), ...when];
  }

  // ------------------------------------------------------------ the chart (inline SVG)

  function niceCeiling(value) {
    if (value <= 0) return 1;
    const power = 10 ** Math.floor(Math.log10(value));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  // Ticks at whole local hours or days, at most `most` of them, inside [t0, t1].
  function timeTicks(t0, t1, most) {
    const hour = 3_600_000;
    const steps = [1, 2, 3, 6, 12, 24, 48, 168, 336, 720, 2160].map((h) => h * hour);
    const step = steps.find((candidate) => (t1 - t0) / candidate <= most) || steps[steps.length - 1];
    const daily = step >= 24 * hour;
    const start = new Date(t0);
    start.setMinutes(0, 0, 0);
    if (daily) start.setHours(0);
    const ticks = [];
    for (let date = start; date.getTime() <= t1;) {
      const t = date.getTime();
      if (t >= t0 && (daily || date.getHours() % (step / hour) === 0)) ticks.push({ t, daily });
      // step on the local clock, so ticks stay on round times across a DST change
      date = new Date(date);
      if (daily) date.setDate(date.getDate() + 1);
      else date.setHours(date.getHours() + 1);
    }
    if (!daily) return ticks;
    const every = Math.round(step / (24 * hour)); // days between ticks
    return ticks.filter((_, index) => index % every === 0);
  }

  function compactNumber(value) {
    if (Math.abs(value) >= 1e9) return `${+(value / 1e9).toPrecision(3)}G`;
    if (Math.abs(value) >= 1e6) return `${+(value / 1e6).toPrecision(3)}M`;
    if (Math.abs(value) >= 1e4) return `${+(value / 1e3).toPrecision(3)}k`;
    return numberFormat.format(value);
  }

  function marker(shape, x, y, size) {
    if (shape === 'square') return svg('rect', { x: x - size, y: y - size, width: size * 2, height: size * 2 });
    if (shape === 'diamond') {
      const s = size * 1.35;
      return svg('path', { d: `M${x} ${y - s}L${x + s} ${y}L${x} ${y + s}L${x - s} ${y}Z` });
    }
    return svg('circle', { cx: x, cy: y, r: size });
  }

  function renderLegend() {
    const swatch = (series) => svg('svg', { width: 28, height: 12, 'aria-hidden': 'true', class: `swatch ${series.cls}` },
      svg('line', { x1: 1, y1: 6, x2: 27, y2: 6, class: 'line' }),
      svg('g', { class: 'points' }, marker(series.marker, 14, 6, 3.5)));
    $('chart-legend').replaceChildren(
      ...SERIES.map((series) => el('li', null, swatch(series), series.label)),
      el('li', null, svg('svg', { width: 28, height: 12, 'aria-hidden': 'true', class: 'swatch' },
        svg('rect', { x: 11, y: 0, width: 6, height: 12, class: 'failed-band' }),
        svg('line', { x1: 14, y1: 0, x2: 14, y2: 12, class: 'failed-line' })), 'Failed run'),
    );
  }

  function renderChart() {
    const container = $('chart');
    container.replaceChildren();
    renderLegend();
    const runs = state.runs
      .map((run) => ({ run, t: parseTime(run.timeBegan) }))
      .filter((point) => point.t !== null)
      .sort((a, b) => a.t - b.t);
    const failed = runs.filter((point) => point.run.state === 'Failed').length;
    const note = $('chart-note');
    if (!runs.length) {
      note.textContent = 'No runs are stored for this job yet.';
      $('chart-legend').replaceChildren();
      return;
    }
    const first = new Date(runs[0].t);
    const lastRun = new Date(runs[runs.length - 1].t);
    note.textContent = `${runs.length} run${runs.length === 1 ? '' : 's'}${state.runsMore ? ` (the latest ${CHART_RUNS})` : ''}`
      + ` from ${dateTimeFormat.format(first)} to ${dateTimeFormat.format(lastRun)}; ${failed} failed.`;

    const log = $('chart-log').checked;
    const width = Math.max(280, Math.floor(container.clientWidth || 800));
    const narrow = width < 520;
    const height = narrow ? 240 : 300;
    const m = { top: 16, right: narrow ? 14 : 24, bottom: 44, left: narrow ? 46 : 60 };
    const plotWidth = width - m.left - m.right;
    const plotHeight = height - m.top - m.bottom;
    let t0 = runs[0].t;
    let t1 = runs[runs.length - 1].t;
    if (t1 - t0 < 60_000) {
      t0 -= 1_800_000;
      t1 += 1_800_000;
    }
    const pad = (t1 - t0) * 0.02;
    t0 -= pad;
    t1 += pad;
    let max = 0;
    for (const { run } of runs) for (const s of SERIES) max = Math.max(max, Number(run[s.key]) || 0);
    // Counts are whole: four steps of a whole, round size (linear), or powers of ten (log).
    const step = Math.max(1, niceCeiling(max / 4));
    const top = log ? Math.max(1, Math.ceil(Math.log10(max + 1))) : step * 4;
    const scaled = (value) => (log ? Math.log10(value + 1) : value);
    const x = (t) => m.left + ((t - t0) / (t1 - t0)) * plotWidth;
    const y = (value) => m.top + plotHeight - (scaled(value) / top) * plotHeight;

    const chart = svg('svg', {
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: 'img',
      'aria-labelledby': 'chart-title chart-desc',
      class: 'chart-svg',
      'data-runs': runs.length,
    });
    chart.append(
      svg('title', { id: 'chart-title', text: `Runs over time of ${appName(state.detail.job)}` }),
      svg('desc', {
        id: 'chart-desc',
        text: `${note.textContent} Lines: objects imported, exported and escrowed per run`
          + `${log ? ' (logarithmic scale)' : ''}. The runs are also listed in the table below the chart.`,
      }),
    );

    // y grid and labels
    const grid = svg('g', { class: 'grid', 'aria-hidden': 'true' });
    const ticks = log
      ? Array.from({ length: top + 1 }, (_, i) => 10 ** i - (i === 0 ? 1 : 0))
      : Array.from({ length: 5 }, (_, i) => step * i);
    for (const value of ticks) {
      const yy = y(value);
      grid.append(
        svg('line', { x1: m.left, x2: width - m.right, y1: yy, y2: yy }),
        svg('text', { x: m.left - 6, y: yy + 4, 'text-anchor': 'end', class: 'axis-label', text: compactNumber(value) }),
      );
    }
    // x ticks on round local times; the date under a time when the day changes
    let previousDay = null;
    for (const { t, daily } of timeTicks(t0, t1, narrow ? 4 : 8)) {
      const xx = x(t);
      const date = new Date(t);
      const day = axisDateFormat.format(date);
      const label = svg('text', { x: xx, y: height - 20, 'text-anchor': 'middle', class: 'axis-label' });
      if (daily) {
        label.textContent = day;
      } else {
        label.append(svg('tspan', { x: xx, text: axisTimeFormat.format(date) }));
        if (day !== previousDay) label.append(svg('tspan', { x: xx, dy: 13, text: day }));
      }
      previousDay = day;
      grid.append(svg('line', { x1: xx, x2: xx, y1: m.top + plotHeight, y2: m.top + plotHeight + 4, class: 'tick' }), label);
    }
    grid.append(svg('line', { x1: m.left, x2: width - m.right, y1: m.top + plotHeight, y2: m.top + plotHeight, class: 'axis' }));
    chart.append(grid);

    // failed runs: a band over the plot's height
    const failures = svg('g', { class: 'failures' });
    for (const { run, t } of runs) {
      if (run.state !== 'Failed') continue;
      const xx = x(t);
      const error = run.error ? `: ${[run.error.code, run.error.message].filter(Boolean).join(' - ')}` : '';
      failures.append(svg('g', { class: 'failed-mark' },
        svg('title', { text: `Failed run, ${dateTimeFormat.format(new Date(t))}${error}` }),
        svg('rect', { x: xx - 3, y: m.top, width: 6, height: plotHeight, class: 'failed-band' }),
        svg('line', { x1: xx, x2: xx, y1: m.top, y2: m.top + plotHeight, class: 'failed-line' })));
    }
    chart.append(failures);

    // series
    for (const series of SERIES) {
      const group = svg('g', { class: `series ${series.cls}`, 'data-series': series.key });
      let d = '';
      let pen = 'M';
      const points = svg('g', { class: 'points' });
      for (const { run, t } of runs) {
        const value = run[series.key];
        if (value === null || value === undefined) {
          pen = 'M';
          continue;
        }
        const xx = x(t).toFixed(1);
        const yy = y(Number(value)).toFixed(1);
        d += `${pen}${xx} ${yy}`;
        pen = 'L';
        const point = marker(series.marker, Number(xx), Number(yy), runs.length > 60 ? 2.2 : 3.5);
        point.setAttribute('class', 'point');
        point.append(svg('title', {
          text: `${series.label} ${fmtNumber(value)}, ${dateTimeFormat.format(new Date(t))}, ${run.state || 'unknown state'}`,
        }));
        points.append(point);
      }
      if (d) group.append(svg('path', { d, class: 'line' }));
      group.append(points);
      chart.append(group);
    }
    container.append(chart);
  }

  // ------------------------------------------------------------ routing

  // The view is in the hash (#job/<sp>/<job>, else the overview), the tenant in the query
  // (?tenant=<guid>, kept by key.js, which takes only ?code= out): each tenant's views link apart.
  function parseRoute() {
    const tenant = (new URL(window.location.href).searchParams.get('tenant') || '').trim().toLowerCase() || null;
    const match = /^#job\/([^/]+)\/([^/]+)$/.exec(window.location.hash);
    if (match) {
      try {
        return { view: 'job', tenant, servicePrincipalId: decodeURIComponent(match[1]), jobId: decodeURIComponent(match[2]) };
      } catch {
        // a malformed hash: the overview
      }
    }
    return { view: 'overview', tenant };
  }

  function showRoute(moveFocus) {
    state.handledHref = window.location.href;
    const route = parseRoute();
    if (route.tenant !== state.route.tenant) resetTenantData();
    state.route = route;
    clearError(); // an error belongs to the view that had it
    applyView();
    const job = route.view === 'job';
    if (job) {
      state.lastJobKey = `${route.servicePrincipalId}\u0000${route.jobId}`;
      state.detail = null;
      $('job-heading').textContent = 'Loading job…';
      for (const id of ['job-badge', 'job-reasons', 'job-facts', 'chart', 'chart-legend', 'runs-body', 'timeline']) {
        $(id).replaceChildren();
      }
      $('job-sub').textContent = '';
      $('chart-note').textContent = '';
      $('errors-note').textContent = '';
      $('error-groups').replaceChildren();
      state.jobErrors = null;
      $('job-alerts-section').hidden = true;
      if (moveFocus) $('job-heading').focus();
      refresh();
      return;
    }
    document.title = 'Entra Sync Monitor';
    if (currentView() === 'tenants') {
      if (state.tenantsSummary) renderTenantsView();
      if (moveFocus) $('tenants-heading').focus();
      if (Date.now() - state.tenantsViewAt >= REFRESH_MS) refresh();
      return;
    }
    if (state.jobs.length || state.summary) renderOverview();
    const stale = !state.summary || Date.now() - state.overviewAt >= REFRESH_MS;
    if (moveFocus && state.lastJobKey) {
      const link = [...document.querySelectorAll('#jobs-body a.app-link')]
        .find((a) => a.getAttribute('data-key') === state.lastJobKey);
      if (link) link.focus();
    }
    if (stale) refresh();
  }

  // ------------------------------------------------------------ start

  function start() {
    const select = $('filter-health');
    for (const [value, label] of HEALTH) select.append(el('option', { value, text: label }));
    $('filter-text').addEventListener('input', (event) => {
      state.filterText = event.target.value;
      renderJobs();
    });
    select.addEventListener('change', (event) => setHealthFilter(event.target.value));
    $('filter-clear').addEventListener('click', () => {
      state.filterText = '';
      $('filter-text').value = '';
      setHealthFilter('');
    });
    for (const th of document.querySelectorAll('#jobs-table th[data-sort]')) {
      th.querySelector('button').addEventListener('click', () => sortBy(th.getAttribute('data-sort')));
    }
    $('refresh-now').addEventListener('click', () => refresh());
    $('alerts-toggle').addEventListener('click', () => {
      state.alertsExpanded = !state.alertsExpanded;
      renderAlerts();
    });
    $('chart-log').addEventListener('change', () => {
      if (state.detail) renderChart();
    });
    let resizeTimer = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        if (state.route.view === 'job' && state.detail) renderChart();
      }, 150);
    });
    // Back and forward: a hash (a job) or a query (a tenant) changed; Chromium fires both events
    // for a hash, so the address decides whether there is anything to do.
    const moved = () => {
      if (window.location.href !== state.handledHref) showRoute(true);
    };
    window.addEventListener('popstate', moved);
    window.addEventListener('hashchange', moved);
    $('tenant-select').addEventListener('change', (event) => chooseTenant(event.target.value || null));
    showRoute(false);
  }

  start();
})();
