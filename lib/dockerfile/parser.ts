/**
 * Dockerfile text -> {@link DockerfileAst}, following BuildKit's parser
 * (frontend/dockerfile/parser) rule for rule: parser directives, escape
 * token, line continuations (with comments and blank lines inside), heredocs,
 * BOM and CRLF, and the per-instruction argument splitting its AST dump shows.
 *
 * The algorithms are BuildKit's (moby/buildkit, Apache-2.0; see NOTICE),
 * re-implemented function by function, not translated line by line:
 *   frontend/dockerfile/parser/parser.go      Parse -> parseDockerfile, newNodeFromLine -> nodeFromLine,
 *                                             trimNewline/isComment/the line-continuation regex,
 *                                             heredocsFromLine, ParseHeredoc -> parseHeredoc,
 *                                             ChompHeredocContent -> chompHeredocContent
 *   frontend/dockerfile/parser/directives.go  DirectiveParser (syntax, escape, check)
 *   frontend/dockerfile/parser/split_command.go  splitCommand, extractBuilderFlags
 *   frontend/dockerfile/parser/line_parsers.go  parseSubCommand, parseWords, parseNameVal,
 *                                             parseNameOrNameVal, parseStringsWhitespaceDelimited,
 *                                             parseString, parseJSON, parseMaybeJSON,
 *                                             parseMaybeJSONToList, parseHealthConfig
 *   frontend/dockerfile/parser/errors.go      the messages of LineError
 * Behaviour is pinned by BuildKit's own test vectors (the conformance suite).
 *
 * `dockerfile-ast` is not used for this step: its tree does not reproduce
 * BuildKit's argument splitting (JSON fallbacks, ENV/LABEL triples, flag
 * extraction), which the conformance vectors check byte for byte.
 */
import type { AstHeredoc, AstInstruction, Diagnostic, DockerfileAst, ParserDirectives } from './types.js';
import { goTrimLeftSpace, goTrimSpace, isGoSpace } from './gosyntax.js';
import { ShellLex } from './lex.js';
import { instructionError, syntaxError } from './diagnostics.js';

/** Instructions whose arguments may hold heredocs. */
const HEREDOC_KEYWORDS = new Set(['add', 'copy', 'run']);

type LineParser = (rest: string, p: ParseContext) => ParsedArgs;

interface ParsedArgs {
  args: string[];
  json: boolean;
  /** ONBUILD's inner instruction. */
  sub?: AstInstruction;
}

interface ParseContext {
  escape: '\\' | '`';
  /** Where line parsers report non-fatal findings. */
  warnings: Diagnostic[];
  file: string;
  line: number;
  endLine: number;
}

/** A line could not be parsed; carries the message BuildKit would give. */
class LineError extends Error {}

export interface ParseOptions {
  /** File name used in locations and errors (default `Dockerfile`). */
  file?: string;
}

/**
 * Parses Dockerfile text. Unknown instructions are kept (BuildKit's parser
 * keeps them too); {@link plan} rejects them with a did-you-mean hint.
 * @throws OcistackError code `DOCKERFILE_SYNTAX` with file:line and a hint.
 */
