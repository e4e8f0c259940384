import { describeError } from '../../errors/kfarm-error.js';
import { readDashboardModel } from '../dashboard/read-dashboard-model.js';
import type { DashboardLive, DashboardWorker } from '../dashboard/dashboard-model.js';
import { localWorker } from '../dashboard/worker-roster.js';
import { defaultConcurrency } from '../../config/concurrency.js';
import type { KernelTarget } from '../../matrix/kernel-target.js';
import { DASHBOARD_CSP, renderDashboard } from '../dashboard/render-dashboard.js';
import { LOGIN_CSP, renderLogin } from '../dashboard/render-login.js';
import type { HeadersChangelog } from '../regressions/headers-changelog.js';
import { changelogRequest, headersChangelog } from '../regressions/headers-changelog.js';
import type { OpenRegression } from '../regressions/series-windows.js';
import { allows, presentedToken } from './auth.js';
import { readBody } from './request-body.js';
import type { ServiceDeps } from './service-deps.js';
import type { Route, RouteContext } from './route.js';

/**
 * The dashboard (docs/dashboard.md): the page, its JSON, and a login form that turns a token
 * into an HttpOnly cookie (a browser cannot send a bearer header by itself). Behind the same
 * tokens as the API: read scope.
 */
const html = (ctx: RouteContext, status: number, body: string, csp: string, headers: Record<string, string> = {}) => {
  ctx.res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': csp,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    ...headers,
  });
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body);
  return 'sent' as const;
};

/** the request's token, valid and allowed to read; else undefined (the page sends people to the login form) */
function reader(ctx: RouteContext) {
  const text = presentedToken(ctx.req);
  const token = text ? ctx.deps.db.tokens.verify(text) : undefined;
  return token && allows(token, 'read') ? token : undefined;
}

/** The changelog of each open regression, read once in the background (a container per read: too slow for a poll). */
const changelogs = new Map<string, HeadersChangelog | 'reading' | { failedAt: number }>();
/** a read that failed (Docker away) is tried again after this, not by every poll of every open page */
const RETRY_FAILED_MS = 5 * 60_000;
function changelogOf(deps: ServiceDeps, open: OpenRegression): HeadersChangelog | undefined {
  const request = changelogRequest(open.series, open.window);
  if (!request) return undefined;
  const key = JSON.stringify([open.series.module, open.series.release, open.series.arch, open.series.flavour, open.window.lastGood, open.window.firstBad]);
  const have = changelogs.get(key);
  if (have === 'reading') return undefined;
  if (have && 'failedAt' in have) {
    if (Date.now() - have.failedAt < RETRY_FAILED_MS) return undefined;
  } else if (have) return have;
  changelogs.set(key, 'reading');
  headersChangelog(deps.runtime, request).then(
    (c) => changelogs.set(key, c),
    (err: unknown) => {
      changelogs.set(key, { failedAt: Date.now() });
      deps.logger.warn({ err: describeError(err) }, 'could not read a regression window changelog');
    },
  );
  return undefined;
}

function live(deps: ServiceDeps): DashboardLive {
  const builds = deps.db.builds.unfinished().map((b) => ({ build: b, progress: deps.runner.feed(b.id)?.progress() }));
  const sum = (f: (p: { total: number; done: number; running: number; failed: number }) => number) => builds.reduce((n, b) => n + (b.progress ? f(b.progress) : 0), 0);
  const active = sum((p) => p.running);
  return {
    queue: { waiting: sum((p) => p.total - p.done - p.running), active, delayed: 0, failed: sum((p) => p.failed) },
    workers: deps.workers ? deps.workers() : [localWorkerOf(deps, active)],
    builds: builds.map(({ build, progress }) => ({ id: build.id, ...(build.module ? { module: build.module } : {}), done: progress?.done ?? 0, total: progress?.total ?? 0 })),
  };
}

/** the kernels this engine holds, for the local worker's row: read in the background, at most once a minute (a Docker call is too slow for every poll) */
const localKernels = new WeakMap<ServiceDeps, { at: number; kernels: KernelTarget[]; reading: boolean }>();
const LOCAL_KERNELS_MS = 60_000;

