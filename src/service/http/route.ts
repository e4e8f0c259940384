import type http from 'node:http';
import type { Scope } from '../farm-db.js';
import type { ServiceDeps } from './service-deps.js';

/** One route of kfarm serve: how it is matched, guarded, documented (OpenAPI) and answered. */
export interface RouteContext {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  deps: ServiceDeps;
}

/** a JSON answer, or `sent` when the handler wrote the response itself (a stream, a file) */
export type Reply = { status: number; body: unknown } | 'sent';

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** OpenAPI path template: /api/v1/builds/{id} */
  path: string;
  /** undefined: answered without a token */
  scope?: Scope;
  summary: string;
  /** the OpenAPI operation beyond summary and security (parameters, requestBody, responses) */
  doc: Record<string, unknown>;
  handle(ctx: RouteContext): Promise<Reply>;
}
