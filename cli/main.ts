import { runCli } from './cli.js';

/**
 * Entry point: `npm run cli -- <command>` (tsx) or the `stytch-secret-rotation`
 * bin (the bundle dist/cli/index.mjs). Exit codes: 0 consistent, 1 needs
 * attention, 2 drift, 3 usage or access error.
 */
const bundled = import.meta.url.endsWith('.mjs');
process.exitCode = await runCli(process.argv.slice(2), {
  cli: bundled ? 'stytch-secret-rotation' : 'npm run cli --',
  io: {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  },
});
