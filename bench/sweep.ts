/**
 * The retirement sweep at scale: `secrets` secrets are rotated once each with
 * an overlap window (PREVIOUS_SECRET_GRACE_SECONDS) so small that every
 * window has ended soon after the last rotation; then the EventBridge sweep
 * is invoked, one invocation after another, each with the deployed Lambda
 * timeout as its budget, with Stytch rate-limited, until the state table has
 * no due retirement left. Afterwards Stytch must reject every previous secret
 * and accept every AWSCURRENT (invariants I and III).
 *
 * The function runs in this process (the stack's own container, as
 * LocalStack.sweep() invokes it): the figures here are counts and wall
 * times, not memory.
 */
import type { SweepResult } from '../functions/rotate-stytch-secret/sweep.js';
import { LocalStack, type SeededSecret } from '../infra/local/stack.js';
import { metricOf } from './container/remote.js';
import { consistent, lastOutcome, seedMany } from './lib/stack.js';
import { pool, round, summarize, tally, type Summary } from './lib/stats.js';

export interface SweepOptions {
  secrets: number;
  /** Rotations at once while setting up; the setup is not rate-limited (it is not what is measured). */
  concurrency: number;
  /** Stytch emulator rate limit per project during the sweeps; null = none. */
  requestsPerSecond: number | null;
  /** The overlap window of the setup's rotations (seconds): tiny, so that waiting it out is cheap. */
  windowSeconds: number;
  /** Lambda timeout of every invocation (the sweep's budget): the deployed function's 60 s. */
  budgetMs: number;
  /** Sweeps at most, so that a retirement that never succeeds cannot loop forever. */
  maxSweeps: number;
  /**
   * Added before every Secrets Manager, DynamoDB and Stytch request during the
   * sweeps (ms; 0 = none): loopback has no network latency, and with it a
   * sweep's 8 retirements at a time are bound by round trips, not by Stytch's limit.
   */
  latencyMs: number;
}

/** What the function says it did, from its `Retirement sweep done` log line. */
export type SweepResultLine = SweepResult;

export interface SweepRun {
  ms: number;
  /** The invocation succeeded (a sweep throws after trying every due secret when any of them failed). */
  ok: boolean;
  /** The invocation's error, first 240 characters, when it failed. */
  error?: string;
  result?: SweepResultLine;
  /** Due retirements left in the state table afterwards. */
  dueAfter: number;
  stytchRequests: number;
  stytch429: number;
  dynamodb: number;
  secretsManager: number;
}

export interface SweepFigures {
  options: SweepOptions;
  setup: {
    rotated: number;
    ms: number;
    /** Per rotation of the setup (a first rotation with a window: it binds, and finishSecret records the retirement). */
    perRotation: { dynamodb: number; stytch: number; secretsManager: number };
    dynamodbOps: string;
  };
  /** Client items with a due retirement when the first sweep started. */
  dueBefore: number;
  /** Previous secrets Stytch still accepted just before the first sweep: the windows kept them working (I). */
  previousAcceptedBeforeSweep: number;
  sweeps: SweepRun[];
  retiredFirstSweep: number;
  retiredTotal: number;
  /** Sweeps until the table had no due retirement left (or maxSweeps). */
  sweepCount: number;
  allRetired: boolean;
  /** From the first sweep's start to the last sweep's end. */
  totalMs: number;
  perSweepMs: Summary;
  stytch: { requests: number; throttled429: number; acceptedPerSecond: number };
  /** The function's StytchRetry and PreviousSecretRetired metrics over all sweeps (EMF lines). */
  metrics: { stytchRetry: number; previousSecretRetired: number; retirementFailed: number; retirementDeferred: number };
  /** Over all sweeps, divided by the retirements they made. */
  perRetirement: { dynamodb: number; secretsManager: number; stytch: number };
  /** State table requests of all sweeps, by operation (e.g. `Scan, UpdateItem×2000`). */
  dynamodbOps: string;
  verify: { secrets: number; previousRejected: number; currentAccepted: number; consistent: number };
}

