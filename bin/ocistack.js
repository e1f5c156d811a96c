#!/usr/bin/env node
// Thin launcher: the CLI lives in lib/cli (compiled to dist/). `npm install` runs `prepare`, which compiles.
import { main } from '../dist/lib/cli/main.js';
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
