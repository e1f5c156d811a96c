/**
 * BuildKit's AST dump (`Node.Dump`): one `(keyword ["--flags"] "arg" ...)`
 * line per instruction. Used by the conformance vectors and `ocistack plan --format ast`.
 */
import type { AstInstruction, DockerfileAst } from './types.js';
import { goQuote, goQuoteList } from './gosyntax.js';

/** One instruction's dump, without the surrounding parentheses. */
export function dumpInstruction(node: AstInstruction): string {
  let s = node.keyword;
  if (node.flags.length > 0) s += ' ' + goQuoteList(node.flags);
  if (node.sub) s += ' (' + dumpInstruction(node.sub) + ')';
  else for (const a of node.args) s += ' ' + goQuote(a);
  return s.trim();
}

/** The whole file, one line per instruction, each ending with a newline. */
export function dumpAst(ast: DockerfileAst): string {
  return ast.instructions.map((n) => `(${dumpInstruction(n)})\n`).join('');
}
