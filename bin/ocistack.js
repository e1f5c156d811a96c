#!/usr/bin/env node
// Thin launcher: the CLI lives in lib/cli (compiled to dist/). `npm install` runs `prepare`, which compiles.
// lib/cli/process.ts adds SIGINT/SIGTERM handling (exit 130/143, temp files removed) around main().
import { runCli } from '../dist/lib/cli/process.js';
runCli(process.argv.slice(2));
