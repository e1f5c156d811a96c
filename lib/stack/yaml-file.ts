/**
 * One YAML file of a stack, parsed with the `yaml` package so that every node
 * keeps its byte range: discovery, ocistack.yaml validation and the reference
 * scanner all report file:line:column, and pinning edits exact ranges.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import type { Document, Node, Scalar, YAMLMap } from 'yaml';
import type { StackLocation, TextSpan } from './types.js';

export interface YamlFile {
  /** Absolute path. */
  file: string;
  text: string;
  /** sha256 (hex) of `text` as read. */
  sha256: string;
  docs: Document.Parsed[];
  lines: LineCounter;
}

export async function readYamlFile(file: string): Promise<YamlFile> {
  const text = await readFile(file, 'utf8');
  return parseYamlText(file, text);
}

export function parseYamlText(file: string, text: string): YamlFile {
  const lines = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  // An empty stream is not an array of documents.
  const docs = Array.isArray(parsed) ? parsed : [];
  return { file, text, sha256: createHash('sha256').update(text).digest('hex'), docs, lines };
}

/** The user-facing name of a file: relative to the working directory when inside it. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

export function locationAt(y: YamlFile, offset: number): StackLocation {
  const { line, col } = y.lines.linePos(offset);
  return { file: y.file, line, column: col };
}

/** Where a node starts (its first character, the quote of a quoted scalar). */
export function nodeLocation(y: YamlFile, node: Node | null | undefined): StackLocation {
  return locationAt(y, node?.range?.[0] ?? 0);
}

/** The first syntax error of a document, with its place. */
export function firstError(y: YamlFile, doc: Document.Parsed): { message: string; location: StackLocation } | undefined {
  const e = doc.errors[0];
  if (!e) return undefined;
  // The yaml package appends a code excerpt to some messages; keep the first line.
  return { message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''), location: locationAt(y, e.pos[0]) };
}

/** The value of `key` in a map node (the node itself, scalars kept as nodes). */
export function child(node: unknown, key: string): Node | undefined {
  if (!isMap(node)) return undefined;
  for (const pair of node.items) {
    if (isScalar(pair.key) && pair.key.value === key) return (pair.value ?? undefined) as Node | undefined;
  }
  return undefined;
}

export function childPath(node: unknown, keys: string[]): Node | undefined {
  let cur: unknown = node;
  for (const k of keys) cur = child(cur, k);
  return cur as Node | undefined;
}

/** The string value of a scalar node, or undefined when it is not a string scalar. */
export function stringOf(node: unknown): string | undefined {
  return isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
}

export function itemsOf(node: unknown): unknown[] {
  return isSeq(node) ? node.items : [];
}

/**
 * The offsets of a scalar's value text when the source spells the value
 * literally (plain, or quoted without escapes, on one line), so that
 * replacing that span replaces exactly the value and keeps the quotes.
 * Undefined for block scalars, escapes, folded lines: not safely editable.
 */
export function literalSpan(y: YamlFile, node: Scalar): TextSpan | undefined {
  const r = node.range;
  if (!r || typeof node.value !== 'string') return undefined;
  let start = r[0];
  let end = r[1];
  if (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') {
    start += 1;
    end -= 1;
  } else if (node.type !== 'PLAIN') {
    return undefined;
  }
  const raw = y.text.slice(start, end);
  return raw === node.value && !raw.includes('\n') ? { start, end } : undefined;
}

export type { YAMLMap };
