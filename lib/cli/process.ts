/**
 * The CLI as a process (what bin/ocistack.js runs): `main` with SIGINT and
 * SIGTERM wired to one AbortController.
 *
 * First signal: abort the controller (the library stops at its next check,
 * removes its temp files and fails with ABORTED), wait for it to unwind, at
 * most {@link UNWIND_MS}, remove every temp path still registered
 * (lib/temp-files.ts), and exit 128 + signal number: 130 for SIGINT, 143
 * for SIGTERM, as shells report a process killed by them. A second signal
 * exits at once, after a synchronous removal of the registered temp paths.
 * The same synchronous removal runs on every 'exit', as a last resort.
 */
import { interruptedError } from '../abort.js';
import { removeRegisteredTemps, removeRegisteredTempsSync } from '../temp-files.js';
import { main } from './main.js';
import { finishAllProgress } from './progress-flag.js';

/** How long the library may take to unwind after an abort. */
export const UNWIND_MS = 5_000;

const EXIT_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export async function runCli(argv: string[]): Promise<void> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    const code = EXIT_CODES[sig]!;
    if (received) {
      process.stderr.write(`${sig} again: quitting now\n`);
      removeRegisteredTempsSync();
      process.exit(EXIT_CODES[received]);
    }
    received = sig;
    process.exitCode = code;
    finishAllProgress(); // the progress view's last frame first, then our message below it
    process.stderr.write(`\n${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: stopping and removing temp files (${sig === 'SIGINT' ? 'Ctrl-C' : 'signal'} again to quit at once)\n`);
    controller.abort(interruptedError(`received ${sig}`));
    // Bounded: a request that does not notice the abort cannot keep us here.
    setTimeout(() => {
      removeRegisteredTempsSync();
      process.exit(code);
    }, UNWIND_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', removeRegisteredTempsSync);
  const code = await main(argv, { signal: controller.signal });
  if (received) {
    await removeRegisteredTemps();
    process.exit(EXIT_CODES[received]);
  }
  process.exitCode = code;
}
