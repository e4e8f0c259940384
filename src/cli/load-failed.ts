import type { BuildReport } from '../report/report.js';

/** a load-failed kernel fails the run as a failed build does (`kfarm build --verify load`, `kfarm verify`) */
export const loadFailed = (report: BuildReport): boolean => report.kernels.some((k) => k.load?.verdict === 'load-failed');
