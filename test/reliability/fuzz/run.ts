/**
 * The concurrency fuzzer's runner: many trials (trial.ts) against one local
 * stack, several at once on separate secrets and clients, sharing a pool of
 * warm containers, with every call slowed or failed by the network (network.ts).
 *
 * Besides each trial's own checks it scans everything the function printed
 * and every error it threw for secret values (V, stack.scanForSecrets), then
 * drops what it scanned, and removes a finished trial's state items and, a
 * little later, its secret, so that neither the scan nor the sweep's table
 * scan grows with the number of trials.
 */
import { randomUUID } from 'node:crypto';
import { StateTable, type DynamoDBSend } from '../../../functions/lib/state/table.js';
import { STATE_TABLE_NAME, type LocalStack } from '../../../infra/local/stack.js';
import { Network } from './network.js';
import { planTrial } from './plan.js';
import { ContainerPool } from './pool.js';
import { StytchProxy } from './project-proxy.js';
import { ProjectTrial } from './project-trial.js';
import { Trial, type TrialResult, type ViolationKind } from './trial.js';

export interface FuzzOptions {
  /** Trial i has seed `seed + i`: FUZZ_SEED=<a trial's seed> FUZZ_TRIALS=1 replays that trial's plan. */
  seed: number;
  trials: number;
  /** Each seed is run this many times (replaying a seed whose interleaving depends on timing). */
  repeat: number;
  /** Trials at once. */
  concurrency: number;
  maxContainers: number;
  graceSeconds: number;
  bundlePath: string | undefined;
  faultRate: number;
  maxFaults: number;
  cliRetire?: (secretName: string) => Promise<{ code: number; output: string }>;
  /** Progress lines (never a secret). */
  log?: (line: string) => void;
  /** Log every trial's report (its plan and what happened, secrets as last fours), not only a failed one's. */
  show?: boolean;
}

export interface Failure {
  seed: number;
  kinds: ViolationKind[];
  text: string;
}

export interface FuzzSummary {
  trials: number;
  failures: Failure[];
  /** Trials with at least one violation of the kind. */
  byKind: Partial<Record<ViolationKind, number>>;
  /** Trials per starting state, and how many of them found a violation. */
  byStart: Record<string, { trials: number; failed: number }>;
  /** Trials per kind of rotated secret (connected_app, m2m, project_secret), and how many of them found a violation. */
  bySecretKind: Record<string, { trials: number; failed: number }>;
  invocations: number;
  failedInvocations: number;
  faults: number;
  trialsWithFaults: number;
  /** EMF metrics the function emitted, summed: which of its paths the trials reached. */
  metrics: Record<string, number>;
  /** Log lines scanned for secrets (V). */
  linesScanned: number;
  containers: number;
  slowestTrialMs: number;
  unattributedCalls: Record<string, number>;
  /** Interceptor phases whose owner could not be told (should stay 0). */
  calls: Record<string, number>;
  /** Trial durations, ms: median and 90th percentile. */
  trialMs: { median: number; p90: number };
  /** CPU time of this process during the run (the stack, the containers and the trials share it). */
  cpuMs: number;
  ms: number;
}

/** A Lambda ARN whose invoker does nothing: attaches rotation to a secret without running the configuration test. */
const ATTACH_ONLY_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:fuzz-attach-rotation-only';
/** How often the poller checks every running trial's invariants. */
const POLL_MS = 5;
/** A finished trial's secret stays this long, so a late line naming it is still scanned against it. */
const KEEP_SECRET_MS = 2_000;
/** The function's ERROR log naming project secrets it may have created and no label holds (project-secret.ts, reportUnheld). */
const ORPHAN_REPORT = 'no label of this secret holds; they were not deleted';
/** The sweep's ERROR log keeping a previous project secret because AWSCURRENT's is gone at Stytch (project-secret.ts, deletePrevious). */
const KEPT_REPORT = 'may be the only one that works';

/** What the function's ERROR logs told the operator about project secrets it did not delete. */
interface Reports {
  /** Named in an orphan report (each report's `secrets[].secretId`). */
  orphans: Set<string>;
  /** Kept past its window as possibly the only working secret (the line's `previousSecretId`). */
  kept: Set<string>;
}

/** Reads the reports from log lines (JSON, one per line). */
function collectReported(chunks: readonly string[], into: Reports): void {
  for (const line of chunks.join('').split('\n')) {
    const orphan = line.includes(ORPHAN_REPORT);
    if (!orphan && !line.includes(KEPT_REPORT)) continue;
    try {
      const record = JSON.parse(line) as { level?: unknown; secrets?: Array<{ secretId?: unknown }>; previousSecretId?: unknown };
      if (record.level !== 'ERROR') continue;
      if (orphan) for (const s of record.secrets ?? []) if (typeof s.secretId === 'string') into.orphans.add(s.secretId);
      if (!orphan && typeof record.previousSecretId === 'string') into.kept.add(record.previousSecretId);
    } catch {
      // Not one whole JSON line.
    }
  }
}

