// `node --import ./module-probe.mjs`: appends the URL of every module the ESM loader loads
// (kfarm's own and every package imported from them, CJS ones included) to $KFARM_PROBE_OUT.
import { register } from 'node:module';

register('./module-probe-hooks.mjs', import.meta.url, { data: { out: process.env.KFARM_PROBE_OUT } });
