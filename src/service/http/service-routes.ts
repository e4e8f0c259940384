import { realpath } from 'node:fs/promises';
import { z } from 'zod';
import { isValidName } from '../../dkms/names.js';
import { sendFile } from '../../publish/serve-static.js';
import { readReport } from '../../report/read-report.js';
import { committedView } from '../../report/out-dir.js';
import { streamOutDirTar } from './out-dir-tar.js';
import { SCOPES, type BuildRow } from '../farm-db.js';
import { buildDir, isBuildId } from '../service-paths.js';
import { acceptSource, MAX_SOURCE_BYTES } from '../source-upload.js';
import { HttpError } from './http-error.js';
import { readBody, readJson } from './request-body.js';
import { DASHBOARD_ROUTES } from './dashboard-routes.js';
import { REGRESSION_ROUTES } from './regressions-routes.js';
import type { Route, RouteContext } from './route.js';
import { streamFeed } from './sse.js';

const json = (schema: string) => ({ content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } } });
const jsonArray = (schema: string) => ({ content: { 'application/json': { schema: { type: 'array', items: { $ref: `#/components/schemas/${schema}` } } } } });
const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [String(s), { description: ERROR_TEXT[s] ?? 'error', ...json('Error') }]));
const ERROR_TEXT: Record<number, string> = {
  400: 'bad input (the same refusals as kfarm build, exit 2)',
  401: 'no token, or not a valid one',
  403: "the token's scopes do not allow this",
  404: 'not found',
  408: 'the body stopped arriving',
  409: 'not in a state that allows this',
  413: 'the body is over the cap',
  503: "the farm's trouble (Docker, Redis, images)",
};
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const queryParam = (name: string, description: string) => ({ name, in: 'query', required: false, schema: { type: 'string' }, description });

const moduleName = (params: Record<string, string>): string => {
  const name = params.name ?? '';
  if (!isValidName('module name', name)) throw new HttpError(400, `"${name.slice(0, 64)}" is not a module name (PACKAGE_NAME: letters, digits, ._+-)`);
  return name;
};

