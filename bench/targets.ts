/** The targets the figures are held to, each with a verdict and, when missed, why. */
import type { BundleFigures, BaselineFigures } from './bundle.js';
import type { ColdImportFigures } from './cold-import.js';
import type { ColdRotationFigures } from './cold-rotation.js';
import type { Machine } from './lib/machine.js';
import type { RotationFigures } from './rotations.js';
import type { ScaleFigures } from './scale.js';
import type { SweepFigures } from './sweep.js';

export interface TargetResult {
  target: string;
  value: string;
  pass: boolean;
  /** Why it missed (empty when it passed). */
  reason: string;
}

export interface Figures {
  machine: Machine;
  bundle: BundleFigures;
  baseline: BaselineFigures;
  coldImport: ColdImportFigures;
  rotations: RotationFigures;
  coldRotation: ColdRotationFigures;
  scale: ScaleFigures;
  /** The scale workload's memory with the heap flags of a 128 MB Lambda (undefined when skipped). */
  memory128?: ScaleFigures;
  /** The retirement sweep over many due secrets (undefined when skipped). */
  sweep?: SweepFigures;
}

/** State table calls allowed per step on the happy path (DESIGN.md §4a). */
export const TABLE_CALLS_PER_STEP = 2;

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

export function evaluateTargets(f: Figures): TargetResult[] {
  const results: TargetResult[] = [];
  const add = (target: string, value: string, pass: boolean, reason: () => string) =>
    results.push({ target, value, pass, reason: pass ? '' : reason() });

  const { coldImport, bundle, baseline, rotations, scale, memory128, sweep } = f;
  // The ratio measures the function's own code only if the baseline carries every SDK client the function bundles.
  const missingClients = bundle.sdkClients.filter((c) => !baseline.sdkClients.includes(c));
  add(
    'cold import ≤ 1.25× baseline (baseline: the same SDK clients)',
    `${coldImport.ratio.toFixed(2)}× (paired ${coldImport.pairedRatioMedian.toFixed(2)}×) vs ${baseline.sdkClients.join(' + ')}`,
    coldImport.ratio <= 1.25 && missingClients.length === 0,
    () => {
      if (missingClients.length > 0) return `the baseline lacks ${missingClients.join(', ')}, which the function bundles: the ratio would count SDK code as the function's`;
      const extra = bundle.bytes - baseline.bytes;
      const mine = bundle.topScopes.filter((p) => !p.name.startsWith('@aws-sdk') && !p.name.startsWith('@smithy'));
      return `the function evaluates ${kib(extra)} more code than the baseline at import (${mine.map((p) => `${p.name} ${kib(p.bytes)}`).join(', ')})`;
    },
  );

  const cold = rotations.coldClean;
  const stepList = (key: 'secretsManager' | 'stytch') => cold.steps.map((s) => `${s.step} ${s[key]}`).join(', ');
  add('≤ 12 Secrets Manager calls per clean rotation', `${cold.secretsManager} (warm container ${rotations.warmClean.secretsManager})`, cold.secretsManager <= 12, () => `per step: ${stepList('secretsManager')}`);
  add('≤ 5 Stytch calls per clean rotation (Connected App)', `${cold.stytch} (warm container ${rotations.warmClean.stytch})`, cold.stytch <= 5, () => `per step: ${stepList('stytch')}`);
  const m2m = rotations.warmCleanM2M;
  add('≤ 5 Stytch calls per clean rotation (M2M)', String(m2m.stytch), m2m.stytch <= 5, () => {
    const test = m2m.steps.find((s) => s.step === 'testSecret');
    return `testSecret makes ${test?.stytch ?? '?'} (${test?.stytchOps ?? '?'}): the client_credentials probe DESIGN.md §4 requires where Stytch documents one`;
  });

  // Happy path: every step of a bound secret's rotation, and every step but the binding createSecret of a first one.
  const later = rotations.laterClean;
  const laterMax = Math.max(...later.steps.map((s) => s.dynamodb));
  const firstOthers = [rotations.coldClean, rotations.warmClean, rotations.warmCleanM2M].flatMap((r) => r.steps.filter((s) => s.step !== 'createSecret'));
  const firstOthersMax = Math.max(...firstOthers.map((s) => s.dynamodb));
  const bindStep = cold.steps.find((s) => s.step === 'createSecret');
  add(
    `≤ ${TABLE_CALLS_PER_STEP} state table calls per step (happy path)`,
    `later rotation: ${later.steps.map((s) => s.dynamodb).join('/')} (${later.dynamodb}); first rotation: createSecret ${bindStep?.dynamodb ?? '?'} (binds), other steps ≤ ${firstOthersMax}`,
    laterMax <= TABLE_CALLS_PER_STEP && firstOthersMax <= TABLE_CALLS_PER_STEP,
    () =>
      `later rotation per step: ${later.steps.map((s) => `${s.step} ${s.dynamodb} (${s.dynamodbOps})`).join(', ')}; ` +
      `first rotation: ${cold.steps.map((s) => `${s.step} ${s.dynamodb} (${s.dynamodbOps})`).join(', ')}`,
  );

  const reads = rotations.credentialsReads;
  add('credentials read once per warm container', `${reads.reads} read(s) in ${reads.invocations} invocations`, reads.reads === 1, () =>
    reads.reads === 0 ? 'no read counted: the credentials secret name did not match' : `each read is a GetSecretValue of the credentials secret; the cache (TTL) did not hold across ${reads.invocations} invocations`,
  );

  const n = scale.options.secrets;
  add(`${n}/${n} rotations succeed under the rate limit`, `${scale.succeeded}/${n}`, scale.succeeded === n, () => {
    const after = scale.afterServiceReattempt;
    return (
      `${n - scale.succeeded} failed after ${scale.options.smAttempts} Secrets Manager attempts; ${scale.stytch.throttled429} Stytch 429s; errors: ${scale.errorSamples.join(' | ') || 'none recorded'}` +
      (after ? `; the service's next window rotated ${after.succeeded}/${after.reattempted} of them` : '')
    );
  });

  if (sweep) {
    const v = sweep.verify;
    const m = v.secrets;
    add(
      `sweep: all ${m} due previous secrets retired; Stytch rejects every previous secret, accepts every AWSCURRENT`,
      `${sweep.retiredTotal}/${sweep.dueBefore} retired in ${sweep.sweepCount} sweep(s); rejected ${v.previousRejected}/${m}; accepted ${v.currentAccepted}/${m}; no rotation in progress ${v.consistent}/${m}`,
      sweep.allRetired && v.previousRejected === m && v.currentAccepted === m && v.consistent === m && sweep.dueBefore === m,
      () =>
        `due before the first sweep ${sweep.dueBefore}/${m}; left due after the last ${sweep.sweeps.at(-1)?.dueAfter ?? '?'}; ` +
        `failed retirements ${sweep.metrics.retirementFailed}, deferred ${sweep.metrics.retirementDeferred}; first error: ${sweep.sweeps.find((s) => s.error)?.error ?? 'none'}`,
    );
    const first = sweep.sweeps[0];
    add(
      `sweep: the first sweep retires all ${m} (III: no later than the window plus one sweep interval)`,
      `${sweep.retiredFirstSweep}/${sweep.dueBefore} in ${first ? `${(first.ms / 1000).toFixed(1)} s` : '?'}`,
      sweep.retiredFirstSweep === sweep.dueBefore && sweep.dueBefore === m,
      () =>
        `the first sweep left ${first?.result?.leftForNextSweep ?? '?'} for the next (out of budget), failed ${first?.result?.failed ?? '?'}, deferred ${first?.result?.deferred ?? '?'}: ` +
        'those previous secrets stay accepted for one more sweep interval',
    );
    const slowest = Math.max(...sweep.sweeps.map((s) => s.ms));
    add(
      `sweep: every invocation ends within its ${(sweep.options.budgetMs / 1000).toFixed(0)} s budget`,
      `slowest ${(slowest / 1000).toFixed(1)} s`,
      slowest < sweep.options.budgetMs,
      () => 'Lambda would have killed the invocation: retirements under way are cut off and their leases held until they expire',
    );
  }

  add('function process peak RSS < 128 MB (Node defaults)', `${scale.memory.functionMaxRssMB} MB`, scale.memory.functionMaxRssMB < 128, () =>
    `the live heap after GC is ${scale.memory.functionLiveHeapMB} MB: V8 sizes its heap from this host's ${f.machine.memoryGiB} GiB and collects late; ` +
    (memory128
      ? `with the heap flags of a 128 MB Lambda (${memory128.options.nodeArgs.join(' ')}) the same workload peaks at ${memory128.memory.functionMaxRssMB} MB`
      : 'run without --skip-memory128 to see it under the heap flags of a 128 MB Lambda') +
    `; and all ${scale.options.concurrency} concurrent invocations share this one process, where Lambda gives each its own container`,
  );
  if (memory128) {
    add(
      'function process peak RSS < 128 MB (128 MB Lambda heap flags)',
      `${memory128.memory.functionMaxRssMB} MB (${memory128.options.secrets} rotations, ${memory128.options.concurrency} at a time)`,
      memory128.memory.functionMaxRssMB < 128 && memory128.succeeded === memory128.options.secrets,
      () => `live heap after GC ${memory128.memory.functionLiveHeapMB} MB; succeeded ${memory128.succeeded}/${memory128.options.secrets}`,
    );
  }
  return results;
}