export function parseDockerfile(text: string, opts: ParseOptions = {}): DockerfileAst {
  const file = opts.file ?? 'Dockerfile';
  const lines = scanLines(text);
  const directives: ParserDirectives = { escape: '\\' };
  const dirParser = new DirectiveParser();
  let continuation = continuationRegex('\\');
  const instructions: AstInstruction[] = [];
  const warnings: Diagnostic[] = [];
  let i = 0;
  let currentLine = 0;

  const processLine = (raw: string, stripLeft: boolean): string => {
    let token = trimNewline(raw);
    if (stripLeft) token = goTrimLeftSpace(token);
    let directive: { name: string; value: string } | undefined;
    try {
      directive = dirParser.parseLine(token);
    } catch (e) {
      throw syntaxError((e as Error).message, { file, line: currentLine + 1 }, 'each parser directive may appear once, at the top of the file');
    }
    if (directive) {
      if (directive.name === 'escape') {
        if (directive.value !== '`' && directive.value !== '\\') {
          throw syntaxError(`invalid escape token '${directive.value}' does not match \` or \\`, { file, line: currentLine + 1 }, 'write "# escape=\\" or "# escape=`"');
        }
        directives.escape = directive.value;
        continuation = continuationRegex(directive.value);
      } else if (directive.name === 'syntax') {
        directives.syntax = directive.value;
      } else if (directive.name === 'check') {
        directives.check = directive.value;
      }
    }
    return isComment(token) ? '' : token;
  };
  const trimContinuation = (line: string): [string, boolean] => {
    if (continuation.test(line)) return [line.replace(continuation, '$1'), false];
    return [line, true];
  };

  while (i < lines.length) {
    let raw = lines[i++]!;
    if (currentLine === 0 && raw.startsWith('\ufeff')) raw = raw.slice(1);
    let bytesRead = processLine(raw, true);
    currentLine++;
    const startLine = currentLine;
    let [first, isEndOfLine] = trimContinuation(bytesRead);
    if (isEndOfLine && first.length === 0) continue;
    let line = first;
    let hasEmptyContinuationLine = false;
    while (!isEndOfLine && i < lines.length) {
      const rawNext = lines[i++]!;
      bytesRead = processLine(rawNext, false);
      currentLine++;
      if (isComment(trimNewline(rawNext))) continue;
      if (goTrimLeftSpace(bytesRead).length === 0) {
        hasEmptyContinuationLine = true;
        continue;
      }
      let part: string;
      [part, isEndOfLine] = trimContinuation(bytesRead);
      line += part;
    }
    if (hasEmptyContinuationLine) {
      warnings.push({
        message: `Empty continuation line found in: ${line} (empty continuation lines will become errors in a future release)`,
        location: { file, line: currentLine },
      });
    }
    const ctx: ParseContext = { escape: directives.escape, warnings, file, line: startLine, endLine: currentLine };
    const node = nodeFromLine(line, ctx, columnOf(raw));
    const target = node.keyword === 'onbuild' && node.sub ? node.sub : node;
    if (HEREDOC_KEYWORDS.has(target.keyword) && !target.json && line.includes('<<')) {
      let heredocs: AstHeredoc[];
      try {
        heredocs = heredocsFromLine(line);
      } catch (e) {
        throw syntaxError((e as Error).message, { file, line: startLine }, 'check the quoting of the heredoc delimiter');
      }
      for (const h of heredocs) {
        let terminated = false;
        let content = '';
        while (i < lines.length) {
          const body = lines[i++]!;
          currentLine++;
          let possible = trimNewline(body);
          if (h.chomp) possible = possible.replace(/^\t+/, '');
          if (possible === h.name) {
            terminated = true;
            break;
          }
          content += body;
        }
        if (!terminated) {
          throw syntaxError(`unterminated heredoc <<${h.name}`, { file, line: startLine, column: columnOf(raw) },
            `the heredoc started on line ${startLine} needs a line "${h.name}" to end it`);
        }
        h.content = content;
        node.heredocs.push(h);
        if (node !== target) target.heredocs.push(h);
      }
    }
    node.endLine = currentLine;
    if (node.sub) node.sub.endLine = currentLine;
    instructions.push(node);
  }

  if (instructions.length === 0) {
    throw syntaxError('file with no instructions', { file, line: Math.max(currentLine, 1) },
      'a Dockerfile needs at least a FROM instruction');
  }
  return { file, directives, instructions, warnings };
}

function columnOf(raw: string): number {
  let i = 0;
  const s = raw.startsWith('\ufeff') ? raw.slice(1) : raw;
  while (i < s.length && isGoSpace(s[i])) i++;
  return i + 1;
}

/** Splits into lines keeping each line's `\n` (BuildKit's scanLines). */
function scanLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      out.push(text.slice(start));
      break;
    }
    out.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  return out;
}

function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, '');
}

function isComment(line: string): boolean {
  return goTrimLeftSpace(line).startsWith('#');
}

