/** Every `ocistack` command, in the order `ocistack --help` lists them. */
import type { CliCommand } from '../types.js';
import { command as build } from './build.js';
import { command as plan } from './plan.js';

export const commands: CliCommand[] = [build, plan];