const formatsOf = (value: string | null | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** `verify=load`, or nothing: the one load check there is */
const verifyOf = (value: string | null | undefined): { verify?: 'load' } => {
  if (value === null || value === undefined || value === '') return {};
  if (value !== 'load') throw new HttpError(400, `verify=${value.slice(0, 32)}: the one check there is is verify=load`);
  return { verify: 'load' };
};

/** `sign=true`: the module's builds are signed with the farm's key; refused where the farm has none */
const signOf = (value: string | null | undefined, farmCanSign: boolean): { sign?: true } => {
  if (value === null || value === undefined || value === '' || value === 'false') return {};
  if (value !== 'true') throw new HttpError(400, `sign=${value.slice(0, 32)}: sign=true or sign=false`);
  if (!farmCanSign)
    throw new HttpError(
      400,
      "this farm has no signing key, so it cannot sign the module's builds",
      'Start kfarm serve with --sign-key and --sign-cert (docs/serve.md), or register the module without sign=true.',
    );
  return { sign: true };
};

const KERNELS_MAX = 4096;
const kernelsOf = (value: string | null | undefined): string => {
  const v = (value ?? '').trim() || 'all';
  // eslint-disable-next-line no-control-regex -- a selector with control characters is refused, not passed on
  if (v.length > KERNELS_MAX || /[\0-\x1f]/.test(v)) throw new HttpError(400, 'the kernel selector is too long or holds control characters');
  return v;
};

function buildOf(ctx: RouteContext): BuildRow {
  const id = ctx.params.id ?? '';
  const build = isBuildId(id) ? ctx.deps.db.builds.get(id) : undefined;
  if (!build) throw new HttpError(404, `no build ${id.slice(0, 40)}`);
  return build;
}

async function outDirOf(ctx: RouteContext, build: BuildRow): Promise<string> {
  const out = buildDir(ctx.deps.paths, build.id).out;
  const real = await realpath(out).catch(() => undefined);
  if (!real) throw new HttpError(404, `build ${build.id} has no outputs (yet): it is ${build.state}`);
  return real;
}

const submitBody = z.object({
  module: z.string().min(1).max(128),
  kernels: z.string().max(KERNELS_MAX).optional(),
  formats: z.array(z.string().max(32)).max(16).optional(),
  verify: z.literal('load').optional(),
});
const tokenBody = z.object({ name: z.string().min(1).max(64), scopes: z.array(z.enum(SCOPES)).min(1) });

export const ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/api/v1/health',
    summary: 'Is the service up (no token needed)',
    doc: { responses: { 200: { description: 'up', ...json('Health') } } },
    handle: async () => Promise.resolve({ status: 200, body: { ok: true } }),
  },
  {
    method: 'GET',
    path: '/api/v1/kernels',
    scope: 'read',
    summary: 'The kernels the farm holds images for',
    doc: { responses: { 200: { description: 'held kernels', ...jsonArray('Kernel') }, ...errors(401, 403, 503) } },
    handle: async ({ deps }) => ({
      status: 200,
      body: (await deps.listKernels()).map((t) => ({ kernel: t.kernel, arch: t.arch, image: t.image, release: t.release ?? t.image })),
    }),
  },
  {
    method: 'GET',
    path: '/api/v1/archive/kernels',
    scope: 'read',
    summary: 'The kernels the watch has seen the archive offer, with when (first seen, gone since)',
    doc: { responses: { 200: { description: 'kernels seen', ...jsonArray('SeenKernel') }, ...errors(401, 403) } },
    handle: async ({ deps }) => Promise.resolve({ status: 200, body: deps.db.kernels.list() }),
  },
  {
    method: 'GET',
    path: '/api/v1/modules',
    scope: 'read',
    summary: 'The registered modules',
    doc: { responses: { 200: { description: 'modules', ...jsonArray('Module') }, ...errors(401, 403) } },
    handle: async ({ deps }) => Promise.resolve({ status: 200, body: deps.db.modules.list() }),
  },
  {
    method: 'GET',
    path: '/api/v1/modules/{name}',
    scope: 'read',
    summary: 'One registered module',
    doc: { parameters: [pathParam('name', 'PACKAGE_NAME')], responses: { 200: { description: 'the module', ...json('Module') }, ...errors(400, 401, 403, 404) } },
    handle: async (ctx) => {
      const row = ctx.deps.db.modules.get(moduleName(ctx.params));
      if (!row) throw new HttpError(404, `no module ${ctx.params.name ?? ''} is registered`);
      return Promise.resolve({ status: 200, body: row });
    },
  },
  {
    method: 'PUT',
    path: '/api/v1/modules/{name}',
    scope: 'submit',
    summary: 'Register a module, or update its source and settings: the body is its source as tar or tar.gz',
    doc: {
      parameters: [
        pathParam('name', 'PACKAGE_NAME; must match what dkms.conf assigns when it assigns a plain word'),
        queryParam('formats', 'package formats besides the DKMS tarballs, comma-separated (bmdeb,kmod-rpm,...)'),
        queryParam('kernels', 'the kernels its builds cover by default (a kernel selector; default all)'),
        queryParam('verify', 'load: its builds boot each built kernel and load the modules'),
        queryParam('sign', "true: its builds are signed with the farm's key (kfarm serve --sign-key); refused when the farm has none"),
      ],
      requestBody: {
        required: true,
        content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } }, 'application/gzip': { schema: { type: 'string', format: 'binary' } } },
      },
      responses: { 200: { description: 'updated', ...json('Module') }, 201: { description: 'registered', ...json('Module') }, ...errors(400, 401, 403, 408, 413) },
    },
    handle: async (ctx) => {
      const name = moduleName(ctx.params);
      const formats = formatsOf(ctx.query.get('formats'));
      const kernels = ctx.query.get('kernels') ? kernelsOf(ctx.query.get('kernels')) : undefined;
      verifyOf(ctx.query.get('verify'));
      const sign = signOf(ctx.query.get('sign'), ctx.deps.runner.canSign());
      if (formats.length > 0) ctx.deps.runner.checkFormats(formats);
      const accepted = await acceptSource(await readBody(ctx.req, MAX_SOURCE_BYTES), ctx.deps.paths, ctx.deps.paths.root);
      if (accepted.declared.name && accepted.declared.name !== name) {
        throw new HttpError(400, `dkms.conf names the module ${accepted.declared.name}, not ${name}`, `PUT it as /api/v1/modules/${accepted.declared.name}`);
      }
      const existed = ctx.deps.db.modules.get(name) !== undefined;
      const row = ctx.deps.db.modules.upsert({
        name,
        version: accepted.declared.version ?? 'unknown',
        sourceSha256: accepted.sha256,
        settings: { formats, ...(kernels ? { kernels } : {}), ...verifyOf(ctx.query.get('verify')), ...sign },
      });
      return { status: existed ? 200 : 201, body: row };
    },
  },
  {
    method: 'DELETE',
    path: '/api/v1/modules/{name}',
    scope: 'admin',
    summary: 'Unregister a module (its builds and results stay)',
    doc: { parameters: [pathParam('name', 'PACKAGE_NAME')], responses: { 204: { description: 'removed' }, ...errors(400, 401, 403, 404) } },
    handle: async (ctx) => {
      if (!ctx.deps.db.modules.remove(moduleName(ctx.params))) throw new HttpError(404, `no module ${ctx.params.name ?? ''} is registered`);
      return Promise.resolve({ status: 204, body: undefined });
    },
  },
  {
    method: 'POST',
    path: '/api/v1/builds',
    scope: 'submit',
    summary: 'Build a registered module',
    doc: {
      requestBody: { required: true, ...json('BuildRequest') },
      responses: { 202: { description: 'queued', ...json('Build') }, ...errors(400, 401, 403, 404) },
    },
    handle: async (ctx) => {
      const body = await readJson(ctx.req, submitBody);
      const module = ctx.deps.db.modules.get(body.module);
      if (!module) throw new HttpError(404, `no module ${body.module.slice(0, 64)} is registered`, 'Register it first: PUT /api/v1/modules/<name> with its source.');
      const build = ctx.deps.runner.submit({
        module: module.name,
        sourceSha256: module.sourceSha256,
        kernels: kernelsOf(body.kernels ?? module.settings.kernels),
        formats: body.formats ?? module.settings.formats,
        trigger: 'api',
        ...((body.verify ?? module.settings.verify) ? { verify: 'load' as const } : {}),
      });
      return { status: 202, body: build };
    },
  },
  {
    method: 'POST',
    path: '/api/v1/builds/source',
    scope: 'submit',
    summary: 'Build a source sent with the request, without registering it (kfarm build --farm)',
    doc: {
      parameters: [
        queryParam('kernels', 'a kernel selector (default all)'),
        queryParam('formats', 'package formats besides the DKMS tarballs, comma-separated'),
        queryParam('verify', 'load: boot each built kernel and load the modules'),
      ],
      requestBody: {
        required: true,
        content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } }, 'application/gzip': { schema: { type: 'string', format: 'binary' } } },
      },
      responses: { 202: { description: 'queued', ...json('Build') }, ...errors(400, 401, 403, 408, 413) },
    },
    handle: async (ctx) => {
      const formats = formatsOf(ctx.query.get('formats'));
      const kernels = kernelsOf(ctx.query.get('kernels'));
      verifyOf(ctx.query.get('verify'));
      if (formats.length > 0) ctx.deps.runner.checkFormats(formats);
      const accepted = await acceptSource(await readBody(ctx.req, MAX_SOURCE_BYTES), ctx.deps.paths, ctx.deps.paths.root);
      return { status: 202, body: ctx.deps.runner.submit({ sourceSha256: accepted.sha256, kernels, formats, trigger: 'api', ...verifyOf(ctx.query.get('verify')) }) };
    },
  },
  {
    method: 'GET',
    path: '/api/v1/builds',
    scope: 'read',
    summary: 'Builds, newest first',
    doc: {
      parameters: [queryParam('module', 'only this module'), queryParam('limit', 'at most this many (default 50)')],
      responses: { 200: { description: 'builds', ...jsonArray('Build') }, ...errors(401, 403) },
    },
    handle: async ({ deps, query }) => {
      const limit = Math.min(Math.max(Number(query.get('limit') ?? 50) || 50, 1), 1000);
      const module = query.get('module') ?? undefined;
      return Promise.resolve({ status: 200, body: deps.db.builds.list({ limit, ...(module ? { module } : {}) }) });
    },
  },
  {
    method: 'GET',
    path: '/api/v1/builds/{id}',
    scope: 'read',
    summary: 'One build and its results so far',
    doc: { parameters: [pathParam('id', 'build id')], responses: { 200: { description: 'the build', ...json('BuildDetail') }, ...errors(401, 403, 404) } },
    handle: async (ctx) => {
      const build = buildOf(ctx);
      return Promise.resolve({ status: 200, body: { build, results: ctx.deps.db.results.forBuild(build.id) } });
    },
  },
  {
    method: 'GET',
    path: '/api/v1/builds/{id}/events',
    scope: 'read',
    summary: "The build's progress as server-sent events (the coordinator's events, then `end`); Last-Event-ID resumes",
    doc: {
      parameters: [pathParam('id', 'build id')],
      responses: { 200: { description: 'an event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors(401, 403, 404) },
    },
    handle: async (ctx) => {
      const build = buildOf(ctx);
      streamFeed(ctx.req, ctx.res, ctx.deps.runner.feed(build.id), build);
      return Promise.resolve('sent' as const);
    },
  },
  {
    method: 'GET',
    path: '/api/v1/builds/{id}/report',
    scope: 'read',
    summary: "The build's report.json",
    doc: {
      parameters: [pathParam('id', 'build id')],
      responses: { 200: { description: 'report.json (docs/formats.md)', content: { 'application/json': { schema: { type: 'object' } } } }, ...errors(401, 403, 404) },
    },
    handle: async (ctx) => {
      const out = await outDirOf(ctx, buildOf(ctx));
      const report = await readReport(committedView(out)).catch(() => undefined);
      if (!report) throw new HttpError(404, `build ${ctx.params.id ?? ''} has no report (yet)`);
      return { status: 200, body: report };
    },
  },
  {
    method: 'GET',
    path: '/api/v1/builds/{id}/out.tar',
    scope: 'read',
    summary: "The build's whole out dir as a tar (what kfarm build --farm writes to --out)",
    doc: {
      parameters: [pathParam('id', 'build id')],
      responses: { 200: { description: 'a tar', content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } } } }, ...errors(401, 403, 404, 409) },
    },
    handle: async (ctx) => {
      const build = buildOf(ctx);
      if (build.state === 'queued' || build.state === 'running') throw new HttpError(409, `build ${build.id} is ${build.state}: its out dir is complete once it ends`);
      await streamOutDirTar(await outDirOf(ctx, build), ctx.res);
      return 'sent';
    },
  },
  {
    method: 'GET',
    path: '/api/v1/builds/{id}/artifacts/{path}',
    scope: 'read',
    summary: "One file of the build's out dir (a tarball, a package, a log: paths as report.json names them)",
    doc: {
      parameters: [pathParam('id', 'build id'), pathParam('path', 'the file below the out dir, / separated')],
      responses: { 200: { description: 'the file', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } }, ...errors(401, 403, 404) },
    },
    handle: async (ctx) => {
      const out = await outDirOf(ctx, buildOf(ctx));
      const segments = (ctx.params.path ?? '').split('/');
      if (segments.some((s) => s === '' || s === '.' || s === '..' || s.startsWith('.kfarm'))) throw new HttpError(404, 'no such artifact');
      const status = await sendFile(out, segments, ctx.req, ctx.res);
      if (status !== 200) throw new HttpError(status === 403 ? 404 : status, 'no such artifact');
      return 'sent';
    },
  },
  {
    method: 'POST',
    path: '/api/v1/sync',
    scope: 'admin',
    summary: 'Look at the archive now and sync the kernels it offers anew (as the watch does on its schedule)',
    doc: { responses: { 202: { description: 'started', ...json('SyncStarted') }, ...errors(401, 403, 409) } },
    handle: async ({ deps }) => {
      if (!deps.triggerSync) throw new HttpError(409, 'this service does not watch the archive', 'Start kfarm serve with --watch.');
      return { status: 202, body: await deps.triggerSync() };
    },
  },
  {
    method: 'GET',
    path: '/api/v1/tokens',
    scope: 'admin',
    summary: 'The API tokens (never their text)',
    doc: { responses: { 200: { description: 'tokens', ...jsonArray('Token') }, ...errors(401, 403) } },
    handle: async ({ deps }) => Promise.resolve({ status: 200, body: deps.db.tokens.list() }),
  },
  {
    method: 'POST',
    path: '/api/v1/tokens',
    scope: 'admin',
    summary: 'Create a token: its text is in this answer only',
    doc: { requestBody: { required: true, ...json('TokenRequest') }, responses: { 201: { description: 'created', ...json('NewToken') }, ...errors(400, 401, 403) } },
    handle: async (ctx) => {
      const body = await readJson(ctx.req, tokenBody);
      const { token, row } = ctx.deps.db.tokens.create(body.name, body.scopes);
      return { status: 201, body: { token, ...row } };
    },
  },
  {
    method: 'DELETE',
    path: '/api/v1/tokens/{id}',
    scope: 'admin',
    summary: 'Revoke a token',
    doc: { parameters: [pathParam('id', 'token id')], responses: { 204: { description: 'revoked' }, ...errors(401, 403, 404) } },
    handle: async (ctx) => {
      if (!ctx.deps.db.tokens.revoke(ctx.params.id ?? '')) throw new HttpError(404, 'no such token');
      return Promise.resolve({ status: 204, body: undefined });
    },
  },
  ...REGRESSION_ROUTES,
  ...DASHBOARD_ROUTES,
];
