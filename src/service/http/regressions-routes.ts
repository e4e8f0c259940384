import { isValidName } from '../../dkms/names.js';
import { describeError } from '../../errors/kfarm-error.js';
import { debianArchOf } from '../../report/release-arch.js';
import { changelogRequest, headersChangelog } from '../regressions/headers-changelog.js';
import { seriesWindows, type Check, type CheckWindow, type SeriesWindows } from '../regressions/series-windows.js';
import { windowSentence } from '../regressions/window-sentence.js';
import { HttpError } from './http-error.js';
import type { Route, RouteContext } from './route.js';

/**
 * The regression view over HTTP (issue 23, "What broke, where, and since when"): every kernel
 * series of a module with its build and load windows, and the Debian changelog between a broken
 * window's last good and first bad kernel. The helpers are local: service-routes.ts imports this
 * table, so importing values back from it would be a cycle.
 */

const json = (schema: string) => ({ content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } } });
const errorDoc = (status: number, description: string) => ({ [String(status)]: { description, ...json('Error') } });
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const queryParam = (name: string, description: string, required = false) => ({ name, in: 'query', required, schema: { type: 'string' }, description });
const authErrors = { ...errorDoc(401, 'no token, or not a valid one'), ...errorDoc(403, "the token's scopes do not allow this") };

function moduleOf(ctx: RouteContext): { name: string; series: SeriesWindows[] } {
  const name = ctx.params.name ?? '';
  if (!isValidName('module name', name)) throw new HttpError(400, `"${name.slice(0, 64)}" is not a module name (PACKAGE_NAME: letters, digits, ._+-)`);
  const history = ctx.deps.db.results.history(name);
  // an unregistered module keeps its results (DELETE leaves them): its history is still answered
  if (history.length === 0 && !ctx.deps.db.modules.get(name)) throw new HttpError(404, `no module ${name} is registered or has results`);
  return { name, series: seriesWindows(history) };
}

/** a window as the API gives it: the judgement and its sentence */
const windowBody = (w: CheckWindow) => ({ ...w, sentence: windowSentence(w) });

/** Pure: the series as answered: open regressions first (the most recent first), then the rest in series order. */
export function regressionsBody(module: string, series: readonly SeriesWindows[]) {
  const openSince = (s: SeriesWindows) => [s.build, s.load].filter((w) => w?.state === 'broken').reduce((a, w) => (w && w.since > a ? w.since : a), '');
  const open = series.filter((s) => openSince(s) !== '').sort((a, b) => (openSince(a) > openSince(b) ? -1 : openSince(a) < openSince(b) ? 1 : 0));
  const rest = series.filter((s) => openSince(s) === '');
  return {
    module,
    open: series.reduce((n, s) => n + [s.build, s.load].filter((w) => w?.state === 'broken').length, 0),
    series: [...open, ...rest].map((s) => ({
      release: s.release,
      arch: s.arch,
      flavour: s.flavour,
      line: s.line,
      version: s.version,
      ...(s.build ? { build: windowBody(s.build) } : {}),
      ...(s.load ? { load: windowBody(s.load) } : {}),
      excluded: s.excluded,
    })),
  };
}

/** the one series the query names: release and flavour given, arch (x86_64 or amd64) and line when the rest leaves several */
function seriesOf(all: readonly SeriesWindows[], query: URLSearchParams): SeriesWindows {
  const release = query.get('release');
  const flavour = query.get('flavour');
  if (!release || !flavour) throw new HttpError(400, 'name the series: release= and flavour= (arch= and line= when several match)');
  const arch = query.get('arch');
  const line = query.get('line');
  const matching = all.filter((s) => s.release === release && s.flavour === flavour && (!arch || s.arch === arch || debianArchOf(s.arch) === arch) && (!line || s.line === line));
  const describe = (s: SeriesWindows) => `release=${s.release}&arch=${s.arch}&flavour=${s.flavour}&line=${s.line}`;
  if (matching.length === 0) throw new HttpError(404, `no series of this module is ${[release, arch, flavour, line].filter(Boolean).join(' ')}`);
  if (matching.length > 1) throw new HttpError(400, `several series match: ${matching.map(describe).join(', ')}`, 'Add arch= and line= to name one.');
  return matching[0] as SeriesWindows;
}

