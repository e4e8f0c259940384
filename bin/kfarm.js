#!/usr/bin/env node
// Entry point: the compiled CLI lives in lib/ (`npm run build`).
import { main, exitWhenDrained } from '../lib/src/cli/main.js';

exitWhenDrained(await main(process.argv.slice(2)));
