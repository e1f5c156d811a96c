/** Every `ocistack` command, in the order `ocistack --help` lists them. */
import type { CliCommand } from '../types.js';
import { command as build } from './build.js';
import { command as plan } from './plan.js';
import { command as push } from './push.js';
import { command as pull } from './pull.js';
import { command as copy } from './copy.js';
import { command as login } from './login.js';
import { command as logout } from './logout.js';

export const commands: CliCommand[] = [build, plan, push, pull, copy, login, logout];
