/**
 * Word expansion and splitting with the semantics of BuildKit's shell lexer
 * (frontend/dockerfile/shell/lex.go): quotes, escapes, `$VAR`, `${VAR}` and the
 * `${VAR<op>word}` forms BuildKit supports. Quirks are kept on purpose so
 * results match docker.
 *
 * The algorithm is BuildKit's (moby/buildkit, Apache-2.0; see NOTICE),
 * re-implemented function by function from frontend/dockerfile/shell/lex.go:
 *   Lex -> ShellLex (ProcessWord/ProcessWords/process), shellWord -> ShellWord,
 *   wordsStruct -> Words (addChar, addRawChar, addString, addRawString, getWords),
 *   processStopOn, processSingleQuote, processDoubleQuote, processDollar,
 *   processName, processPossibleHeredoc, isSpecialParam, getEnv,
 *   convertShellPatternToRegex -> shellPatternToRegex, trimPrefix, trimSuffix,
 *   reversePattern; EnvsFromSlice -> envLookup (last entry of a key wins).
 * goReplaceAll/goExpand reproduce Go's regexp ReplaceAllString/Expand, which
 * lex.go relies on. One addition: a nesting limit (MAX_EXPANSION_DEPTH),
 * because a JavaScript stack is fixed where Go's grows.
 */

/** Where expansion looks variables up; `undefined` means unset. */
export interface EnvLookup {
  get(name: string): string | undefined;
}

/** Anything ocistack accepts as an environment for expansion. */
export type EnvSource = EnvLookup | Map<string, string | undefined> | Record<string, string | undefined> | string[];

/** Normalizes an {@link EnvSource}; for `KEY=value` lists the last entry of a key wins. */
export function envLookup(env: EnvSource): EnvLookup {
  if (Array.isArray(env)) {
    const m = new Map<string, string>();
    for (const e of env) {
      const eq = e.indexOf('=');
      if (eq < 0) m.set(e, '');
      else m.set(e.slice(0, eq), e.slice(eq + 1));
    }
    return { get: (k) => m.get(k) };
  }
  if (env instanceof Map) return { get: (k) => env.get(k) };
  if (typeof (env as EnvLookup).get === 'function') return env as EnvLookup;
  const rec = env as Record<string, string | undefined>;
  return { get: (k) => (Object.prototype.hasOwnProperty.call(rec, k) ? rec[k] : undefined) };
}

/** A word could not be expanded (bad substitution, unterminated quote, `${X:?msg}`...). */
export class ShellLexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShellLexError';
  }
}

export interface ShellLexOptions {
  /** `\` (default) or `` ` `` (the `escape` parser directive). */
  escapeToken?: string;
  /** Keep quote characters in the output. */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters. */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written. */
  skipUnsetEnv?: boolean;
}

export interface ProcessResult {
  result: string;
  words: string[];
  /** Variables referenced and found. */
  matched: Set<string>;
  /** Variables referenced but unset. */
  unmatched: Set<string>;
}

const EOF = null;

/**
 * How deep `${...}` (and quotes inside them) may nest. BuildKit has no limit
 * (Go stacks grow); a JavaScript stack holds about 2,000 levels of this
 * recursion, so deeper input is refused with a ShellLexError well before
 * that instead of overflowing the stack. Real Dockerfiles nest a few levels.
 */
export const MAX_EXPANSION_DEPTH = 500;
type Ch = string | null;

const letterRe = /^\p{L}$/u;
const digitRe = /^\p{Nd}$/u;