function continuationRegex(escape: string): RegExp {
  const e = escape === '\\' ? '\\\\' : escape;
  // The escape token ends a line unless it is itself escaped; a token alone on a line also continues.
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

/** BuildKit's directive rules: only at the top, each once, `# name=value`. */
class DirectiveParser {
  private done = false;
  private readonly seen = new Set<string>();

  parseLine(line: string): { name: string; value: string } | undefined {
    if (this.done) return undefined;
    if (!line.startsWith('#')) {
      this.done = true;
      return undefined;
    }
    const body = goTrimLeftSpace(line.slice(1));
    const m = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/.exec(body);
    if (!m) {
      this.done = true;
      return undefined;
    }
    const k = m[1]!.toLowerCase();
    if (k !== 'syntax' && k !== 'escape' && k !== 'check') {
      this.done = true;
      return undefined;
    }
    if (this.seen.has(k)) throw new Error(`only one ${k} parser directive can be used`);
    this.seen.add(k);
    return { name: k, value: m[2]! };
  }
}

const WS_RE = /[\t\v\f\r ]+/;

function nodeFromLine(line: string, ctx: ParseContext, column: number): AstInstruction {
  const { cmd, flags, args } = splitCommand(line, ctx.escape);
  const keyword = cmd.toLowerCase();
  const fn = DISPATCH[keyword];
  let parsed: ParsedArgs;
  try {
    parsed = fn ? fn(args, ctx) : { args: [''], json: false };
  } catch (e) {
    if (e instanceof LineError) {
      throw instructionError(e.message, line, { file: ctx.file, line: ctx.line, column }, hintFor(keyword, e.message));
    }
    throw e;
  }
  const node: AstInstruction & { keywordRaw?: string; sub?: AstInstruction } = {
    keyword,
    flags,
    args: parsed.args,
    json: parsed.json,
    heredocs: [],
    original: line,
    location: { file: ctx.file, line: ctx.line, column },
    endLine: ctx.endLine,
  };
  node.keywordRaw = cmd;
  if (parsed.sub) node.sub = parsed.sub;
  return node;
}

function hintFor(keyword: string, message: string): string {
  if (/JSON array/i.test(message) || /strings only/.test(message)) {
    return `write the exec form as a JSON array of strings, e.g. ${keyword.toUpperCase()} ["executable", "arg"]`;
  }
  if (keyword === 'env' || keyword === 'label') return `write ${keyword.toUpperCase()} key=value [key=value...]`;
  return `see the ${keyword.toUpperCase()} reference in docs/dockerfile.md`;
}

/** Keyword, `--flags` and the rest of the line (BuildKit splitCommand). */
function splitCommand(line: string, escape: string): { cmd: string; flags: string[]; args: string } {
  const trimmed = goTrimSpace(line);
  const m = WS_RE.exec(trimmed);
  if (!m) return { cmd: trimmed, flags: [], args: '' };
  const cmd = trimmed.slice(0, m.index);
  const rest = trimmed.slice(m.index + m[0].length);
  const { rest: args, flags } = extractBuilderFlags(rest, escape);
  return { cmd, flags, args: goTrimSpace(args) };
}

/**
 * Leading `--flag[=value]` words. BuildKit scans this byte by byte (so
 * quotes and the escape token are removed inside flags); reproduced on the
 * UTF-8 bytes for identical results with non-ASCII text.
 */
function extractBuilderFlags(line: string, escape: string): { rest: string; flags: string[] } {
  const bytes = Buffer.from(line, 'utf8');
  const esc = escape.charCodeAt(0);
  const isSpaceByte = (b: number) => b === 0x09 || b === 0x0a || b === 0x0b || b === 0x0c || b === 0x0d || b === 0x20 || b === 0x85 || b === 0xa0;
  const restFrom = (pos: number) => bytes.subarray(pos).toString('utf8');
  const flags: string[] = [];
  const IN_SPACES = 0, IN_WORD = 1, IN_QUOTE = 2;
  let phase = IN_SPACES;
  let word = '';
  let quote = 0;
  let blankOK = false;
  let ch = 0;
  for (let pos = 0; pos <= bytes.length; pos++) {
    if (pos !== bytes.length) ch = bytes[pos]!;
    if (phase === IN_SPACES) {
      if (pos === bytes.length) break;
      if (isSpaceByte(ch)) continue;
      if (ch !== 0x2d || pos + 1 === bytes.length || bytes[pos + 1] !== 0x2d) return { rest: restFrom(pos), flags };
      phase = IN_WORD;
    }
    if ((phase === IN_WORD || phase === IN_QUOTE) && pos === bytes.length) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === IN_WORD) {
      if (isSpaceByte(ch)) {
        phase = IN_SPACES;
        if (word === '--') return { rest: restFrom(pos), flags };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === 0x27 || ch === 0x22) {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
        continue;
      }
      if (ch === esc) {
        if (pos + 1 === bytes.length) continue;
        pos++;
        ch = bytes[pos]!;
      }
      word += String.fromCharCode(ch);
      continue;
    }
    if (phase === IN_QUOTE) {
      if (ch === quote) {
        phase = IN_WORD;
        continue;
      }
      if (ch === esc) {
        if (pos + 1 === bytes.length) {
          phase = IN_WORD;
          continue;
        }
        pos++;
        ch = bytes[pos]!;
      }
      word += String.fromCharCode(ch);
    }
  }
  // Like BuildKit, non-ASCII bytes inside flags come out as one Latin-1 character per byte.
  return { rest: '', flags };
}

