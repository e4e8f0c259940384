import { KfarmError } from '../../errors/kfarm-error.js';

/**
 * The farm's API as `kfarm build --farm` speaks it: only fetch, no Docker, no Redis. Every
 * answer is data from another host: statuses and JSON are checked by the caller before use.
 */
export interface FarmClient {
  readonly url: string;
  request(method: string, path: string, init?: { body?: Buffer; contentType?: string; headers?: Record<string, string> }): Promise<Response>;
  json<T>(method: string, path: string, init?: { body?: Buffer; contentType?: string }): Promise<T>;
}

export function farmClient(baseUrl: string, token: string): FarmClient {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new KfarmError('BAD_OPTION', `--farm ${baseUrl} is not a URL`, { hint: 'Give the farm as https://farm.example:8470 (or http://127.0.0.1:8470 on the farm host).' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new KfarmError('BAD_OPTION', `--farm ${baseUrl}: only http and https farms`);
  const base = url.toString().replace(/\/$/, '');
  const request = async (method: string, path: string, init: { body?: Buffer; contentType?: string; headers?: Record<string, string> } = {}) => {
    try {
      return await fetch(`${base}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(init.contentType ? { 'Content-Type': init.contentType } : {}), ...init.headers },
        ...(init.body ? { body: init.body } : {}),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const tls = tlsProblem(cause);
      throw new KfarmError('COMMAND_FAILED', `the farm at ${base} cannot be reached: ${tls ?? cause?.code ?? cause?.message ?? (err as Error).message}`, {
        context: { url: base },
        hint: tls
          ? "If the farm's certificate comes from a private CA, give this machine that CA: NODE_EXTRA_CA_CERTS=/path/to/ca.pem (PEM). The certificate must name the host of --farm."
          : 'Is kfarm serve running there, and is the URL (scheme, host, port) right? For a farm behind TLS with a private CA, set NODE_EXTRA_CA_CERTS.',
        cause: err,
      });
    }
  };
  return {
    url: base,
    request,
    async json<T>(method: string, path: string, init: { body?: Buffer; contentType?: string } = {}): Promise<T> {
      const res = await request(method, path, init);
      const text = await res.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      if (!res.ok) throw farmError(res.status, body, `${method} ${path}`, base);
      return body as T;
    },
  };
}

/** Node's certificate error codes said in words (a bare SELF_SIGNED_CERT_IN_CHAIN does not say "TLS" to everyone) */
function tlsProblem(cause: { code?: string; message?: string } | undefined): string | undefined {
  const code = cause?.code ?? '';
  const said = `${code}${cause?.message && cause.message !== code ? `: ${cause.message}` : ''}`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `its TLS certificate is not for this host name (${said})`;
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return `its TLS certificate is out of its validity dates (${said})`;
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code)) return `its TLS certificate is not trusted by this machine (${said})`;
  return undefined;
}

/** the farm's `{ error, code, hint }` as this CLI's own error: 400 is the caller's input (exit 2), 401/403 a token problem */
export function farmError(status: number, body: unknown, what: string, base: string): KfarmError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { error?: unknown; hint?: unknown; code?: unknown };
  const said = typeof b.error === 'string' ? b.error.slice(0, 2000) : `HTTP ${status}`;
  const hint = typeof b.hint === 'string' ? b.hint.slice(0, 1000) : undefined;
  if (status === 401 || status === 403) {
    return new KfarmError('BAD_OPTION', `the farm at ${base} refused the token: ${said}`, {
      hint: hint ?? 'Set KFARM_FARM_TOKEN (or --farm-token-file) to a token with the submit scope: kfarm tokens create <name> --scope submit on the farm host.',
    });
  }
  if (status === 400 || status === 413) return new KfarmError(status === 413 ? 'SOURCE_TOO_LARGE' : 'BAD_OPTION', `the farm refused ${what}: ${said}`, hint ? { hint } : {});
  return new KfarmError('COMMAND_FAILED', `the farm at ${base} failed ${what}: ${said}`, hint ? { hint } : { hint: 'See the kfarm serve log on the farm host.' });
}

export interface SseEvent {
  id: number;
  type: string;
  data: unknown;
}

/**
 * Follows a server-sent event stream to its `end` event. A connection that drops (the farm
 * restarting) is opened again with Last-Event-ID, so no event is seen twice or missed; a farm
 * gone for longer than `patienceMs` is an error.
 */
export async function followEvents(client: FarmClient, path: string, onEvent: (e: SseEvent) => void, options: { patienceMs?: number; signal?: AbortSignal } = {}): Promise<void> {
  let lastId = 0;
  let downSince: number | undefined;
  const patience = options.patienceMs ?? 300_000;
  for (;;) {
    if (options.signal?.aborted) throw new KfarmError('INTERRUPTED', 'stopped following the farm build');
    let ended = false;
    try {
      const res = await client.request('GET', path, { headers: { Accept: 'text/event-stream', ...(lastId ? { 'Last-Event-ID': String(lastId) } : {}) } });
      if (!res.ok) {
        const body: unknown = await res.json().catch(() => undefined);
        if (res.status < 500) throw farmError(res.status, body, `GET ${path}`, client.url);
        throw new Error(`HTTP ${res.status}`);
      }
      downSince = undefined;
      for await (const event of parseSse(res.body)) {
        if (event.id <= lastId) continue;
        lastId = event.id;
        onEvent(event);
        if (event.type === 'end') ended = true;
      }
    } catch (err) {
      if (err instanceof KfarmError && err.code !== 'COMMAND_FAILED') throw err;
      downSince ??= Date.now();
      if (Date.now() - downSince > patience) {
        throw new KfarmError('COMMAND_FAILED', `lost the farm at ${client.url} for more than ${Math.round(patience / 1000)} s while following the build`, {
          hint: 'The build goes on there: follow it with GET <farm>/api/v1/builds/<id>, or run the same kfarm build --farm again (finished kernels come from its cache).',
          cause: err,
        });
      }
    }
    if (ended) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Pure enough: SSE frames from a byte stream (id, event, one data line of JSON; comments skipped; lines capped). */
export async function* parseSse(body: ReadableStream<Uint8Array> | null): AsyncGenerator<SseEvent> {
  if (!body) return;
  const decoder = new TextDecoder();
  let buffer = '';
  let frame: { id?: number; type?: string; data?: string } = {};
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    if (buffer.length > 16 * 1024 * 1024) throw new Error('an event longer than 16 MiB');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      if (line === '') {
        if (frame.type && frame.data !== undefined && frame.id !== undefined) {
          let data: unknown;
          try {
            data = JSON.parse(frame.data);
          } catch {
            data = undefined;
          }
          yield { id: frame.id, type: frame.type, data };
        }
        frame = {};
      } else if (line.startsWith('id: ')) frame.id = Number(line.slice(4)) || 0;
      else if (line.startsWith('event: ')) frame.type = line.slice(7);
      else if (line.startsWith('data: ')) {
        frame.data = (frame.data ?? '') + line.slice(6);
        // many short data lines add up as one long one: the same cap
        if (frame.data.length > 16 * 1024 * 1024) throw new Error('an event longer than 16 MiB');
      }
    }
  }
}
