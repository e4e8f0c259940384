import { toolVersion } from '../../version.js';
import type { Route } from './route.js';

const str = { type: 'string' } as const;
const int = { type: 'integer', minimum: 0 } as const;
const time = { type: 'string', format: 'date-time' } as const;
const summary = { type: 'object', required: ['built', 'failed', 'excluded'], properties: { built: int, failed: int, excluded: int }, additionalProperties: false };

/** The JSON Schemas of what the API answers (OpenAPI 3.1: JSON Schema 2020-12); the tests validate real answers against them. */
export const SCHEMAS: Record<string, Record<string, unknown>> = {
  Error: { type: 'object', required: ['error'], properties: { error: str, code: str, hint: str }, additionalProperties: false },
  Health: { type: 'object', required: ['ok'], properties: { ok: { type: 'boolean' } }, additionalProperties: false },
  Kernel: { type: 'object', required: ['kernel', 'arch', 'image', 'release'], properties: { kernel: str, arch: str, image: str, release: str }, additionalProperties: false },
  SeenKernel: {
    type: 'object',
    required: ['kernel', 'release', 'arch', 'flavour', 'version', 'firstSeen', 'lastSeen'],
    properties: { kernel: str, release: str, arch: str, flavour: str, version: str, firstSeen: time, lastSeen: time, goneSince: time, prunedAt: time },
    additionalProperties: false,
  },
  Module: {
    type: 'object',
    required: ['name', 'version', 'sourceSha256', 'settings', 'createdAt', 'updatedAt'],
    properties: {
      name: str,
      version: str,
      sourceSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      settings: {
        type: 'object',
        required: ['formats'],
        properties: { formats: { type: 'array', items: str }, kernels: str, verify: { const: 'load' }, sign: { const: true } },
      },
      createdAt: time,
      updatedAt: time,
    },
    additionalProperties: false,
  },
  BuildRequest: {
    type: 'object',
    required: ['module'],
    properties: {
      module: str,
      kernels: { type: 'string', description: "a kernel selector; default the module's, else all" },
      formats: { type: 'array', items: str },
      verify: { const: 'load', description: "boot each built kernel and load the modules; default the module's setting" },
    },
    additionalProperties: false,
  },
  Build: {
    type: 'object',
    required: ['id', 'sourceSha256', 'kernels', 'formats', 'state', 'trigger', 'createdAt'],
    properties: {
      id: { type: 'string', pattern: '^b-[0-9]{14}-[0-9a-f]{6}$' },
      module: str,
      sourceSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      kernels: str,
      formats: { type: 'array', items: str },
      state: { enum: ['queued', 'running', 'done', 'failed', 'cancelled'] },
      trigger: { enum: ['api', 'watch'] },
      createdAt: time,
      startedAt: time,
      finishedAt: time,
      exitCode: int,
      summary,
      error: str,
      verify: { const: 'load' },
    },
    additionalProperties: false,
  },
  Result: {
    type: 'object',
    required: ['buildId', 'module', 'version', 'kernel', 'release', 'arch', 'flavour', 'verdict', 'at'],
    properties: {
      buildId: str,
      module: str,
      version: str,
      kernel: str,
      release: str,
      arch: str,
      flavour: str,
      verdict: { enum: ['built', 'failed', 'excluded'] },
      reason: str,
      firstError: str,
      load: { enum: ['loaded', 'load-failed', 'not-verified'] },
      at: time,
    },
    additionalProperties: false,
  },
  BuildDetail: {
    type: 'object',
    required: ['build', 'results'],
    properties: { build: { $ref: '#/components/schemas/Build' }, results: { type: 'array', items: { $ref: '#/components/schemas/Result' } } },
    additionalProperties: false,
  },
  // the dashboard's live section (dashboard-model.ts DashboardWorker, QueueCounts): GET /api/v1/workers
  Worker: {
    type: 'object',
    required: ['worker', 'host', 'running', 'concurrency', 'images', 'verify', 'lastSeen', 'state'],
    properties: {
      worker: { type: 'string', description: '<host>:<pid>' },
      host: str,
      running: { ...int, description: 'builds it runs now' },
      concurrency: { ...int, description: 'builds it runs at once' },
      images: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'arch', 'kernels'],
          properties: { name: str, arch: str, kernels: { type: 'array', items: str }, more: { ...int, description: 'kernels not listed' } },
          additionalProperties: false,
        },
      },
      verify: { type: 'array', items: str, description: 'the boot lanes it takes (kvm, tcg)' },
      lastSeen: time,
      state: { enum: ['live', 'gone'] },
      goneSince: time,
    },
    additionalProperties: false,
  },
  Workers: {
    type: 'object',
    required: ['queue', 'workers'],
    properties: {
      queue: {
        type: 'object',
        required: ['waiting', 'active', 'delayed', 'failed'],
        properties: { waiting: int, active: int, delayed: int, failed: int },
        additionalProperties: false,
      },
      workers: { type: 'array', description: 'live ones first, then those gone in the last day', items: { $ref: '#/components/schemas/Worker' } },
    },
    additionalProperties: false,
  },
  SyncStarted: { type: 'object', required: ['started'], properties: { started: { type: 'boolean' }, reason: str }, additionalProperties: false },
  Token: {
    type: 'object',
    required: ['id', 'name', 'scopes', 'createdAt'],
    properties: { id: str, name: str, scopes: { type: 'array', items: { enum: ['read', 'submit', 'admin'] } }, createdAt: time, lastUsedAt: time },
    additionalProperties: false,
  },
  TokenRequest: {
    type: 'object',
    required: ['name', 'scopes'],
    properties: { name: str, scopes: { type: 'array', minItems: 1, items: { enum: ['read', 'submit', 'admin'] } } },
    additionalProperties: false,
  },
  NewToken: {
    type: 'object',
    required: ['token', 'id', 'name', 'scopes', 'createdAt'],
    properties: {
      token: { type: 'string', description: 'shown only in this answer' },
      id: str,
      name: str,
      scopes: { type: 'array', items: str },
      createdAt: time,
      lastUsedAt: time,
    },
    additionalProperties: false,
  },
  // the regression view (regressions-routes.ts): series-windows.ts's CheckWindow plus its sentence
  RegressionWindow: {
    type: 'object',
    required: ['check', 'state', 'oldest', 'newest', 'since', 'kernels', 'sentence'],
    properties: {
      check: { enum: ['build', 'load'] },
      state: { enum: ['ok', 'broken', 'fixed', 'never-built'] },
      lastGood: str,
      firstBad: str,
      lastBad: str,
      fixedIn: str,
      oldest: str,
      newest: str,
      firstError: str,
      reason: str,
      buildId: str,
      since: time,
      kernels: int,
      sentence: { type: 'string', description: 'builds on 6.1.0-56-amd64, fails since 6.1.0-57-amd64' },
    },
    additionalProperties: false,
  },
  Regressions: {
    type: 'object',
    required: ['module', 'open', 'series'],
    properties: {
      module: str,
      open: { ...int, description: 'broken windows (open regressions) among the series' },
      series: {
        type: 'array',
        description: 'open regressions first (the most recent first), then by release, arch, flavour, line',
        items: {
          type: 'object',
          required: ['release', 'arch', 'flavour', 'line', 'version', 'excluded'],
          properties: {
            release: str,
            arch: str,
            flavour: str,
            line: { type: 'string', description: 'the upstream kernel line: 6.1, 6.12' },
            version: { type: 'string', description: 'the module version whose results decide the series' },
            build: { $ref: '#/components/schemas/RegressionWindow' },
            load: { $ref: '#/components/schemas/RegressionWindow' },
            excluded: { type: 'array', items: str },
          },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  },
  RegressionChangelog: {
    type: 'object',
    required: ['module', 'release', 'arch', 'flavour', 'line', 'check', 'state', 'sentence', 'firstBad', 'entries', 'omittedEntries', 'omittedLines', 'complete'],
    properties: {
      module: str,
      release: str,
      arch: str,
      flavour: str,
      line: str,
      check: { enum: ['build', 'load'] },
      state: { enum: ['broken', 'never-built'] },
      sentence: str,
      lastGood: { type: 'object', required: ['kernel'], properties: { kernel: str, version: str }, additionalProperties: false },
      firstBad: { type: 'object', required: ['kernel'], properties: { kernel: str, version: str }, additionalProperties: false },
      source: { type: 'object', required: ['image', 'path'], properties: { image: str, path: str }, additionalProperties: false },
      entries: {
        type: 'array',
        description: "from firstBad's upload down to (not including) lastGood's, newest first",
        items: {
          type: 'object',
          required: ['package', 'version', 'distribution', 'urgency', 'body'],
          properties: { package: str, version: str, distribution: str, urgency: str, body: { type: 'array', items: str }, maintainer: str, date: str },
          additionalProperties: false,
        },
      },
      omittedEntries: int,
      omittedLines: int,
      complete: { type: 'boolean', description: "the changelog read reaches lastGood's version" },
      note: { type: 'string', description: 'why the entries are missing or may be partial' },
    },
    additionalProperties: false,
  },
};

/** Pure: the OpenAPI 3.1 document of the routes the server really has (made from the same table it routes by). */
export function openApiDocument(routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    paths[r.path] ??= {};
    (paths[r.path] as Record<string, unknown>)[r.method.toLowerCase()] = {
      summary: r.summary,
      operationId: `${r.method.toLowerCase()}${r.path
        .replace(/^\/api\/v1/, '')
        .replace(/\{(\w+)\}/g, 'By-$1')
        .replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase())}`,
      security: r.scope ? [{ token: [r.scope] }] : [],
      ...(r.scope ? { 'x-kfarm-scope': r.scope } : {}),
      ...r.doc,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'kfarm serve',
      version: toolVersion,
      description: 'The build farm as a service: register modules, build them for every held kernel, follow progress, fetch reports and artifacts.',
    },
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        token: { type: 'http', scheme: 'bearer', description: 'kfarm tokens create <name> --scope read|submit|admin; admin implies submit, submit implies read' },
      },
    },
  };
}
