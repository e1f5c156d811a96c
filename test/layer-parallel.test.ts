/**
 * The parallel gzip writer and the layer index saved at write time, checked
 * against independent readers (node's gunzip, GNU `gzip -t`) and against an
 * index scanned from the written tar. The check bodies live in
 * layer-gzip-check.ts / layer-index-check.ts so the build benchmark runs
 * the same checks before it measures.
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { checkParallelGzip } from './layer-gzip-check.js';
import { checkSavedLayerIndex } from './layer-index-check.js';

test('parallel gzip: round-trips, gzip -t accepts it, output independent of write chunking, no time/OS bytes', async () => {
  const summary = await checkParallelGzip();
  assert.match(summary, /cases round-trip/);
});

test('saved layer index equals the index scanned from the written layer', async () => {
  const summary = await checkSavedLayerIndex();
  assert.ok(summary.length > 0);
});

test.run();
