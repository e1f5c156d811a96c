/** Every `ocistack` command, in the order `ocistack --help` lists them. */
import type { CliCommand } from '../types.js';
import { command as build } from './build.js';

export const commands: CliCommand[] = [build];