function isUnicodeSpace(ch: string): boolean {
  // Go unicode.IsSpace
  const c = ch.codePointAt(0)!;
  if (c === 0x09 || c === 0x0a || c === 0x0b || c === 0x0c || c === 0x0d || c === 0x20 || c === 0x85 || c === 0xa0) return true;
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

class Words {
  words: string[] = [];
  inWord = false;
  constructor(private readonly shared: { buf: string }) {}
  addChar(ch: string): void {
    if (isUnicodeSpace(ch) && this.inWord) {
      if (this.shared.buf.length !== 0) {
        this.words.push(this.shared.buf);
        this.shared.buf = '';
        this.inWord = false;
      }
    } else if (!isUnicodeSpace(ch)) {
      this.addRawChar(ch);
    }
  }
  addRawChar(ch: string): void {
    this.shared.buf += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRawString(s: string): void {
    this.shared.buf += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.shared.buf.length > 0) {
      this.words.push(this.shared.buf);
      this.shared.buf = '';
      this.inWord = false;
    }
    return this.words;
  }
}

/** BuildKit's `shell.Lex`: expands one word, or expands and splits into words. */
export class ShellLex {
  readonly escapeToken: string;
  rawQuotes: boolean;
  rawEscapes: boolean;
  skipProcessQuotes: boolean;
  skipUnsetEnv: boolean;

  constructor(opts: ShellLexOptions = {}) {
    this.escapeToken = opts.escapeToken ?? '\\';
    this.rawQuotes = opts.rawQuotes ?? false;
    this.rawEscapes = opts.rawEscapes ?? false;
    this.skipProcessQuotes = opts.skipProcessQuotes ?? false;
    this.skipUnsetEnv = opts.skipUnsetEnv ?? false;
  }

  /** Expands `word` into one string (spaces kept). Throws {@link ShellLexError}. */
  processWord(word: string, env: EnvSource): string {
    return this.process(word, env).result;
  }

  /** Expands then splits `word` into words (quoted spaces kept). Throws {@link ShellLexError}. */
  processWords(word: string, env: EnvSource): string[] {
    return this.process(word, env).words;
  }

  /** Expands `word`, reporting which variables were used. */
  process(word: string, env: EnvSource): ProcessResult {
    const sw = new ShellWord(this, Array.from(word), envLookup(env));
    try {
      const [result, words] = sw.processStopOn(EOF, this.rawEscapes);
      return { result, words, matched: sw.matches, unmatched: sw.nonmatches };
    } catch (e) {
      if (e instanceof ShellLexError) throw new ShellLexError(`failed to process ${quoteForMessage(word)}: ${e.message}`);
      // Safety net when the caller's own stack was already deep.
      if (e instanceof RangeError) throw new ShellLexError(`failed to process ${quoteForMessage(word)}: expansion nested too deeply`);
      throw e;
    }
  }
}

/** The word as BuildKit quotes it (%q), shortened when it is long (a 10,000-level word would fill the terminal). */
function quoteForMessage(word: string): string {
  return word.length > 200 ? `${JSON.stringify(word.slice(0, 100))}... (${word.length} characters)` : JSON.stringify(word);
}

class ShellWord {
  private pos = 0;
  /** Current nesting of processStopOn (see MAX_EXPANSION_DEPTH). */
  private depth = 0;
  /** BuildKit shares one word buffer between nested expansions; kept for identical splitting. */
  private readonly wordsBuffer = { buf: '' };
  private rawEscapes: boolean;
  readonly matches = new Set<string>();
  readonly nonmatches = new Set<string>();

  constructor(
    private readonly lex: ShellLex,
    private readonly src: string[],
    private readonly env: EnvLookup,
  ) {
    this.rawEscapes = lex.rawEscapes;
  }

  private peek(): Ch {
    return this.pos < this.src.length ? this.src[this.pos]! : EOF;
  }
  private next(): Ch {
    return this.pos < this.src.length ? this.src[this.pos++]! : EOF;
  }

  processStopOn(stopChar: Ch, rawEscapes: boolean): [string, string[]] {
    if (this.depth > MAX_EXPANSION_DEPTH) {
      throw new ShellLexError(`variable expansion nested more than ${MAX_EXPANSION_DEPTH} levels deep`);
    }
    this.depth++;
    let result = '';
    this.wordsBuffer.buf = '';
    const words = new Words(this.wordsBuffer);
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.peek() !== EOF) {
        const ch = this.peek()!;
        if (stopChar !== EOF && ch === stopChar) {
          this.next();
          return [result, words.getWords()];
        }
        let special: (() => string) | undefined;
        if (ch === '$') special = () => this.processDollar();
        else if (ch === '<') special = () => this.processPossibleHeredoc();
        else if (!this.lex.skipProcessQuotes && ch === "'") special = () => this.processSingleQuote();
        else if (!this.lex.skipProcessQuotes && ch === '"') special = () => this.processDoubleQuote();
        if (special) {
          const tmp = special();
          result += tmp;
          if (ch === '$') words.addString(tmp);
          else words.addRawString(tmp);
          continue;
        }
        let c = this.next()!;
        if (c === this.lex.escapeToken) {
          if (this.rawEscapes) {
            words.addRawChar(c);
            result += c;
          }
          const n = this.next();
          if (n === EOF) break;
          c = n;
          words.addRawChar(c);
        } else {
          words.addChar(c);
        }
        result += c;
      }
      if (stopChar !== EOF) {
        throw new ShellLexError(`unexpected end of statement while looking for matching ${stopChar}`);
      }
      return [result, words.getWords()];
    } finally {
      this.rawEscapes = saved;
      this.depth--;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    let ch = this.next()!;
    if (this.lex.rawQuotes) result += ch;
    for (;;) {
      const c = this.next();
      if (c === EOF) throw new ShellLexError('unexpected end of statement while looking for matching single-quote');
      if (c === "'") {
        if (this.lex.rawQuotes) result += c;
        return result;
      }
      ch = c;
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.next()!;
    if (this.lex.rawQuotes) result += open;
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new ShellLexError('unexpected end of statement while looking for matching double-quote');
      if (p === '"') {
        this.next();
        if (this.lex.rawQuotes) result += '"';
        return result;
      }
      if (p === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next()!;
      if (ch === this.lex.escapeToken) {
        if (this.rawEscapes) result += ch;
        const q = this.peek();
        if (q === EOF) continue; // ignore an escape at the end of the word
        if (q === '"' || q === '$' || q === this.lex.escapeToken) ch = this.next()!;
      }
      result += ch;
    }
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && this.lex.skipUnsetEnv) return '$' + name;
      return value ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === EOF) throw new ShellLexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new ShellLexError('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let chs = ch ?? '\ufffd';
    let nullIsUnset = false;
    if (ch === '}') {
      const value = this.getEnv(name);
      if (value === undefined && this.lex.skipUnsetEnv) return `\${${name}}`;
      return value ?? '';
    }
    if (ch === ':' || ch === '+' || ch === '-' || ch === '?' || ch === '#' || ch === '%') {
      if (ch === ':') {
        nullIsUnset = true;
        ch = this.next();
        chs += ch ?? '\ufffd';
      }
      const raw = ch === '#' || ch === '%';
      if (nullIsUnset && raw) throw new ShellLexError(`unsupported modifier (${chs}) in substitution`);
      let word: string;
      try {
        [word] = this.processStopOn('}', raw);
      } catch (e) {
        if (this.peek() === EOF) throw new ShellLexError("syntax error: missing '}'");
        throw e;
      }
      const value = this.getEnv(name);
      const set = value !== undefined;
      if (this.lex.skipUnsetEnv && !set) return `\${${name}${chs}${word}}`;
      const v = value ?? '';
      switch (ch) {
        case '-':
          return !set || (nullIsUnset && v === '') ? word : v;
        case '+':
          return !set || (nullIsUnset && v === '') ? '' : word;
        case '?':
          if (!set) throw new ShellLexError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          if (nullIsUnset && v === '') throw new ShellLexError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          return v;
        case '%':
        case '#': {
          let greedy = false;
          if (word.length > 0 && word[0] === ch) {
            greedy = true;
            word = word.slice(1);
          }
          return ch === '%' ? trimSuffix(word, v, greedy) : trimPrefix(word, v, greedy);
        }
        default:
          throw new ShellLexError(`unsupported modifier (${chs}) in substitution`);
      }
    }
    if (ch === '/') {
      const replaceAll = this.peek() === '/';
      if (replaceAll) this.next();
      let pattern: string;
      try {
        [pattern] = this.processStopOn('/', true);
      } catch (e) {
        if (this.peek() === EOF) throw new ShellLexError("syntax error: missing '/' in ${}");
        throw e;
      }
      let replacement: string;
      try {
        [replacement] = this.processStopOn('}', true);
      } catch (e) {
        if (this.peek() === EOF) throw new ShellLexError("syntax error: missing '}'");
        throw e;
      }
      const value = this.getEnv(name);
      if (this.lex.skipUnsetEnv && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
      const re = shellPatternToRegex(pattern, true, false);
      const v = value ?? '';
      if (replaceAll) return goReplaceAll(re, v, replacement);
      re.lastIndex = 0;
      const m = re.exec(v);
      if (!m) return v;
      return v.slice(0, m.index) + replacement + v.slice(m.index + m[0].length);
    }
    throw new ShellLexError(`unsupported modifier (${chs}) in substitution`);
  }

  private processName(): string {
    let name = '';
    for (;;) {
      const ch = this.peek();
      if (ch === EOF) break;
      if (name.length === 0 && digitRe.test(ch)) {
        while (this.peek() !== EOF && digitRe.test(this.peek()!)) name += this.next();
        return name;
      }
      if (name.length === 0 && isSpecialParam(ch)) {
        return this.next()!;
      }
      if (!letterRe.test(ch) && !digitRe.test(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }

  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== '<') return '<';
    this.next();
    let space = '';
    for (let p = this.peek(); p === '\t' || p === '\r' || p === ' '; p = this.peek()) {
      space += p;
      this.next();
    }
    return '<<' + space;
  }

  private getEnv(name: string): string | undefined {
    const v = this.env.get(name);
    if (v !== undefined) this.matches.add(name);
    else this.nonmatches.add(name);
    return v;
  }
}

function isSpecialParam(ch: string): boolean {
  return ch === '@' || ch === '*' || ch === '#' || ch === '?' || ch === '-' || ch === '$' || ch === '!' || ch === '0';
}

/**
 * Shell wildcard pattern (`*`, `?`, `\` escapes; no brackets) to a regex with
 * Go semantics (`.` never matches a newline; code points, not UTF-16 units).
 */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = Array.from(pattern);
  const any = '[^\\n]';
  let out = anchored ? '^' : '';
  const star = greedy ? `${any}*` : `${any}*?`;
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i]!;
    switch (tok) {
      case '*':
        out += star;
        continue;
      case '?':
        out += any;
        continue;
      case '\\': {
        const nx = chars[i + 1];
        if (nx === '}' || nx === '/') continue;
        out += '\\';
        i++;
        tok = chars[i] ?? '\ufffd';
        if (tok !== '*' && tok !== '?' && tok !== '\\') {
          throw new ShellLexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${tok}'`);
        }
        break;
      }
      case '[': case ']': case '{': case '}': case '.': case '+': case '(': case ')': case '|': case '^': case '$':
        out += '\\';
        break;
    }
    out += tok;
  }
  return new RegExp(out, 'gu');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const re = shellPatternToRegex(pattern, greedy, true);
  re.lastIndex = 0;
  const m = re.exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