/** local mode: this process runs the builds (no REDIS_URL), so it is the farm's one worker */
function localWorkerOf(deps: ServiceDeps, running: number): DashboardWorker {
  const cache = localKernels.get(deps) ?? { at: 0, kernels: [], reading: false };
  localKernels.set(deps, cache);
  if (!cache.reading && Date.now() - cache.at > LOCAL_KERNELS_MS) {
    cache.reading = true;
    deps.listKernels().then(
      (kernels) => Object.assign(cache, { at: Date.now(), kernels, reading: false }),
      (err: unknown) => {
        Object.assign(cache, { at: Date.now(), reading: false });
        deps.logger.warn({ err: describeError(err) }, "could not list this engine's kernels for the dashboard");
      },
    );
  }
  return localWorker({
    host: deps.env.hostname,
    pid: process.pid,
    running,
    concurrency: deps.concurrency ?? defaultConcurrency(),
    kernels: cache.kernels,
    now: new Date().toISOString(),
  });
}

const model = (deps: ServiceDeps) => readDashboardModel(deps.db, { now: new Date().toISOString(), live: live(deps), changelog: (open) => changelogOf(deps, open) });

export const DASHBOARD_ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/',
    summary: 'The dashboard (HTML; a token as the kfarm_token cookie, from /login, or a bearer header; else a redirect to /login)',
    doc: { responses: { 200: { description: 'the page', content: { 'text/html': { schema: { type: 'string' } } } }, 303: { description: 'to /login' } } },
    handle: async (ctx) => {
      if (!reader(ctx)) {
        ctx.res.writeHead(303, { Location: '/login', 'Cache-Control': 'no-store' });
        ctx.res.end();
        return Promise.resolve('sent' as const);
      }
      return Promise.resolve(html(ctx, 200, renderDashboard(model(ctx.deps)), DASHBOARD_CSP));
    },
  },
  {
    method: 'GET',
    path: '/api/v1/dashboard',
    scope: 'read',
    summary: "The dashboard's model as JSON (docs/dashboard.md), what the page polls",
    doc: { responses: { 200: { description: 'the model', content: { 'application/json': { schema: { type: 'object' } } } } } },
    handle: async (ctx) => Promise.resolve({ status: 200, body: model(ctx.deps) }),
  },
  {
    method: 'GET',
    path: '/api/v1/workers',
    scope: 'read',
    summary: "The farm's workers (live, and those gone in the last day) and the queue's counts: the dashboard's live section without the builds",
    doc: {
      responses: {
        200: { description: 'workers and queue', content: { 'application/json': { schema: { $ref: '#/components/schemas/Workers' } } } },
        401: { description: 'no token', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        403: { description: 'the token may not read', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    },
    handle: async (ctx) => {
      const { queue, workers } = live(ctx.deps);
      return Promise.resolve({ status: 200, body: { queue, workers } });
    },
  },
  {
    method: 'GET',
    path: '/login',
    summary: 'The login form of the dashboard',
    doc: { responses: { 200: { description: 'the form', content: { 'text/html': { schema: { type: 'string' } } } } } },
    handle: async (ctx) => Promise.resolve(html(ctx, 200, renderLogin(), LOGIN_CSP)),
  },
  {
    method: 'POST',
    path: '/login',
    summary: 'Sign in with a token (form field token): an HttpOnly cookie, then 303 to the dashboard',
    doc: {
      requestBody: { required: true, content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { token: { type: 'string' } } } } } },
      responses: { 303: { description: 'signed in' }, 401: { description: 'the form again, with the reason' } },
    },
    handle: async (ctx) => {
      const form = new URLSearchParams((await readBody(ctx.req, 4096)).toString('utf8'));
      const text = (form.get('token') ?? '').trim();
      const token = /^[A-Za-z0-9_-]{1,200}$/.test(text) ? ctx.deps.db.tokens.verify(text) : undefined;
      if (!token || !allows(token, 'read')) return html(ctx, 401, renderLogin({ error: token ? 'this token may not read' : 'unknown token' }), LOGIN_CSP);
      const secure = 'encrypted' in ctx.req.socket || ctx.req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '';
      ctx.res.writeHead(303, { Location: '/', 'Set-Cookie': `kfarm_token=${text}; HttpOnly; SameSite=Strict; Path=/${secure}`, 'Cache-Control': 'no-store' });
      ctx.res.end();
      return 'sent';
    },
  },
];
