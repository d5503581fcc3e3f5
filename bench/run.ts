/**
 * `npm run bench` (after `npm run build`): bundle size, cold import against a
 * baseline, calls (Secrets Manager, Stytch, state table) and wall time per
 * rotation, a rate-limited run of many rotations, and the retirement sweep
 * over many due secrets, all through the local stack. Prints a table, writes
 * the figures to bench/results/latest.json (and a timestamped copy), and
 * checks them against the targets. See docs/performance.md.
 *
 *   npm run bench                       the full run (about 3.5 minutes on 2 cores)
 *   npm run bench -- --quick            smaller samples, for trying changes
 *   npm run bench -- --secrets 1000 --concurrency 50 --rps 100 --sm-attempts 3
 *   npm run bench -- --stytch-max-attempts 6 --strip-retry-after --skip-memory128
 *   npm run bench -- --sweep-secrets 1000 --sweep-latency-ms 100   (or --skip-sweep)
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { analyzeBundle, BASELINE_BUNDLE, buildBaseline, buildContainer, FUNCTION_BUNDLE } from './bundle.js';
import { measureColdImport } from './cold-import.js';
import { measureColdRotation } from './cold-rotation.js';
import { describeMachine, loadAverage } from './lib/machine.js';
import { renderTable } from './report.js';
import { measureRotations } from './rotations.js';
import { lambdaHeapFlags, measureScale } from './scale.js';
import { measureSweep } from './sweep.js';
import { evaluateTargets, type Figures } from './targets.js';

process.chdir(resolve(dirname(fileURLToPath(import.meta.url)), '..'));

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    pairs: { type: 'string' },
    secrets: { type: 'string' },
    concurrency: { type: 'string', default: '50' },
    rps: { type: 'string', default: '100' },
    'sm-attempts': { type: 'string', default: '3' },
    'stytch-max-attempts': { type: 'string' },
    'strip-retry-after': { type: 'boolean', default: false },
    'skip-memory128': { type: 'boolean', default: false },
    'sweep-secrets': { type: 'string' },
    'sweep-latency-ms': { type: 'string', default: '0' },
    'skip-sweep': { type: 'boolean', default: false },
  },
});
const quick = args.quick === true;
const int = (value: string | undefined, fallback: number) => (value === undefined ? fallback : Number.parseInt(value, 10));

// The in-process stack's copy of the function runs on this Node (20); Lambda runs 22, where the SDK never warns.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);
const started = performance.now();
const machine = describeMachine();

progress('bundle figures and helper builds');
const bundle = await analyzeBundle();
const baseline = await buildBaseline();
await buildContainer();

const pairs = int(args.pairs, quick ? 10 : 25);
progress(`cold import, ${pairs} interleaved pairs`);
const coldImport = measureColdImport(FUNCTION_BUNDLE, BASELINE_BUNDLE, pairs);

progress('calls per rotation, credentials reads, warm rotations');
const rotations = await measureRotations({ warmRotations: quick ? 30 : 40, warmup: 5 });

progress('first rotation in cold containers');
const coldRotation = await measureColdRotation(quick ? 4 : 8);

const functionEnv: Record<string, string> = {};
if (args['stytch-max-attempts']) functionEnv.STYTCH_MAX_ATTEMPTS = args['stytch-max-attempts'];
const scaleOptions = {
  secrets: int(args.secrets, quick ? 200 : 1000),
  concurrency: int(args.concurrency, 50),
  requestsPerSecond: int(args.rps, 100),
  smAttempts: int(args['sm-attempts'], 3),
  functionEnv,
  stripRetryAfter: args['strip-retry-after'] === true,
  nodeArgs: [],
};
progress(`scale: ${scaleOptions.secrets} secrets, ${scaleOptions.concurrency} at a time, Stytch ${scaleOptions.requestsPerSecond} req/s`);
const scale = await measureScale(scaleOptions);

let memory128;
if (args['skip-memory128'] !== true) {
  const heap = lambdaHeapFlags(128);
  progress(`memory with a 128 MB Lambda's heap flags (${heap.join(' ')})`);
  memory128 = await measureScale({
    ...scaleOptions,
    secrets: quick ? 100 : 300,
    requestsPerSecond: null,
    stripRetryAfter: false,
    nodeArgs: heap,
  });
}

let sweep;
if (args['skip-sweep'] !== true) {
  const sweepOptions = {
    secrets: int(args['sweep-secrets'], quick ? 200 : 1000),
    concurrency: int(args.concurrency, 50),
    requestsPerSecond: int(args.rps, 100),
    // The smallest window the function accepts other than 0 (which retires in finishSecret, leaving nothing to sweep).
    windowSeconds: 1,
    // serverless.yml's timeout: the budget of every invocation, a sweep's included.
    budgetMs: 60_000,
    maxSweeps: 10,
    latencyMs: int(args['sweep-latency-ms'], 0),
  };
  progress(`sweep: ${sweepOptions.secrets} secrets whose windows ended, Stytch ${sweepOptions.requestsPerSecond} req/s, ${sweepOptions.budgetMs / 1000} s per sweep`);
  sweep = await measureSweep(sweepOptions);
}

machine.loadAverage1mAtEnd = loadAverage();
const figures: Figures = { machine, bundle, baseline, coldImport, rotations, coldRotation, scale, ...(memory128 ? { memory128 } : {}), ...(sweep ? { sweep } : {}) };
const targets = evaluateTargets(figures);
const generatedAt = new Date().toISOString();
const durationMs = Math.round(performance.now() - started);
const table = renderTable(figures, targets, { generatedAt, durationMs });

const json = JSON.stringify({ generatedAt, durationMs, quick, ...figures, targets }, null, 2);
await mkdir('bench/results', { recursive: true });
await writeFile('bench/results/latest.json', `${json}\n`);
await writeFile(`bench/results/${generatedAt.replace(/[:.]/g, '-')}.json`, `${json}\n`);

process.stdout.write(`${table}\n\nFigures: bench/results/latest.json\n`);
