/**
 * Small re-implementations of Go standard-library behaviour that BuildKit's
 * output depends on: `unicode.IsSpace`, `strconv.Quote`, `fmt.Sprintf("%q")`
 * of a string slice and `%v` of a string slice. Exact byte-for-byte output
 * matters because the conformance vectors are BuildKit dumps.
 */

/** Go's `unicode.IsSpace` (differs from JS `\s`: has U+0085, lacks U+FEFF). */
export function isGoSpace(ch: string | undefined): boolean {
  if (ch === undefined) return false;
  const c = ch.codePointAt(0)!;
  switch (c) {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20: case 0x85: case 0xa0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
      return true;
  }
  return c >= 0x2000 && c <= 0x200a;
}

/** Go's `strings.TrimSpace`. */
export function goTrimSpace(s: string): string {
  return goTrimRightSpace(goTrimLeftSpace(s));
}

export function goTrimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length) {
    const ch = String.fromCodePoint(s.codePointAt(i)!);
    if (!isGoSpace(ch)) break;
    i += ch.length;
  }
  return s.slice(i);
}

export function goTrimRightSpace(s: string): string {
  let end = s.length;
  while (end > 0) {
    const ch = s[end - 1]!;
    // none of Go's spaces are astral, so one UTF-16 unit is enough
    if (!isGoSpace(ch)) break;
    end--;
  }
  return s.slice(0, end);
}

const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** Go's `strconv.Quote`: double-quoted, Go escapes, printable Unicode kept. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') {
      out += '\\' + ch;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      // lone surrogate: Go would see invalid UTF-8 and print the replacement char escape
      out += '\\ufffd';
      continue;
    }
    if (printable.test(ch)) {
      out += ch;
      continue;
    }
    switch (c) {
      case 0x07: out += '\\a'; continue;
      case 0x08: out += '\\b'; continue;
      case 0x0c: out += '\\f'; continue;
      case 0x0a: out += '\\n'; continue;
      case 0x0d: out += '\\r'; continue;
      case 0x09: out += '\\t'; continue;
      case 0x0b: out += '\\v'; continue;
    }
    if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (c < 0x10000) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += '\\U' + c.toString(16).padStart(8, '0');
  }
  return out + '"';
}

/** `fmt.Sprintf("%q", []string{...})`: `["a" "b"]`. */
export function goQuoteList(list: string[]): string {
  return '[' + list.map(goQuote).join(' ') + ']';
}

/** `fmt.Sprintf("%v", []string{...})`: `[a b]`. */
export function goList(list: string[]): string {
  return '[' + list.join(' ') + ']';
}
