import { runCli } from './cli.js';

/**
 * Entry point: `npm run cli -- <command>` (tsx) or the `stytch-secret-rotation`
 * bin (the bundle dist/cli/index.mjs). Exit codes: 0 consistent, 1 needs
 * attention, 2 consumers are failing now, 3 usage or access error.
 */

// The pinned AWS SDK warns about Node 20 (which this project supports) on the first client of every run.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * A reader that went away (`| head -1`) ends the output, not the command: what
 * the command does still finishes (a lease it holds is given back), quietly.
 */
const closed = new Set<NodeJS.WriteStream>();
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    closed.add(stream);
  });
}
const write = (stream: NodeJS.WriteStream, line: string): void => {
  if (!closed.has(stream)) stream.write(`${line}\n`);
};

const bundled = import.meta.url.endsWith('.mjs');
process.exitCode = await runCli(process.argv.slice(2), {
  cli: bundled ? 'stytch-secret-rotation' : 'npm run cli --',
  io: {
    out: (line) => write(process.stdout, line),
    err: (line) => write(process.stderr, line),
  },
});