const SWEEP_DONE = 'Retirement sweep done';

export async function measureSweep(options: SweepOptions): Promise<SweepFigures> {
  const stack = await LocalStack.start({ graceSeconds: options.windowSeconds, timeoutMs: options.budgetMs });
  const dynamo: string[] = [];
  let latencyMs = 0;
  const delay = () => (latencyMs > 0 ? new Promise<void>((resolve) => setTimeout(resolve, latencyMs)) : undefined);
  stack.interceptor = ({ service, operation, phase }) => {
    if (service === 'dynamodb' && phase === 'before') dynamo.push(operation);
    if (phase === 'before') return delay();
  };
  stack.stytch.interceptor = ({ phase }) => (phase === 'before' ? delay() : undefined);
  try {
    const secrets = await seedMany(stack, options.secrets, 'bench/sweep');
    // The seeded version is the one each rotation makes previous: its value is what the sweep must retire.
    const previousVersion = new Map(secrets.map((s) => [s.arn, versionWith(stack, s, 'AWSCURRENT')]));

    stack.sm.resetCalls();
    stack.stytch.resetRequests();
    dynamo.length = 0;
    const t0 = performance.now();
    let lastFinished = Date.now();
    await pool(secrets, options.concurrency, async (secret) => {
      await stack.rotate(secret.arn);
      lastFinished = Date.now();
    });
    const setupMs = performance.now() - t0;
    const rotated = secrets.filter((s) => lastOutcome(stack, s.arn).succeeded);
    const smSetup = stack.sm.calls.filter((c) => c.operation !== 'RotateSecret').length;
    const setup = {
      rotated: rotated.length,
      ms: round(setupMs, 0),
      perRotation: {
        dynamodb: round(dynamo.length / secrets.length),
        stytch: round(stack.stytch.requests.length / secrets.length),
        secretsManager: round(smSetup / secrets.length),
      },
      dynamodbOps: tally(dynamo),
    };

    // Each window ends `windowSeconds` after its finishSecret, which ended before lastFinished.
    const waitMs = lastFinished + options.windowSeconds * 1000 + 100 - Date.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    const dueBefore = await dueCount(stack);
    const previousAcceptedBeforeSweep = rotated.filter((s) => stack.stytch.isAccepted(s.clientId, valueOf(stack, s, previousVersion.get(s.arn)))).length;

    stack.stytch.setRateLimit(options.requestsPerSecond === null ? null : { requestsPerSecond: options.requestsPerSecond });
    stack.sm.resetCalls();
    stack.stytch.resetRequests();
    dynamo.length = 0;
    const logsFrom = stack.logs.length;
    latencyMs = options.latencyMs;
    const sweeps: SweepRun[] = [];
    const s0 = performance.now();
    for (let i = 0; i < options.maxSweeps; i++) {
      const logs0 = stack.logs.length;
      const st0 = stack.stytch.requests.length;
      const sm0 = stack.sm.calls.length;
      const db0 = dynamo.length;
      const started = performance.now();
      let error: string | undefined;
      try {
        await stack.sweep();
      } catch (e) {
        error = (e instanceof Error ? e.message : String(e)).slice(0, 240);
      }
      const ms = round(performance.now() - started, 0);
      const requests = stack.stytch.requests.slice(st0);
      const run: SweepRun = {
        ms,
        ok: error === undefined,
        ...(error === undefined ? {} : { error }),
        dueAfter: await dueCount(stack),
        stytchRequests: requests.length,
        stytch429: requests.filter((r) => r.status === 429).length,
        dynamodb: dynamo.length - db0,
        secretsManager: stack.sm.calls.length - sm0,
      };
      const result = sweepResult(lines(stack.logs.slice(logs0)));
      if (result) run.result = result;
      sweeps.push(run);
      if (run.dueAfter === 0) break;
    }
    const totalMs = performance.now() - s0;
    latencyMs = 0;

    const emf = lines(stack.logs.slice(logsFrom)).filter((line) => line.includes('"_aws"'));
    const metric = (name: string) => emf.reduce((n, line) => n + metricOf(line, name), 0);
    const requests = stack.stytch.requests;
    const retiredTotal = sweeps.reduce((n, s) => n + (s.result?.retired ?? 0), 0);
    const perRetirement = (count: number) => (retiredTotal === 0 ? 0 : round(count / retiredTotal));

    return {
      options,
      setup,
      dueBefore,
      previousAcceptedBeforeSweep,
      sweeps,
      retiredFirstSweep: sweeps[0]?.result?.retired ?? 0,
      retiredTotal,
      sweepCount: sweeps.length,
      allRetired: sweeps.at(-1)?.dueAfter === 0,
      totalMs: round(totalMs, 0),
      perSweepMs: summarize(sweeps.map((s) => s.ms)),
      stytch: {
        requests: requests.length,
        throttled429: requests.filter((r) => r.status === 429).length,
        acceptedPerSecond: round(requests.filter((r) => r.status !== 429).length / (totalMs / 1000), 1),
      },
      metrics: {
        stytchRetry: metric('StytchRetry'),
        previousSecretRetired: metric('PreviousSecretRetired'),
        retirementFailed: metric('RetirementFailed'),
        retirementDeferred: metric('RetirementDeferred'),
      },
      perRetirement: { dynamodb: perRetirement(dynamo.length), secretsManager: perRetirement(stack.sm.calls.length), stytch: perRetirement(requests.length) },
      dynamodbOps: tally(dynamo),
      verify: {
        secrets: rotated.length,
        previousRejected: rotated.filter((s) => !stack.stytch.isAccepted(s.clientId, valueOf(stack, s, previousVersion.get(s.arn)))).length,
        currentAccepted: rotated.filter((s) => stack.stytch.isAccepted(s.clientId, valueOf(stack, s, versionWith(stack, s, 'AWSCURRENT')))).length,
        consistent: rotated.filter((s) => consistent(stack, s)).length,
      },
    };
  } finally {
    stack.interceptor = undefined;
    await stack.close();
  }
}

