/** The printed table (Markdown, so docs/performance.md can quote a run verbatim). */
import type { RotationCalls } from './rotations.js';
import type { Figures, TargetResult } from './targets.js';

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const ms = (value: number) => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`);
const pct = (share: number) => `${(share * 100).toFixed(0)}%`;

export function renderTable(f: Figures, targets: TargetResult[], meta: { generatedAt: string; durationMs: number }): string {
  const { machine, bundle, baseline, coldImport: ci, rotations: r, scale: s, memory128: m } = f;
  const rows: Array<[string, string]> = [];
  const row = (figure: string, value: string) => rows.push([figure, value]);

  const busy = Math.max(machine.loadAverage1m, machine.loadAverage1mAtEnd ?? 0) > machine.cores;
  row(
    'Machine',
    `${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB; ${machine.os}; Node ${machine.node}; ` +
      `load1 ${machine.loadAverage1m} → ${machine.loadAverage1mAtEnd ?? '?'}${busy ? ' (busier than its cores: wall times inflated, compare ratios and CPU times)' : ''}`,
  );
  row('Bundle `dist/rotate-stytch-secret/index.mjs` (raw / gzip)', `${kib(bundle.bytes)} / ${kib(bundle.gzipBytes)}${bundle.rebuildMatchesDist ? '' : ' (an in-memory rebuild of functions/ differs in size from dist/: dist/ is older than the source, or the build options drifted; the package breakdown below is the rebuild\'s)'}`);
  row(`Baseline bundle: the function's SDK clients (${baseline.sdkClients.join(', ')}), one command each (raw / gzip)`, `${kib(baseline.bytes)} / ${kib(baseline.gzipBytes)}`);
  row('Top 5 packages in the bundle (bytes in output)', bundle.topPackages.map((p) => `${p.name} ${kib(p.bytes)} (${pct(p.share)})`).join('; '));
  row(`Cold import, function (median / p90, n=${ci.pairs})`, `${ms(ci.function.median)} / ${ms(ci.function.p90)}`);
  row(`Cold import, baseline (median / p90, n=${ci.pairs})`, `${ms(ci.baseline.median)} / ${ms(ci.baseline.p90)}`);
  const sameClients = bundle.sdkClients.every((c) => baseline.sdkClients.includes(c));
  row(
    'Cold import ratio (of medians; median of paired ratios; of CPU-time medians)',
    `${ci.ratio.toFixed(2)}×; ${ci.pairedRatioMedian.toFixed(2)}×; ${ci.cpu.ratio.toFixed(2)}× (${ms(ci.cpu.functionMedianMs)} vs ${ms(ci.cpu.baselineMedianMs)} CPU; node boot, excluded: ${ms(ci.nodeBootMs)}) — ` +
      (sameClients
        ? `the baseline carries every SDK client the function bundles, so the ratio measures the function's own code, not the SDK`
        : `the baseline lacks ${bundle.sdkClients.filter((c) => !baseline.sdkClients.includes(c)).join(', ')}: the ratio counts SDK code as the function's`),
  );
  type Key = 'secretsManager' | 'stytch' | 'dynamodb';
  const steps = (calls: RotationCalls, key: Key) => calls.steps.map((st) => `${st.step} ${st[key]}`).join(', ');
  row(
    'Secrets Manager calls per clean rotation (first: cold container / warm; later, same secret)',
    `${r.coldClean.secretsManager} / ${r.warmClean.secretsManager}; ${r.laterClean.secretsManager} — cold: ${steps(r.coldClean, 'secretsManager')}; later: ${steps(r.laterClean, 'secretsManager')}`,
  );
  row('Stytch calls per clean rotation (first: cold / warm; later)', `${r.coldClean.stytch} / ${r.warmClean.stytch}; ${r.laterClean.stytch} — ${steps(r.coldClean, 'stytch')}`);
  row(
    'State table calls per clean rotation (first, binds: cold / warm; later)',
    `${r.coldClean.dynamodb} / ${r.warmClean.dynamodb}; ${r.laterClean.dynamodb} — first: ${r.coldClean.steps.map((st) => `${st.step} ${st.dynamodb} (${st.dynamodbOps})`).join(', ')}; ` +
      `later: ${r.laterClean.steps.map((st) => `${st.step} ${st.dynamodb} (${st.dynamodbOps})`).join(', ')}`,
  );
  row(
    'M2M client, first rotation, warm: Secrets Manager / Stytch / state table calls',
    `${r.warmCleanM2M.secretsManager} / ${r.warmCleanM2M.stytch} / ${r.warmCleanM2M.dynamodb} — ${r.warmCleanM2M.steps.map((st) => `${st.step} ${st.stytchOps}`).join('; ')}`,
  );
  row(
    `Credentials secret reads, ${r.credentialsReads.invocations} invocations / ${r.credentialsReads.rotations} rotations, one container`,
    String(r.credentialsReads.reads),
  );
  row(`Warm rotation wall time (median / p95, n=${r.warm.n}, sequential)`, `${ms(r.warm.median)} / ${ms(r.warm.p95)}`);
  row('Warm step time, median', Object.entries(r.warmSteps).map(([step, sum]) => `${step} ${ms(sum.median)}`).join(', '));
  const cold = f.coldRotation;
  row(`Cold container: init = bundle import (median, n=${cold.containers})`, ms(cold.initMs.median));
  row(`Cold container: first rotation (median / p95, n=${cold.containers})`, `${ms(cold.firstRotationMs.median)} / ${ms(cold.firstRotationMs.p95)} (second rotation, same process: ${ms(cold.secondRotationMs.median)})`);
  const limit = s.options.requestsPerSecond === null ? 'no rate limit' : `Stytch ${s.options.requestsPerSecond} req/s`;
  row(`Scale: ${s.options.secrets} secrets, ${s.options.concurrency} at a time, ${limit}: succeeded (consistent)`, `${s.succeeded}/${s.options.secrets} (${s.consistent}); needed a Secrets Manager reattempt: ${s.reattempted}`);
  row('Scale: total time, throughput', `${ms(s.totalMs)}, ${s.rotationsPerSecond} rotations/s, Stytch ${s.stytch.requestsPerSecond} accepted req/s`);
  row('Scale: wall time per rotation (median / p95)', `${ms(s.perRotationMs.median)} / ${ms(s.perRotationMs.p95)}`);
  row('Scale: Stytch requests; 429s; StytchRetry metric', `${s.stytch.requests}; ${s.stytch.throttled429}; ${s.stytchRetryMetric}`);
  row('Scale: state table requests (per rotation; each a first rotation, which binds)', `${s.dynamodb.requests} (${s.dynamodb.perRotation})`);
  if (s.errorSamples.length > 0) row('Scale: step failures (Secrets Manager reattempted them)', `${s.failedInvocations}: ${s.errorSamples.map(shorten).join(' · ')}`);
  row('Scale: function CPU time per rotation (user + system)', ms(s.functionCpuMsPerRotation));
  row('Scale: function process peak RSS, Node defaults (maxRSS; live heap after GC)', `${s.memory.functionMaxRssMB} MB; ${s.memory.functionLiveHeapMB} MB`);
  if (m) {
    row(
      `Memory: ${m.options.secrets} rotations, ${m.options.concurrency} at a time, 128 MB Lambda heap flags (maxRSS; live heap)`,
      `${m.memory.functionMaxRssMB} MB; ${m.memory.functionLiveHeapMB} MB (succeeded ${m.succeeded}/${m.options.secrets})`,
    );
  }

  const w = f.sweep;
  if (w) {
    const o = w.options;
    const first = w.sweeps[0];
    const wlimit = o.requestsPerSecond === null ? 'no rate limit' : `Stytch ${o.requestsPerSecond} req/s`;
    const latency = o.latencyMs > 0 ? `, +${o.latencyMs} ms per request` : '';
    row(
      `Sweep setup: ${o.secrets} first rotations with a ${o.windowSeconds} s window, ${o.concurrency} at a time, no rate limit: rotated; time; per rotation state table / Stytch / Secrets Manager calls`,
      `${w.setup.rotated}/${o.secrets}; ${ms(w.setup.ms)}; ${w.setup.perRotation.dynamodb} / ${w.setup.perRotation.stytch} / ${w.setup.perRotation.secretsManager}`,
    );
    row('Sweep: due before the first sweep; previous secrets Stytch still accepted then (the windows kept them)', `${w.dueBefore}; ${w.previousAcceptedBeforeSweep}/${w.verify.secrets}`);
    row(
      `Sweep: ${wlimit}${latency}, ${(o.budgetMs / 1000).toFixed(0)} s budget per sweep: retired by the first sweep; in total; sweeps`,
      `${w.retiredFirstSweep}; ${w.retiredTotal}; ${w.sweepCount}${first?.result ? ` (first sweep: due ${first.result.due}, left for the next ${first.result.leftForNextSweep}, failed ${first.result.failed}, deferred ${first.result.deferred})` : ''}`,
    );
    row('Sweep: time (first sweep; all sweeps); Stytch accepted req/s', `${first ? ms(first.ms) : '?'}; ${ms(w.totalMs)}; ${w.stytch.acceptedPerSecond}`);
    row('Sweep: Stytch requests; 429s retried; StytchRetry metric', `${w.stytch.requests}; ${w.stytch.throttled429}; ${w.metrics.stytchRetry}`);
    row('Sweep: calls per retirement, state table / Secrets Manager / Stytch', `${w.perRetirement.dynamodb} / ${w.perRetirement.secretsManager} / ${w.perRetirement.stytch} (state table: ${w.dynamodbOps})`);
    row(
      'Sweep: afterwards, previous secrets Stytch rejects; AWSCURRENT it accepts; no rotation in progress',
      `${w.verify.previousRejected}/${w.verify.secrets}; ${w.verify.currentAccepted}/${w.verify.secrets}; ${w.verify.consistent}/${w.verify.secrets}`,
    );
  }

  const lines = [
    `Stytch secret rotation — performance (${meta.generatedAt}, bench ${ms(meta.durationMs)})`,
    '',
    '| Figure | Value |',
    '|---|---|',
    ...rows.map(([a, b]) => `| ${a} | ${b} |`),
    '',
    '| Target | Value | Result |',
    '|---|---|---|',
    ...targets.map((t) => `| ${t.target} | ${t.value} | ${t.pass ? 'PASS' : `**MISS**: ${t.reason}`} |`),
  ];
  return lines.join('\n');
}

/** A step error without its request id, for the table. */
function shorten(error: string): string {
  return error.replace(/\s*\[request_id [^\]]+\]/g, '').replace(/\s*\(Too many requests[^)]*\)/g, '');
}
