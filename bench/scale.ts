/**
 * Scale: many secrets rotated `concurrency` at a time through the local stack,
 * with the Stytch emulator rate-limited. The built function runs in its own
 * child process (one container serving every concurrent invocation: an upper
 * bound on what one Lambda container holds), so its peak RSS is the
 * function's alone; the emulators stay in this process.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CREDENTIALS_SECRET_NAME, LocalStack } from '../infra/local/stack.js';
import type { StytchEmulator } from '../infra/local/stytch/emulator.js';
import { RemoteContainer } from './container/remote.js';
import { stackEnv } from './lib/lambda-env.js';
import { consistent, lastOutcome, seedMany, setRotationLambda } from './lib/stack.js';
import { pool, round, summarize, type Summary } from './lib/stats.js';

export interface ScaleOptions {
  secrets: number;
  concurrency: number;
  /** Stytch emulator rate limit per project; null = none. */
  requestsPerSecond: number | null;
  /** Node flags of the function's process (e.g. the heap flags of a small Lambda); [] = Node's defaults. */
  nodeArgs: string[];
  /** Secrets Manager's attempts of a failing rotation within one RotateSecret (the local stack's default is 3). */
  smAttempts: number;
  /** Extra function environment (deployment settings such as STYTCH_MAX_ATTEMPTS); empty = the function's defaults. */
  functionEnv: Record<string, string>;
  /** Serve Stytch through a front that drops Retry-After from 429s (Stytch does not document one). */
  stripRetryAfter: boolean;
}

export interface ScaleFigures {
  options: ScaleOptions;
  succeeded: number;
  /** Succeeded and Stytch agrees with AWSCURRENT, no rotation left in progress (invariants I, III). */
  consistent: number;
  /** Rotations that needed more than one Secrets Manager attempt. */
  reattempted: number;
  totalMs: number;
  rotationsPerSecond: number;
  perRotationMs: Summary;
  stytch: { requests: number; throttled429: number; requestsPerSecond: number };
  /** State table requests the stack served during the run (first rotations: each binds its secret). */
  dynamodb: { requests: number; perRotation: number };
  /** Sum of the function's StytchRetry metric (EMF lines it printed). */
  stytchRetryMetric: number;
  /** The function's retry warnings by cause (`<status> <error type>`). */
  retryCauses: Record<string, number>;
  failedInvocations: number;
  /** Distinct step errors (first 3), when any step failed. */
  errorSamples: string[];
  /** The service's next rotation window for the rotations that failed (sm.reattemptPending), when any failed. */
  afterServiceReattempt?: { reattempted: number; succeeded: number };
  memory: {
    /** The function's process: getrusage maxRSS. */
    functionMaxRssMB: number;
    /** The function's process: process.memoryUsage().rss sampled every 50 ms. */
    functionPeakRssSampledMB: number;
    /** The function's process after a full GC at the end: the live set (heap used, MB). */
    functionLiveHeapMB: number;
    /** This process (both emulators and the bench), sampled every 50 ms: context only. */
    emulatorsPeakRssMB: number;
  };
  functionLogLines: number;
  /** CPU time of the function's process (user + system) per rotation, init excluded: steadier than wall time on a busy machine. */
  functionCpuMsPerRotation: number;
}

