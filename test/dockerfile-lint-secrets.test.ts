/**
 * BuildKit's SecretsUsedInArgOrEnv check (issue 8, Security): which ARG/ENV
 * names warn, where, and how `# check=skip=` silences it. The main case is
 * BuildKit's own integration test Dockerfile (dockerfile_check_test.go).
 */
import { test } from './helpers/suite.js';
import * as assert from 'uvu/assert';
import { plan } from '../lib/dockerfile/index.js';
import { looksLikeSecretName, parseCheckSkips } from '../lib/dockerfile/lint-secrets.js';

function secretWarnings(text: string, opts: { target?: string } = {}): { line?: number; name: string }[] {
  return plan(text, { file: 'Dockerfile', ...opts })
    .warnings.filter((w) => w.message.startsWith('SecretsUsedInArgOrEnv:'))
    .map((w) => ({ line: w.location?.line, name: /\((?:ARG|ENV) "([^"]+)"\)/.exec(w.message)![1]! }));
}

test('secret-looking names: positive and negative, BuildKit word rules', () => {
  for (const n of ['PASSWORD', 'db_password', 'GITHUB_TOKEN', 'api_key', 'APIKEY', 'AWS_SECRET_ACCESS_KEY', 'auth', 'NPM_AUTH', 'Credentials', 'aws_credential', 'pword', 'PASSWD', 'secret_MESSAGE', 'super_duper_secret_token', 'git_key', 'SECRET_PASSPHRASE']) {
    assert.ok(looksLikeSecretName(n), `${n} should warn`);
  }
  for (const n of ['PUBLIC_KEY', 'public_token', 'SECRET_PASSPHRASE_FILE', 'secret_File', 'AUTH_MODULE_VERSION', 'sunflower', 'KEYBOARD', 'monkey', 'TOKENIZER', 'PASSWORDS', 'author', 'MY_APIKEYS', 'PATH', 'HOME', 'keyfile', 'SECRETS']) {
    assert.not.ok(looksLikeSecretName(n), `${n} should not warn`);
  }
});

test('BuildKit test Dockerfile: same warnings, lines and skips', () => {
  const text = `# check=skip=InvalidDefinitionDescription

FROM scratch
ARG SECRET_PASSPHRASE
ENV SUPER_Secret=foo
ENV password=bar secret=baz
ARG super_duper_secret_token=foo auth=bar
ENV apikey=bar sunflower=foo
ENV git_key=
ENV PUBLIC_KEY=
ARG public_token
ARG SECRET_PASSPHRASE_FILE
ENV password_file=bar secret_File=baz
ARG AUTH_MODULE_VERSION
# check=skip=SecretsUsedInArgOrEnv // allow secret in environment
ENV password=bar
# check=skip=SecretsUsedInArgOrEnv // allow secret in arg
ARG password
# check=skip=all // is local to only this instruction
ENV alternate_password=bar
# check=skip=all // is local to only this instruction
ARG alternate_password
`;
  assert.equal(secretWarnings(text), [
    { line: 4, name: 'SECRET_PASSPHRASE' },
    { line: 5, name: 'SUPER_Secret' },
    { line: 6, name: 'password' },
    { line: 6, name: 'secret' },
    { line: 7, name: 'super_duper_secret_token' },
    { line: 7, name: 'auth' },
    { line: 8, name: 'apikey' },
    { line: 9, name: 'git_key' },
  ]);
});

test('message names file:line via the location, the rule and --secret / RUN --mount=type=secret', () => {
  const p = plan('FROM scratch\nARG NPM_TOKEN\n', { file: 'app/Dockerfile' });
  assert.is(p.warnings.length, 1);
  const w = p.warnings[0]!;
  assert.equal(w.location, { file: 'app/Dockerfile', line: 2, column: w.location?.column });
  assert.match(w.message, /^SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data \(ARG "NPM_TOKEN"\)/);
  assert.match(w.message, /--secret/);
  assert.match(w.message, /RUN --mount=type=secret/);
});

test('only stages being built; global ARGs not checked (as BuildKit); a skip directive silences all', () => {
  const text = 'ARG GLOBAL_TOKEN\nFROM scratch AS a\nENV A_PASSWORD=x\nFROM scratch AS b\nENV B_SECRET=y\n';
  assert.equal(secretWarnings(text), [{ line: 5, name: 'B_SECRET' }]);
  assert.equal(secretWarnings(text, { target: 'a' }), [{ line: 3, name: 'A_PASSWORD' }]);
  assert.equal(secretWarnings(`# check=skip=SecretsUsedInArgOrEnv\n${text}`), []);
  assert.equal(secretWarnings(`# check=skip=all;error=true\n${text}`), []);
  assert.equal(secretWarnings(`# check=skip=StageNameCasing\n${text}`), [{ line: 6, name: 'B_SECRET' }]);
  // A skip comment is only for the instruction right below it.
  assert.equal(secretWarnings('FROM scratch\n# check=skip=SecretsUsedInArgOrEnv\nENV X_TOKEN=1\nENV Y_TOKEN=2\n'), [{ line: 4, name: 'Y_TOKEN' }]);
  assert.equal(parseCheckSkips('skip=A, B;error=true').rules, new Set(['A', 'B']));
  assert.is(parseCheckSkips('bogus').all, false);
});

test.run();