/** Client items of the state table whose retirement is due now (read in process: not counted as the function's calls). */
async function dueCount(stack: LocalStack): Promise<number> {
  const now = Date.now();
  const items = await stack.dynamo.scan();
  return items.filter((item) => {
    const pk = (item.pk as { S?: string } | undefined)?.S ?? '';
    const due = (item.retire_due as { N?: string } | undefined)?.N;
    return pk.startsWith('client#') && due !== undefined && Number(due) <= now;
  }).length;
}

function versionWith(stack: LocalStack, secret: SeededSecret, stage: string): string | undefined {
  return Object.entries(stack.sm.inspect(secret.arn).versions).find(([, v]) => v.stages.includes(stage))?.[0];
}

/** The client_secret of a version; '' when there is none (which Stytch never accepts). Never printed. */
function valueOf(stack: LocalStack, secret: SeededSecret, versionId: string | undefined): string {
  const text = versionId === undefined ? undefined : stack.sm.inspect(secret.arn).versions[versionId]?.secretString;
  if (text === undefined) return '';
  return (JSON.parse(text) as { client_secret?: string }).client_secret ?? '';
}

/** Captured output chunks as whole lines. */
function lines(chunks: readonly string[]): string[] {
  return chunks
    .join('')
    .split('\n')
    .filter((line) => line.trim() !== '');
}

function sweepResult(logLines: readonly string[]): SweepResultLine | undefined {
  for (const line of logLines) {
    if (!line.includes(SWEEP_DONE)) continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.message !== SWEEP_DONE) continue;
      const n = (key: string) => (typeof entry[key] === 'number' ? (entry[key] as number) : 0);
      return { due: n('due'), retired: n('retired'), cleared: n('cleared'), deferred: n('deferred'), failed: n('failed'), leftForNextSweep: n('leftForNextSweep') };
    } catch {
      // not JSON: not the function's log line
    }
  }
  return undefined;
}
