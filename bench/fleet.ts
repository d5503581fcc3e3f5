/**
 * `status --all` over a fleet: `secrets` secrets with the local function
 * attached (each bound by its configuration test), Stytch rate-limited per
 * project, then the built CLI (dist/cli/index.mjs) run as a real process
 * `runs` times, in the shell `npm run serve` prints (AWS_ENDPOINT_URL,
 * AWS_DEFAULT_REGION; the CLI finds the credentials secret and the state table
 * from the function). Reports each run's wall time, the median, the Stytch
 * requests and 429s, and whether every secret was listed as consistent.
 *
 *   npm run build && npx tsx bench/fleet.ts                    1,000 secrets, 100 req/s, 3 runs
 *   npx tsx bench/fleet.ts --secrets 200 --rps 100 --runs 1 --concurrency 16
 */
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LOCAL_FUNCTION_NAME, LocalStack } from '../infra/local/stack.js';
import { median, pool, round } from './lib/stats.js';

process.chdir(resolve(dirname(fileURLToPath(import.meta.url)), '..'));
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export interface FleetOptions {
  secrets: number;
  requestsPerSecond: number;
  runs: number;
  /** --concurrency of status --all; undefined: its default. */
  concurrency: number | undefined;
}

export interface FleetFigures {
  options: FleetOptions;
  setupMs: number;
  runs: Array<{ ms: number; exitCode: number; listed: number; consistent: number; stytchRequests: number; stytch429: number }>;
  medianMs: number;
}

interface FleetJson {
  secrets: Array<{ verdict: string }>;
  summary: { total: number };
}

export async function measureFleet(options: FleetOptions): Promise<FleetFigures> {
  const stack = await LocalStack.start();
  try {
    const t0 = performance.now();
    const names = Array.from({ length: options.secrets }, (_, i) => `bench/fleet-${String(i).padStart(4, '0')}`);
    for (const name of names) await stack.seedSecret({ name });
    // Rotation attached without rotating: the configuration test binds each secret.
    await pool(names, 20, async (name) => stack.rotate(name, { rotateImmediately: false }));
    const setupMs = performance.now() - t0;

    stack.stytch.setRateLimit({ requestsPerSecond: options.requestsPerSecond });
    const env = stack.shellEnv();
    const args = ['dist/cli/index.mjs', 'status', '--all', '--function-name', LOCAL_FUNCTION_NAME, '--json'];
    if (options.concurrency !== undefined) args.push('--concurrency', String(options.concurrency));
    const runs: FleetFigures['runs'] = [];
    for (let i = 0; i < options.runs; i++) {
      stack.stytch.resetRequests();
      const started = performance.now();
      const { code, stdout } = await new Promise<{ code: number; stdout: string }>((done) =>
        execFile(process.execPath, args, { env, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 }, (error, out) =>
          done({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout: out }),
        ),
      );
      const ms = performance.now() - started;
      const json = JSON.parse(stdout) as FleetJson;
      const requests = stack.stytch.requests;
      runs.push({
        ms: round(ms, 0),
        exitCode: code,
        listed: json.summary.total,
        consistent: json.secrets.filter((s) => s.verdict === 'consistent').length,
        stytchRequests: requests.length,
        stytch429: requests.filter((r) => r.status === 429).length,
      });
    }
    return { options, setupMs: round(setupMs, 0), runs, medianMs: round(median(runs.map((r) => r.ms)), 0) };
  } finally {
    await stack.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { secrets: { type: 'string' }, rps: { type: 'string' }, runs: { type: 'string' }, concurrency: { type: 'string' } } });
  const int = (value: string | undefined, fallback: number) => (value === undefined ? fallback : Number.parseInt(value, 10));
  const options: FleetOptions = {
    secrets: int(values.secrets, 1000),
    requestsPerSecond: int(values.rps, 100),
    runs: int(values.runs, 3),
    concurrency: values.concurrency === undefined ? undefined : int(values.concurrency, 16),
  };
  process.stderr.write(`fleet: ${options.secrets} secrets, Stytch ${options.requestsPerSecond} req/s, ${options.runs} runs of status --all\n`);
  const figures = await measureFleet(options);
  for (const [i, run] of figures.runs.entries()) {
    process.stdout.write(
      `run ${i + 1}: ${(run.ms / 1000).toFixed(1)} s, exit ${run.exitCode}, ${run.listed} listed, ${run.consistent} consistent, Stytch ${run.stytchRequests} requests (${run.stytch429} 429s)\n`,
    );
  }
  const ok = figures.runs.every((r) => r.listed === options.secrets && r.consistent === options.secrets && r.exitCode === 0) && figures.medianMs < 60_000;
  process.stdout.write(`median ${(figures.medianMs / 1000).toFixed(1)} s (target < 60 s, every secret listed and consistent): ${ok ? 'PASS' : 'FAIL'}\n`);
  process.exitCode = ok ? 0 : 1;
}