export async function measureScale(options: ScaleOptions): Promise<ScaleFigures> {
  const stack = await LocalStack.start({ maxAttempts: options.smAttempts });
  let front: Server | undefined;
  let container: RemoteContainer | undefined;
  let parentPeak = process.memoryUsage().rss;
  const sampler = setInterval(() => (parentPeak = Math.max(parentPeak, process.memoryUsage().rss)), 50);
  try {
    const secrets = await seedMany(stack, options.secrets, 'bench/scale');
    if (options.stripRetryAfter) {
      front = await startFrontWithoutRetryAfter(stack.stytch);
      const base = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
      await stack.sm.handle('PutSecretValue', {
        SecretId: CREDENTIALS_SECRET_NAME,
        ClientRequestToken: randomUUID(),
        SecretString: JSON.stringify({ project_id: stack.project.projectId, secret: stack.project.secret, base_url: base }),
      });
    }
    const started = await RemoteContainer.start(stackEnv(stack, options.functionEnv), {
      // --expose-gc only lets the final report measure the live set after a full GC (Lambda's runtime passes it too).
      nodeArgs: ['--expose-gc', ...options.nodeArgs],
    });
    container = started;
    const cpuAtStart = await started.memory();
    setRotationLambda(stack, (event) => started.invoke(event));

    stack.stytch.setRateLimit(options.requestsPerSecond === null ? null : { requestsPerSecond: options.requestsPerSecond });
    stack.sm.resetCalls();
    stack.stytch.resetRequests();
    let dynamoRequests = 0;
    stack.interceptor = ({ service, phase }) => {
      if (service === 'dynamodb' && phase === 'before') dynamoRequests++;
    };
    const times: number[] = [];
    const t0 = performance.now();
    await pool(secrets, options.concurrency, async (secret) => {
      const s = performance.now();
      await stack.rotate(secret.arn);
      times.push(performance.now() - s);
    });
    const totalMs = performance.now() - t0;
    stack.interceptor = undefined;
    // Counted now, before any follow-up pass below adds its own.
    const retryMetric = started.stytchRetryMetric;
    const retryCauses = { ...started.retryCauses };
    const logLines = started.logLines;
    const cpuAtEnd = await started.memory();

    const outcomes = secrets.map((s) => lastOutcome(stack, s.arn));
    const failed = secrets.filter((_, i) => !outcomes[i]!.succeeded);
    // Request ids make every message unique: drop them to see the distinct causes.
    const errors = [...new Set(outcomes.flatMap((o) => o.errors.map((e) => e.replace(/\s*\[request_id [^\]]+\]/g, '').slice(0, 240))))];
    const requests = stack.stytch.requests;
    const figures: ScaleFigures = {
      options,
      succeeded: outcomes.filter((o) => o.succeeded).length,
      consistent: secrets.filter((s, i) => outcomes[i]!.succeeded && consistent(stack, s)).length,
      reattempted: outcomes.filter((o) => o.attempts > 1).length,
      totalMs: round(totalMs, 0),
      rotationsPerSecond: round(secrets.length / (totalMs / 1000), 1),
      perRotationMs: summarize(times),
      stytch: {
        requests: requests.length,
        throttled429: requests.filter((r) => r.status === 429).length,
        requestsPerSecond: round(requests.filter((r) => r.status !== 429).length / (totalMs / 1000), 1),
      },
      dynamodb: { requests: dynamoRequests, perRotation: round(dynamoRequests / secrets.length) },
      stytchRetryMetric: 0,
      retryCauses: {},
      failedInvocations: outcomes.reduce((n, o) => n + o.errors.length, 0),
      errorSamples: errors.slice(0, 3),
      memory: { functionMaxRssMB: 0, functionPeakRssSampledMB: 0, functionLiveHeapMB: 0, emulatorsPeakRssMB: 0 },
      functionLogLines: 0,
      functionCpuMsPerRotation: 0,
    };
    if (failed.length > 0) {
      let ok = 0;
      await pool(failed, options.concurrency, async (secret) => {
        try {
          if ((await stack.sm.reattemptPending(secret.arn)).outcome === 'succeeded') ok++;
        } catch {
          // nothing pending (the failure removed AWSPENDING): the next scheduled rotation starts fresh
        }
      });
      figures.afterServiceReattempt = { reattempted: failed.length, succeeded: ok };
    }
    const memory = await started.memory();
    const cpu = (m: { cpuUserMs: number; cpuSystemMs: number }) => m.cpuUserMs + m.cpuSystemMs;
    figures.functionCpuMsPerRotation = round((cpu(cpuAtEnd) - cpu(cpuAtStart)) / secrets.length, 2);
    figures.memory = {
      functionMaxRssMB: round(memory.maxRssKb / 1024, 1),
      functionPeakRssSampledMB: round(memory.peakRssSampledBytes / 2 ** 20, 1),
      functionLiveHeapMB: round(memory.heapUsedBytes / 2 ** 20, 1),
      emulatorsPeakRssMB: round(parentPeak / 2 ** 20, 1),
    };
    figures.stytchRetryMetric = retryMetric;
    figures.retryCauses = retryCauses;
    figures.functionLogLines = logLines;
    return figures;
  } finally {
    clearInterval(sampler);
    await container?.stop();
    if (front) {
      const server = front;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    await stack.close();
  }
}

/**
 * The heap flags a Lambda of `memoryMb` starts node with, as reproduced from
 * the Node runtime's bootstrap: new space = memory/10, semi-space = half of
 * it, old space = the rest (128 MB: --max-semi-space-size=6 --max-old-space-size=116).
 */
export function lambdaHeapFlags(memoryMb: number): string[] {
  const newSpace = Math.floor(memoryMb / 10);
  return [`--max-semi-space-size=${Math.floor(newSpace / 2)}`, `--max-old-space-size=${memoryMb - newSpace}`];
}

/**
 * A second HTTP front for the Stytch emulator, over its in-process `fetch`
 * (the same handler as its own server), that drops Retry-After from answers:
 * Stytch documents 429 but not that header.
 */
async function startFrontWithoutRetryAfter(stytch: StytchEmulator): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers = new Headers();
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
      const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined;
      stytch
        .fetch(`http://stytch.local${req.url ?? '/'}`, { method: req.method ?? 'GET', headers, ...(body ? { body } : {}) })
        .then(async (answer) => {
          const text = await answer.text();
          const out: Record<string, string> = {};
          answer.headers.forEach((value, name) => {
            if (name !== 'retry-after') out[name] = value;
          });
          res.writeHead(answer.status, { ...out, 'content-length': Buffer.byteLength(text) });
          res.end(text);
        })
        .catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