/** Reverses a pattern without reversing its escapes (`a\*c` -> `c\*a`). */
function reversePattern(pattern: string): string {
  const p = Array.from(pattern);
  const out: string[] = new Array(p.length);
  const last = p.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = p[i]!;
    const o = last - i;
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok;
      out[o] = p[i + 1]!;
      i += 2;
    } else {
      out[o] = tok;
      i++;
    }
  }
  return out.join('');
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('');
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  // Regexes cannot find the shortest rightmost match, so search the reversed string.
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

/** Go's `Regexp.ReplaceAllString`, including its empty-match rule and `$` template expansion. */
function goReplaceAll(re: RegExp, src: string, template: string): string {
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (!m) break;
    const start = m.index;
    const end = start + m[0].length;
    out += src.slice(lastMatchEnd, start);
    if (end > lastMatchEnd || start === 0) out += goExpand(template, m[0]);
    lastMatchEnd = end;
    const width = searchPos < src.length ? String.fromCodePoint(src.codePointAt(searchPos)!).length : 1;
    if (searchPos + width > end) searchPos += width;
    else if (searchPos + 1 > end) searchPos++;
    else searchPos = end;
  }
  return out + src.slice(lastMatchEnd);
}

/** Go's `Regexp.Expand` for a regex without groups: `$0`/`${0}` is the match, `$$` is `$`, other references are empty. */
function goExpand(template: string, match: string): string {
  let out = '';
  let t = template;
  for (;;) {
    const i = t.indexOf('$');
    if (i < 0) break;
    out += t.slice(0, i);
    t = t.slice(i + 1);
    if (t.startsWith('$')) {
      out += '$';
      t = t.slice(1);
      continue;
    }
    let name = '';
    let rest = t;
    let ok = false;
    if (t.startsWith('{')) {
      const m = /^\{([\p{L}\p{Nd}_]+)\}/u.exec(t);
      if (m) {
        name = m[1]!;
        rest = t.slice(m[0].length);
        ok = true;
      }
    } else {
      const m = /^[\p{L}\p{Nd}_]+/u.exec(t);
      if (m) {
        name = m[0];
        rest = t.slice(name.length);
        ok = true;
      }
    }
    if (!ok) {
      out += '$';
      continue;
    }
    t = rest;
    if (/^[0-9]+$/.test(name) && Number(name) === 0) out += match;
  }
  return out + t;
}

const defaultLex = new ShellLex();
const backtickLex = new ShellLex({ escapeToken: '`' });

/** Expands one word with BuildKit semantics (escape `\` unless told otherwise). */
export function expandWord(word: string, env: EnvSource, opts: { escape?: '\\' | '`' } = {}): string {
  return (opts.escape === '`' ? backtickLex : defaultLex).processWord(word, env);
}

/** Expands and splits a word into words with BuildKit semantics. */
export function expandWords(word: string, env: EnvSource, opts: { escape?: '\\' | '`' } = {}): string[] {
  return (opts.escape === '`' ? backtickLex : defaultLex).processWords(word, env);
}