export const REGRESSION_ROUTES: Route[] = [
  {
    method: 'GET',
    path: '/api/v1/modules/{name}/regressions',
    scope: 'read',
    summary: 'Every kernel series of a module (release, arch, flavour, upstream line) with its build and load windows: "builds on X, fails since Y", open regressions first',
    doc: {
      parameters: [pathParam('name', 'PACKAGE_NAME')],
      responses: {
        200: { description: "the module's series", ...json('Regressions') },
        ...errorDoc(400, 'not a module name'),
        ...authErrors,
        ...errorDoc(404, 'no such module and no results of it'),
      },
    },
    handle: async (ctx) => {
      const { name, series } = moduleOf(ctx);
      return Promise.resolve({ status: 200, body: regressionsBody(name, series) });
    },
  },
  {
    method: 'GET',
    path: '/api/v1/modules/{name}/regressions/changelog',
    scope: 'read',
    summary: "What Debian changed between a broken window's last good kernel and its first bad one, from the changelog the headers carry",
    doc: {
      parameters: [
        pathParam('name', 'PACKAGE_NAME'),
        queryParam('release', 'the kfarm release (debian-12)', true),
        queryParam('flavour', 'the kernel flavour (amd64, cloud-amd64)', true),
        queryParam('arch', 'x86_64 or amd64, aarch64 or arm64: needed when the flavour is on several'),
        queryParam('line', 'the upstream line (6.1, 6.12): needed when the release carries several'),
        queryParam('check', 'build (default) or load'),
      ],
      responses: {
        200: { description: 'the entries between the two kernels', ...json('RegressionChangelog') },
        ...errorDoc(400, 'the series is not named, or ambiguous'),
        ...authErrors,
        ...errorDoc(404, 'no such module or series'),
        ...errorDoc(409, 'the window is not broken: there is nothing between a last good and a first bad kernel'),
        ...errorDoc(503, 'the container engine could not be asked'),
      },
    },
    handle: async (ctx) => {
      const { name, series: all } = moduleOf(ctx);
      const check = (ctx.query.get('check') ?? 'build') as Check;
      if (check !== 'build' && check !== 'load') throw new HttpError(400, 'check= is build or load');
      const series = seriesOf(all, ctx.query);
      const window = check === 'build' ? series.build : series.load;
      const sentence = window ? windowSentence(window) : `no kernel was judged for the ${check} check`;
      const version = (kernel: string | undefined) => (kernel ? ctx.deps.db.kernels.list().find((k) => k.kernel === kernel)?.version : undefined);
      const goodVersion = version(window?.state === 'broken' ? window.lastGood : undefined);
      const badVersion = version(window?.firstBad);
      const request = window
        ? changelogRequest(
            series,
            window,
            goodVersion || badVersion ? { ...(goodVersion ? { lastGood: goodVersion } : {}), ...(badVersion ? { firstBad: badVersion } : {}) } : undefined,
          )
        : undefined;
      if (!request) throw new HttpError(409, `${name} on ${series.release} ${series.flavour} ${series.line}: ${sentence}: no failure to explain`);
      const changelog = await headersChangelog(ctx.deps.runtime, request).catch((err: unknown) => {
        throw new HttpError(503, `could not read the changelog: ${describeError(err)}`, 'Is the container engine running? (kfarm doctor)');
      });
      return {
        status: 200,
        body: { module: name, release: series.release, arch: series.arch, flavour: series.flavour, line: series.line, check, state: window?.state, sentence, ...changelog },
      };
    },
  },
];
