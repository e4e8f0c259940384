import pino, { type Logger } from 'pino';
import { env } from '../config/env.js';

export type { Logger };

/**
 * The one root logger. Structured JSON on stderr, so stdout stays for the CLI's tables and
 * for machine-readable output. Per-job context goes into child loggers.
 */
export const rootLogger: Logger = pino({ name: 'kfarm', level: env.logLevel, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