// ------------------------------------------------------------ line parsers --

const DISPATCH: Record<string, LineParser> = {
  add: parseMaybeJSONToList,
  arg: parseNameOrNameVal,
  cmd: parseMaybeJSON,
  copy: parseMaybeJSONToList,
  entrypoint: parseMaybeJSON,
  env: (rest, p) => parseNameVal(rest, 'ENV', p),
  expose: parseStringsWhitespaceDelimited,
  from: parseStringsWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: (rest, p) => parseNameVal(rest, 'LABEL', p),
  maintainer: parseString,
  onbuild: parseSubCommand,
  run: parseMaybeJSON,
  shell: parseMaybeJSON,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJSONToList,
  workdir: parseString,
};

/** Keywords BuildKit knows. */
export const INSTRUCTION_KEYWORDS = Object.keys(DISPATCH);

function parseSubCommand(rest: string, p: ParseContext): ParsedArgs {
  if (rest === '') return { args: [], json: false };
  const sub = nodeFromLine(rest, p, 1);
  return { args: [], json: false, sub };
}

/** Space-separated words, quotes kept (BuildKit parseWords). */
function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  const chars = Array.from(rest);
  const IN_SPACES = 0, IN_WORD = 1, IN_QUOTE = 2;
  let phase = IN_SPACES;
  let quote = '';
  let blankOK = false;
  let word = '';
  let ch = '';
  for (let pos = 0; pos <= chars.length; pos++) {
    if (pos !== chars.length) ch = chars[pos]!;
    if (phase === IN_SPACES) {
      if (pos === chars.length) break;
      if (isGoSpace(ch)) continue;
      phase = IN_WORD;
    }
    if ((phase === IN_WORD || phase === IN_QUOTE) && pos === chars.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === IN_WORD) {
      if (isGoSpace(ch)) {
        phase = IN_SPACES;
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
      }
      if (ch === escape) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos]!;
      }
      word += ch;
      continue;
    }
    if (phase === IN_QUOTE) {
      if (ch === quote) phase = IN_WORD;
      if (ch === escape && quote !== "'") {
        if (pos + 1 === chars.length) {
          phase = IN_WORD;
          continue;
        }
        pos++;
        word += ch;
        ch = chars[pos]!;
      }
      word += ch;
    }
  }
  return words;
}

function parseNameVal(rest: string, key: string, p: ParseContext): ParsedArgs {
  const words = parseWords(rest, p.escape);
  if (words.length === 0) return { args: [], json: false };
  if (!words[0]!.includes('=')) {
    const m = WS_RE.exec(rest);
    if (!m) throw new LineError(`${key} must have two arguments`);
    return { args: [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''], json: false };
  }
  const args: string[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 0) throw new LineError(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    args.push(w.slice(0, eq), w.slice(eq + 1), '=');
  }
  return { args, json: false };
}

function parseNameOrNameVal(rest: string, p: ParseContext): ParsedArgs {
  return { args: parseWords(rest, p.escape), json: false };
}

function parseStringsWhitespaceDelimited(rest: string): ParsedArgs {
  if (rest === '') return { args: [], json: false };
  return { args: rest.split(WS_RE), json: false };
}

