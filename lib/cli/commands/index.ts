/**
 * Every `ocistack` command, in the order `ocistack --help` lists them.
 *
 * Commands are loaded on demand: `ocistack pull` must not pay for importing
 * the Dockerfile front end and the build engine (tens of milliseconds of
 * start-up on every run). Each module stays the one source of its summary and
 * help text; `ocistack --help` loads them all.
 */
import type { CliCommand } from '../types.js';

/** A command known by name, loaded when it is run or its help is shown. */
export interface CommandEntry {
  name: string;
  load(): Promise<CliCommand>;
}

export const commandEntries: CommandEntry[] = [
  { name: 'stack', load: async () => (await import('./stack.js')).command },
  { name: 'build', load: async () => (await import('./build.js')).command },
  { name: 'plan', load: async () => (await import('./plan.js')).command },
  { name: 'push', load: async () => (await import('./push.js')).command },
  { name: 'pull', load: async () => (await import('./pull.js')).command },
  { name: 'copy', load: async () => (await import('./copy.js')).command },
  { name: 'login', load: async () => (await import('./login.js')).command },
  { name: 'logout', load: async () => (await import('./logout.js')).command },
  { name: 'cache', load: async () => (await import('./cache.js')).command },
];

/** Names of all commands, in help order. */
export const commandNames: string[] = commandEntries.map((c) => c.name);

/** Load every command (for `ocistack --help`). */
export function loadAllCommands(): Promise<CliCommand[]> {
  return Promise.all(commandEntries.map((c) => c.load()));
}
