/**
 * A Lambda container in its own process: imports the built function once (the
 * init phase), then runs each event the parent sends with a Lambda context, as
 * the Node runtime would. Running it apart from the emulators means its memory
 * figures are the function's alone. Built to bench/.build/container.mjs and run
 * with plain node (no tsx in the process being measured).
 *
 * Env: BENCH_BUNDLE (file path of the function bundle), BENCH_TIMEOUT_MS.
 * The function's own log lines go to stdout, exactly as in Lambda.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { lambdaContext } from '../../infra/local/lambda-context.js';
import type { FromContainer, ToContainer } from './protocol.js';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

// LOCAL_LAMBDA_ARN of infra/local/stack.ts, spelled out: importing the stack would bundle both emulators into the measured process.
const FUNCTION_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:stytch-secret-rotation-local';
const send = (message: FromContainer): void => {
  process.send?.(message);
};

let peakRss = process.memoryUsage().rss;
setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50).unref();

const bundle = process.env.BENCH_BUNDLE;
if (!bundle || !process.send) throw new Error('worker.ts runs as a child of the bench, with BENCH_BUNDLE set');
const timeoutMs = Number(process.env.BENCH_TIMEOUT_MS ?? 60_000);

const bootMs = performance.now();
const { handler } = (await import(pathToFileURL(bundle).href)) as { handler: Handler };
const importMs = performance.now() - bootMs;

process.on('message', (message: ToContainer) => {
  if (message.type === 'report') {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    // Diagnostics only: with --expose-gc, the figures after a full collection are the live set.
    (globalThis as { gc?: () => void }).gc?.();
    const now = process.memoryUsage();
    const usage = process.resourceUsage();
    send({
      type: 'report',
      peakRssSampledBytes: peakRss,
      maxRssKb: usage.maxRSS,
      rssBytes: now.rss,
      heapUsedBytes: now.heapUsed,
      heapTotalBytes: now.heapTotal,
      externalBytes: now.external,
      cpuUserMs: usage.userCPUTime / 1000,
      cpuSystemMs: usage.systemCPUTime / 1000,
    });
    return;
  }
  const { id, event } = message;
  handler(event, lambdaContext({ functionArn: FUNCTION_ARN, timeoutMs })).then(
    () => send({ type: 'result', id, ok: true }),
    (error: unknown) => {
      const e = error instanceof Error ? error : new Error(String(error));
      send({ type: 'result', id, ok: false, name: e.name, message: e.message });
    },
  );
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', importMs, bootMs });
