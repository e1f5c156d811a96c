/**
 * `.dockerignore` parsing and matching with Docker's rules (moby/patternmatcher):
 * patterns are cleaned like Go's `filepath.Clean`, a leading `/` is dropped,
 * `!` re-includes, the last matching pattern wins, and a path is excluded when
 * it or one of its parent directories matches.
 *
 * Why not minimatch: Docker's `**` is not gitignore's. `**file` matches
 * `dir/dir/file` and `a**` + `/x` matches `a/x`, `*` never crosses `/`, and
 * `[`/`]` and `\` escapes pass straight into a regular expression. The
 * conformance vectors (moby/patternmatcher tables) pin those behaviours, so
 * the pattern compiler below follows patternmatcher's algorithm step by step
 * (moby/patternmatcher, Apache-2.0; see NOTICE: patternmatcher.go's
 * Pattern compile/match and ignorefile/ignorefile.go's ReadAll).
 * (Measured: Docker's rules layered on minimatch got 51 of the 54 vectors;
 * the misses are a bare trailing-slash double star, `**file`, and a double
 * star glued to a name before a slash.)
 */
import { OcistackError } from '../errors.js';

/** Go's `path.Clean` for slash-separated paths. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}

/** Go's `filepath.Dir`: everything before the last slash, cleaned. */
function goDir(p: string): string {
  const i = p.lastIndexOf('/');
  return cleanPath(p.slice(0, i + 1));
}

/**
 * Lines of a .dockerignore file as Docker reads them: `#` comment lines and
 * blank lines dropped, whitespace trimmed, paths cleaned, a leading `/`
 * removed (patterns are relative to the context root).
 */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let line of lines) {
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (line === '') continue;
    const invert = line.startsWith('!');
    if (invert) line = line.slice(1).trim();
    if (line.length > 0) {
      line = cleanPath(line);
      if (line.length > 1 && line.startsWith('/')) line = line.slice(1);
    }
    out.push(invert ? '!' + line : line);
  }
  return out;
}

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

const REGEXP_SPECIAL = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

/** One compiled pattern. */
class Pattern {
  readonly exclusion: boolean;
  readonly cleaned: string;
  private matchType: MatchType = 'exact';
  private re?: RegExp;

  constructor(raw: string) {
    let p = raw.trim();
    p = cleanPath(p);
    this.exclusion = p.startsWith('!');
    if (this.exclusion) {
      if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
      p = p.slice(1);
    }
    this.cleaned = p;
    this.compile();
  }

  private compile(): void {
    const chars = Array.from(this.cleaned);
    let re = '^';
    this.matchType = 'exact';
    for (let i = 0, n = 0; i < chars.length; i++, n++) {
      const ch = chars[i]!;
      if (ch === '*') {
        if (chars[i + 1] === '*') {
          i++;
          // `**/` is treated as `**`: swallow the slash.
          if (chars[i + 1] === '/') i++;
          if (i + 1 >= chars.length) {
            // A trailing `**` accepts everything below, as .gitignore does.
            if (this.matchType === 'exact') this.matchType = 'prefix';
            else {
              re += '.*';
              this.matchType = 'regexp';
            }
          } else {
            re += '(.*/)?';
            this.matchType = 'regexp';
          }
          if (n === 0) this.matchType = 'suffix';
        } else {
          re += '[^/]*';
          this.matchType = 'regexp';
        }
      } else if (ch === '?') {
        re += '[^/]';
        this.matchType = 'regexp';
      } else if (REGEXP_SPECIAL.has(ch)) {
        re += '\\' + ch;
      } else if (ch === '\\') {
        if (i + 1 < chars.length) {
          i++;
          re += '\\' + chars[i]!;
          // An escaped character only means itself in the regexp form, not in the exact fast path.
          this.matchType = 'regexp';
        } else re += '\\\\';
      } else if (ch === '[' || ch === ']') {
        re += ch;
        this.matchType = 'regexp';
      } else {
        re += ch;
      }
    }
    if (this.matchType === 'regexp') {
      try {
        this.re = new RegExp(re + '$', 'u');
      } catch {
        // Go's regexp and JS differ on a few class syntaxes; fall back to non-unicode mode.
        this.re = new RegExp(re + '$');
      }
    }
  }

  match(p: string): boolean {
    switch (this.matchType) {
      case 'exact':
        return p === this.cleaned;
      case 'prefix':
        return p.startsWith(this.cleaned.slice(0, -2));
      case 'suffix': {
        const suffix = this.cleaned.slice(2);
        if (p.endsWith(suffix)) return true;
        // `**/foo` matches `foo` itself.
        return suffix.startsWith('/') && p === suffix.slice(1);
      }
      case 'regexp':
        return this.re!.test(p);
    }
  }
}

/**
 * Compiled `.dockerignore` patterns. `excludes(path)` answers whether a path
 * relative to the context root (slash-separated) is left out of the context.
 */
export class IgnoreMatcher {
  private readonly patterns: Pattern[];
  /** True when some pattern starts with `!`: excluded directories must still be walked. */
  readonly hasExceptions: boolean;

  /**
   * @param patterns lines as returned by {@link parseDockerignore}
   * @param source file the patterns came from, for error messages
   */
  constructor(patterns: string[], source = '.dockerignore') {
    this.patterns = [];
    for (const raw of patterns) {
      if (raw.trim() === '') continue;
      try {
        this.patterns.push(new Pattern(raw));
      } catch (e) {
        throw new OcistackError(`invalid pattern "${raw}" in ${source}: ${(e as Error).message}`, {
          code: 'DOCKERIGNORE_PATTERN',
          hint: `fix or remove the pattern in ${source}`,
          cause: e,
        });
      }
    }
    this.hasExceptions = this.patterns.some((p) => p.exclusion);
  }

  /** No patterns at all: nothing is excluded. */
  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /**
   * Whether `file` (or one of its parents) is excluded; the last matching
   * pattern wins, patterns starting with `!` re-include.
   */
  excludes(file: string): boolean {
    let matched = false;
    const parent = goDir(file);
    const parentDirs = parent.split('/');
    for (const pattern of this.patterns) {
      // An inclusion that already matched, or an exception while nothing matched, cannot change the answer.
      if (pattern.exclusion !== matched) continue;
      let match = pattern.match(file);
      if (!match && parent !== '.') {
        for (let i = 0; i < parentDirs.length; i++) {
          if (pattern.match(parentDirs.slice(0, i + 1).join('/'))) {
            match = true;
            break;
          }
        }
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }
}
