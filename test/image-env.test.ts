/**
 * One rule for an `Env` list with duplicate keys, shared by the image config
 * the build writes and the environment words are expanded against: a lookup
 * takes the LAST entry (BuildKit's shell.EnvsFromSlice), and setting a key
 * leaves exactly one entry, at the first one's position, so after `ENV A=3`
 * both see 3. (Before, lib/image/config's getEnv took the first entry and an
 * ENV over a duplicated base key left the stale later entry winning.)
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { getEnv, setEnv } from '../lib/image/env.js';
import { applyInstruction, emptyImageConfig, getEnv as configGetEnv } from '../lib/image/config.js';
import { dispatch, expansionEnv, newStageState, plan } from '../lib/dockerfile/index.js';

const dup = ['A=1', 'PATH=/bin', 'A=2'];

test('lookup in a list with duplicates: the last entry wins, in the config helpers and for expansion', () => {
  assert.is(getEnv(dup, 'A'), '2');
  assert.is(configGetEnv(dup, 'A'), '2');
  assert.is(expansionEnv(newStageState({ baseEnv: dup })).get('A'), '2');
  assert.is(getEnv(['A'], 'A'), '', 'an entry without = is the key with an empty value');
  assert.is(getEnv(['AB=1'], 'A'), undefined);
  assert.is(getEnv(undefined, 'A'), undefined);
});

test('setting a duplicated key: one entry left, at the first position', () => {
  const env = [...dup];
  setEnv(env, 'A', '3');
  assert.equal(env, ['A=3', 'PATH=/bin']);
  setEnv(env, 'B', 'x');
  assert.equal(env, ['A=3', 'PATH=/bin', 'B=x']);
});

test('ENV over a base image with a duplicated key: the config and later expansion agree on the new value', () => {
  const p = plan('FROM base\nENV A=3\nENV B=$A\n');
  const cfg = emptyImageConfig({ os: 'linux', architecture: 'amd64' });
  cfg.config = { Env: [...dup] };
  const state = newStageState({ baseConfig: cfg, stage: p.stages[0] });
  const apply = { cmdSet: false };
  for (const ins of p.stages[0]!.instructions) applyInstruction(cfg, dispatch(ins, state).resolved, apply);
  assert.equal(cfg.config!.Env, ['A=3', 'PATH=/bin', 'B=3']);
  assert.is(getEnv(state.env, 'A'), '3');
  assert.equal(state.env, cfg.config!.Env, 'the stage environment and the image config are the same list');
});

test.run();