export async function runFuzz(stack: LocalStack, options: FuzzOptions): Promise<FuzzSummary> {
  const started = performance.now();
  const pool = new ContainerPool(stack, options.maxContainers, options.bundlePath);
  const network = new Network(options.seed);
  network.install(stack);
  stack.sm.registerInvoker(ATTACH_ONLY_ARN, async () => undefined);
  // Project-secret trials reach Stytch's management API and the probe through a proxy that tells their calls apart.
  const proxy = await StytchProxy.start(stack.stytchUrl, (key, operation, phase) => network.decideProxied(key, operation, phase));
  const management = JSON.parse((await stack.sm.handle('GetSecretValue', { SecretId: stack.managementSecretName }) as { SecretString: string }).SecretString) as Record<string, unknown>;
  await stack.sm.handle('PutSecretValue', {
    SecretId: stack.managementSecretName,
    ClientRequestToken: randomUUID(),
    SecretString: JSON.stringify({ ...management, base_url: proxy.url }),
  });
  const reports: Reports = { orphans: new Set(), kept: new Set() };
  const reportedIn = (set: Set<string>) => (secretId: string) => {
    if (set.has(secretId)) return true;
    collectReported(stack.logs, reports);
    return set.has(secretId);
  };
  const [reported, keptReported] = [reportedIn(reports.orphans), reportedIn(reports.kept)];
  // The function's own state table code puts starting states in place; its commands go straight to
  // dynalite in process (JSON in and out, no SDK pipeline): setup is not what is measured or fuzzed.
  const state = new StateTable(
    { send: (async (command: { input: unknown }) => await stack.dynamo.handle(command.constructor.name.replace(/Command$/, ''), command.input)) as DynamoDBSend['send'] },
    STATE_TABLE_NAME,
  );

  const summary: FuzzSummary = {
    trials: 0,
    failures: [],
    byKind: {},
    byStart: {},
    bySecretKind: {},
    invocations: 0,
    failedInvocations: 0,
    faults: 0,
    trialsWithFaults: 0,
    metrics: {},
    linesScanned: 0,
    containers: 0,
    slowestTrialMs: 0,
    unattributedCalls: network.unattributed,
    calls: network.calls,
    trialMs: { median: 0, p90: 0 },
    cpuMs: 0,
    ms: 0,
  };
  const cpuAtStart = process.cpuUsage();
  const durations: number[] = [];

  const running = new Set<Trial>();
  const poller = setInterval(() => {
    for (const trial of running) trial.observe('poll');
  }, POLL_MS);

  const retired: Array<{ name: string; at: number; trial: Trial }> = [];
  let scanning: Promise<void> = Promise.resolve();
  const scan = (final: boolean) => {
    scanning = scanning.then(async () => {
      // Taken before the scan reads them: exactly these lines and errors are dropped afterwards.
      const lines = stack.logs.length;
      const errors = stack.invocations.length;
      // The project-secret trials' secrets, a created one nobody stored included (the stack knows its own project's only).
      const projectTrials = [...running, ...retired.map((r) => r.trial)].filter((t): t is ProjectTrial => t instanceof ProjectTrial);
      const leaks = await stack.scanForSecrets(projectTrials.flatMap((t) => t.knownSecretValues()));
      countMetrics(stack.logs.slice(0, lines), summary.metrics);
      collectReported(stack.logs.slice(0, lines), reports);
      stack.logs.splice(0, lines);
      stack.invocations.splice(0, errors);
      summary.linesScanned += leaks.lines;
      if (leaks.linesWithSecret > 0) {
        summary.byKind.V = (summary.byKind.V ?? 0) + 1;
        summary.failures.push({
          seed: options.seed,
          kinds: ['V'],
          text: `V: ${leaks.linesWithSecret} log line(s) or error(s) contain a secret value: ${leaks.leaked.join(', ')} (secret names carry the trial seed: fuzz/<seed>-<n>)`,
        });
      }
      const now = performance.now();
      while (retired.length > 0 && (final || now - retired[0]!.at > KEEP_SECRET_MS)) {
        const { name } = retired.shift()!;
        await stack.sm.handle('DeleteSecret', { SecretId: name, ForceDeleteWithoutRecovery: true });
      }
    });
    return scanning;
  };

  const record = (trial: Trial, result: TrialResult) => {
    summary.trials++;
    summary.invocations += result.invocations;
    summary.failedInvocations += result.failedInvocations;
    summary.faults += result.faults.length;
    if (result.faults.length > 0) summary.trialsWithFaults++;
    summary.slowestTrialMs = Math.max(summary.slowestTrialMs, result.ms);
    durations.push(result.ms);
    if (summary.trials % 100 === 0) {
      const heap = Math.round(process.memoryUsage().heapUsed / 1e6);
      options.log?.(`fuzz: ${summary.trials}/${seeds.length} trials, ${summary.failures.length} with violations, ${((performance.now() - started) / 1000).toFixed(1)} s, heap ${heap} MB`);
    }
    const start = (summary.byStart[result.plan.start] ??= { trials: 0, failed: 0 });
    const kind = (summary.bySecretKind[result.plan.kind] ??= { trials: 0, failed: 0 });
    start.trials++;
    kind.trials++;
    if (result.violations.length === 0) return;
    start.failed++;
    kind.failed++;
    const kinds = [...new Set(result.violations.map((v) => v.kind))];
    for (const kind of kinds) summary.byKind[kind] = (summary.byKind[kind] ?? 0) + 1;
    summary.failures.push({
      seed: result.plan.seed,
      kinds,
      text: [`trial seed ${result.plan.seed}:`, ...result.violations.map((v) => `  ${v.kind}: ${v.message}`), trial.report()].join('\n'),
    });
  };

  const seeds: number[] = [];
  for (let i = 0; i < options.trials; i++) for (let r = 0; r < options.repeat; r++) seeds.push(options.seed + i);
  let next = 0;
  const worker = async () => {
    while (next < seeds.length) {
      const seed = seeds[next++]!;
      const plan = planTrial(seed, { cliRetire: options.cliRetire !== undefined });
      const env = {
        stack,
        pool,
        graceSeconds: options.graceSeconds,
        state,
        attachOnlyLambdaArn: ATTACH_ONLY_ARN,
        faultRate: options.faultRate,
        maxFaults: options.maxFaults,
        ...(options.cliRetire ? { cliRetire: options.cliRetire } : {}),
        project: { proxyUrl: proxy.url, reported, keptReported },
      };
      const trial = plan.kind === 'project_secret' ? new ProjectTrial(plan, env) : new Trial(plan, env);
      const result = await trial.run(stack.project.projectId, {
        register: () => {
          network.register(trial, trial.names);
          if (trial instanceof ProjectTrial) network.registerProject(trial, trial.projectKeys);
          running.add(trial);
        },
        unregister: () => {
          running.delete(trial);
          network.unregister(trial.names);
          if (trial instanceof ProjectTrial) network.unregisterProject(trial.projectKeys);
        },
      });
      record(trial, result);
      if (options.show) options.log?.(trial.report());
      // The sweep must not find this client again, nor the table grow with the trials.
      for (const pk of trial.stateKeys()) {
        await stack.dynamo.handle('DeleteItem', { TableName: STATE_TABLE_NAME, Key: { pk: { S: pk } } });
      }
      retired.push({ name: trial.names.name, at: performance.now(), trial });
      await scan(false);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, seeds.length) }, worker));
    await scan(true);
  } finally {
    pool.dispose();
    clearInterval(poller);
    network.uninstall();
    await proxy.close();
    await stack.sm.handle('PutSecretValue', { SecretId: stack.managementSecretName, ClientRequestToken: randomUUID(), SecretString: JSON.stringify(management) });
  }
  summary.containers = pool.size;
  durations.sort((a, b) => a - b);
  summary.trialMs = { median: durations[Math.floor(durations.length / 2)] ?? 0, p90: durations[Math.floor(durations.length * 0.9)] ?? 0 };
  const cpu = process.cpuUsage(cpuAtStart);
  summary.cpuMs = (cpu.user + cpu.system) / 1000;
  summary.ms = performance.now() - started;
  return summary;
}

/** Sums the EMF metrics (Powertools' CloudWatch embedded metric format lines) by name. */
function countMetrics(chunks: string[], into: Record<string, number>): void {
  for (const line of chunks.join('').split('\n')) {
    if (!line.includes('"_aws"')) continue;
    try {
      const emf = JSON.parse(line) as { _aws?: { CloudWatchMetrics?: Array<{ Metrics?: Array<{ Name: string }> }> } } & Record<string, unknown>;
      for (const { Name } of emf._aws?.CloudWatchMetrics?.[0]?.Metrics ?? []) {
        const value = emf[Name];
        into[Name] = (into[Name] ?? 0) + (typeof value === 'number' ? value : Array.isArray(value) ? value.reduce((a: number, b) => a + Number(b), 0) : 0);
      }
    } catch {
      // Not a metrics line.
    }
  }
}
