/**
 * Cold import: a fresh `node` per sample, timing only `await import(bundle)`
 * (performance.now() before and after, so Node's own boot is excluded). The
 * function and the baseline alternate (A, B, A, B, ...) so drift in machine
 * load hits both alike; one discarded pair first warms the page cache.
 */
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { lambdaEnv } from './lib/lambda-env.js';
import { summarize, type Summary } from './lib/stats.js';

const PROBE = [
  'const t0 = performance.now(); const c0 = process.cpuUsage();',
  'await import(process.env.BENCH_IMPORT_URL);',
  'const t1 = performance.now(); const c = process.cpuUsage(c0);',
  'process.stdout.write(JSON.stringify({ importMs: t1 - t0, bootMs: t0, cpuMs: (c.user + c.system) / 1000 }));',
].join(' ');

interface Probe {
  importMs: number;
  bootMs: number;
  /** CPU time of the import (all threads): less sensitive than wall time to other load on the machine. */
  cpuMs: number;
}

export interface ColdImportFigures {
  pairs: number;
  function: Summary;
  baseline: Summary;
  /** median(function) / median(baseline). */
  ratio: number;
  /** Median of the per-pair ratios: robust to load that drifts during the run. */
  pairedRatioMedian: number;
  /** Median time from process start to the probe's first line (not part of the import figures). */
  nodeBootMs: number;
  /** The same comparison in CPU time of the import: a cross-check when the machine is busy. */
  cpu: { functionMedianMs: number; baselineMedianMs: number; ratio: number };
  samples: { function: number[]; baseline: number[] };
}

function importOnce(bundle: string): Probe {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE], {
    env: lambdaEnv({ BENCH_IMPORT_URL: pathToFileURL(bundle).href }),
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (run.status !== 0) throw new Error(`importing ${bundle} failed (exit ${run.status}): ${run.stderr.slice(0, 500)}`);
  return JSON.parse(run.stdout) as Probe;
}

export function measureColdImport(functionBundle: string, baselineBundle: string, pairs: number): ColdImportFigures {
  importOnce(functionBundle);
  importOnce(baselineBundle);
  const fn: number[] = [];
  const base: number[] = [];
  const boots: number[] = [];
  const ratios: number[] = [];
  const cpuFn: number[] = [];
  const cpuBase: number[] = [];
  for (let i = 0; i < pairs; i++) {
    const a = importOnce(functionBundle);
    const b = importOnce(baselineBundle);
    fn.push(a.importMs);
    base.push(b.importMs);
    boots.push(a.bootMs, b.bootMs);
    ratios.push(a.importMs / b.importMs);
    cpuFn.push(a.cpuMs);
    cpuBase.push(b.cpuMs);
  }
  const f = summarize(fn);
  const b = summarize(base);
  return {
    pairs,
    function: f,
    baseline: b,
    ratio: Math.round((f.median / b.median) * 1000) / 1000,
    pairedRatioMedian: Math.round(summarize(ratios).median * 1000) / 1000,
    nodeBootMs: summarize(boots).median,
    cpu: {
      functionMedianMs: summarize(cpuFn).median,
      baselineMedianMs: summarize(cpuBase).median,
      ratio: Math.round((summarize(cpuFn).median / summarize(cpuBase).median) * 1000) / 1000,
    },
    samples: { function: fn.map((v) => Math.round(v * 100) / 100), baseline: base.map((v) => Math.round(v * 100) / 100) },
  };
}
