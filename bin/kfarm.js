#!/usr/bin/env node
// Entry point: the compiled CLI lives in lib/ (`npm run build`).
import { main } from '../lib/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