function parseString(rest: string): ParsedArgs {
  if (rest === '') return { args: [], json: false };
  return { args: [rest], json: false };
}

class NotStringArray extends LineError {}

/** Returns undefined when `rest` is not a JSON array (shell form). */
function parseJSON(rest: string): string[] | undefined {
  const r = goTrimLeftSpace(rest);
  if (!r.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(r);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const out: string[] = [];
  for (const item of parsed) {
    if (typeof item !== 'string') throw new NotStringArray('when using JSON array syntax, arrays must be comprised of strings only');
    // Go's JSON decoder replaces lone surrogates with U+FFFD
    out.push(item.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'));
  }
  return out;
}

function parseMaybeJSON(rest: string, p?: ParseContext): ParsedArgs {
  if (rest === '') return { args: [], json: false };
  const list = parseJSON(rest);
  if (list) return { args: list, json: true };
  if (p) warnNotJSON(rest, p);
  return { args: [rest], json: false };
}

function parseMaybeJSONToList(rest: string, p: ParseContext): ParsedArgs {
  const list = parseJSON(rest);
  if (list) return { args: list, json: true };
  warnNotJSON(rest, p);
  return parseStringsWhitespaceDelimited(rest);
}

/**
 * Text that starts like a JSON array but is not one (unterminated, single
 * quotes...) silently becomes shell form in BuildKit; say so, with where it starts.
 */
function warnNotJSON(rest: string, p: ParseContext): void {
  if (!goTrimLeftSpace(rest).startsWith('[')) return;
  p.warnings.push({
    message: `arguments starting with "[" are not a valid JSON array, so they are used as a shell-form string: ${rest.length > 60 ? rest.slice(0, 57) + '...' : rest} (use double quotes and close the array for the exec form)`,
    location: { file: p.file, line: p.line },
  });
}

function parseHealthConfig(rest: string, p: ParseContext): ParsedArgs {
  const bytes = Buffer.from(rest, 'utf8');
  const sp = (b: number) => b === 0x09 || b === 0x0a || b === 0x0b || b === 0x0c || b === 0x0d || b === 0x20 || b === 0x85 || b === 0xa0;
  let sep = 0;
  while (sep < bytes.length && !sp(bytes[sep]!)) sep++;
  let next = sep;
  while (next < bytes.length && sp(bytes[next]!)) next++;
  if (sep === 0) return { args: [], json: false };
  const typ = bytes.subarray(0, sep).toString('utf8');
  const cmd = parseMaybeJSON(bytes.subarray(next).toString('utf8'), p);
  return { args: [typ, ...cmd.args], json: cmd.json };
}

// ---------------------------------------------------------------- heredocs --

/** Heredoc words (`<<EOF`, `<<-"EOF"`, `3<<EOF`) on an instruction line. */
function heredocsFromLine(line: string): AstHeredoc[] {
  const lex = new ShellLex({ rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
  let words: string[];
  try {
    words = lex.processWords(line, {});
  } catch {
    words = [];
  }
  const docs: AstHeredoc[] = [];
  for (const w of words) {
    const h = parseHeredoc(w);
    if (h) docs.push(h);
  }
  return docs;
}

/**
 * Parses one heredoc word. `expand` is false when any part of the delimiter
 * is quoted. Returns undefined when `word` is not a heredoc.
 */
export function parseHeredoc(word: string): AstHeredoc | undefined {
  const m = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/.exec(word);
  if (!m) return undefined;
  const rest = m[3]!;
  if (rest.length === 0) return undefined;
  const lex = new ShellLex({ skipUnsetEnv: true });
  const words = lex.processWords(rest, {});
  if (words.length !== 1) return undefined;
  lex.rawQuotes = true;
  const raw = lex.processWords(rest, {});
  if (raw.length !== words.length) throw new Error(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
  const name = words[0]!;
  const h: AstHeredoc = { name, content: '', expand: quotes(name) === quotes(raw[0]!), chomp: m[2] === '-' };
  if (m[1]) h.fileDescriptor = Number(m[1]);
  return h;
}

/** Strips leading tabs from every line (`<<-`). */
export function chompHeredocContent(src: string): string {
  return src.replace(/(?<=^|\n)\t+/g, '');
}
