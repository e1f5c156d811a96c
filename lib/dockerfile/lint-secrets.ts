/**
 * The `SecretsUsedInArgOrEnv` check of BuildKit's Dockerfile linter: warn
 * when an ARG or ENV name looks like it holds a secret, because its value
 * stays in the image config or history; build secrets (`--secret`, read with
 * `RUN --mount=type=secret`) do not.
 *
 * Follows moby/buildkit frontend/dockerfile/dockerfile2llb (validateNoSecretKey,
 * getSecretsRegex) and linter/linter.go (`# check=skip=` parsing): a name
 * matches when one of its `_`-separated words is a secret word and none is
 * an allowed word, case-insensitive. Skips: `# check=skip=<rules>|all` as a
 * parser directive, or in a comment directly above the instruction.
 */
import type { Diagnostic, Instruction, Stage } from './types.js';

export const SECRETS_RULE = 'SecretsUsedInArgOrEnv';

// BuildKit's token lists; a word is delimited by `_` or the ends of the name.
const SECRET_WORDS = ['apikey', 'auth', 'credential', 'credentials', 'key', 'password', 'pword', 'passwd', 'secret', 'token'];
const ALLOWED_WORDS = ['public', 'file', 'version'];
const SECRET_RE = new RegExp(`(?:_|^)(?:${SECRET_WORDS.join('|')})(?:_|$)`, 'i');
const ALLOWED_RE = new RegExp(`(?:_|^)(?:${ALLOWED_WORDS.join('|')})(?:_|$)`, 'i');

/** Does this ARG/ENV name look like it holds a secret (BuildKit's rule)? */
export function looksLikeSecretName(name: string): boolean {
  return SECRET_RE.test(name) && !ALLOWED_RE.test(name);
}

interface Skips {
  all: boolean;
  rules: Set<string>;
}

/**
 * The `skip=` part of a `check` value (`skip=A,B;error=true`, `skip=all`).
 * Only skipping is honoured; a value BuildKit would reject skips nothing.
 */
export function parseCheckSkips(value: string | undefined): Skips {
  const none: Skips = { all: false, rules: new Set() };
  if (!value?.trim()) return none;
  const out: Skips = { all: false, rules: new Set() };
  for (const part of value.trim().split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) return none;
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === 'skip') {
      if (v === 'all') out.all = true;
      else for (const r of v.split(',')) out.rules.add(r.trim());
    } else if (k !== 'error' && k !== 'experimental') return none;
  }
  return out;
}

const skipped = (s: Skips) => s.all || s.rules.has(SECRETS_RULE);

/**
 * The `check` value of the comment lines directly above `line` (blank lines
 * between are allowed, an empty `#` ends them), as BuildKit collects an
 * instruction's previous comments; the first `check=` comment counts and its
 * value ends at the first space (`# check=skip=X // why`).
 */
function commentCheck(lines: string[], line: number): string | undefined {
  const comments: string[] = [];
  for (let i = line - 2; i >= 0; i--) {
    const t = lines[i]!.trim();
    if (t === '') continue;
    if (!t.startsWith('#')) break;
    if (t.slice(1).trim() === '') break;
    comments.unshift(t);
  }
  for (const c of comments) {
    const m = /^#\s*check\s*=\s*(.+?)\s*$/i.exec(c);
    if (m) return m[1]!.split(' ')[0];
  }
  return undefined;
}

/** Warnings for the ARG and ENV instructions of the stages being built. */
export function secretNameWarnings(text: string, stages: Stage[], order: number[], checkDirective: string | undefined): Diagnostic[] {
  if (skipped(parseCheckSkips(checkDirective))) return [];
  const lines = text.split(/\r?\n/);
  const out: Diagnostic[] = [];
  for (const i of order) {
    for (const ins of stages[i]!.instructions) {
      const names = namesOf(ins);
      if (!names.length) continue;
      const bad = names.filter(looksLikeSecretName);
      if (!bad.length || skipped(parseCheckSkips(commentCheck(lines, ins.location.line)))) continue;
      const keyword = ins.kind.toUpperCase();
      for (const name of bad) {
        out.push({
          message:
            `${SECRETS_RULE}: Do not use ARG or ENV instructions for sensitive data (${keyword} ${JSON.stringify(name)}); ` +
            'its value stays in the image config or history: pass it as a build secret (--secret id=..., read with RUN --mount=type=secret) instead',
          location: ins.location,
        });
      }
    }
  }
  return out;
}

function namesOf(ins: Instruction): string[] {
  if (ins.kind === 'arg') return ins.args.map((a) => a.name);
  if (ins.kind === 'env') return ins.pairs.map((p) => p.key);
  return [];
}
