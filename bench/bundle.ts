/**
 * Bundle figures: size of the built function, raw and gzipped, and which
 * packages its bytes come from; plus the two helper bundles the bench needs
 * (the cold-import baseline and the "Lambda container" child process), built
 * into bench/.build/.
 */
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

export const FUNCTION_BUNDLE = resolve('dist/rotate-stytch-secret/index.mjs');
export const BUILD_DIR = resolve('bench/.build');
export const BASELINE_BUNDLE = resolve(BUILD_DIR, 'baseline/index.mjs');
export const CONTAINER_SCRIPT = resolve(BUILD_DIR, 'container.mjs');

/**
 * The options of scripts/build.mjs, which does not export them. analyzeBundle
 * checks that an in-memory build with them yields exactly the bytes in dist/,
 * so a drift between the two is reported rather than silently measured.
 */
export function functionBuildOptions(): BuildOptions {
  return {
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    minify: true,
    sourcemap: true,
    mainFields: ['module', 'main'],
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    outExtension: { '.js': '.mjs' },
  };
}

export interface PackageBytes {
  name: string;
  bytes: number;
  share: number;
}

export interface BundleFigures {
  path: string;
  bytes: number;
  gzipBytes: number;
  /** Bytes each package contributes to the minified output (esbuild's bytesInOutput). */
  topPackages: PackageBytes[];
  /** The same grouped by npm scope (@aws-sdk, @smithy, ...). */
  topScopes: PackageBytes[];
  /** True when the in-memory rebuild with functionBuildOptions() matched dist/ byte for byte in size. */
  rebuildMatchesDist: boolean;
  /** The AWS SDK service clients (`@aws-sdk/client-*`) in the bundle. */
  sdkClients: string[];
}

export async function analyzeBundle(): Promise<BundleFigures> {
  const code = await readFile(FUNCTION_BUNDLE);
  const result = await build({
    ...functionBuildOptions(),
    entryPoints: { index: 'functions/rotate-stytch-secret/index.ts' },
    outdir: 'dist/rotate-stytch-secret',
    write: false,
  });
  const [outPath, output] = mainOutput(result.metafile!);
  const inMemory = result.outputFiles?.find((f) => f.path.endsWith('index.mjs'));
  const packages = new Map<string, number>();
  const scopes = new Map<string, number>();
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = packageOf(input);
    packages.set(name, (packages.get(name) ?? 0) + bytesInOutput);
    const scope = name.startsWith('@') ? `${name.split('/')[0]}/*` : name;
    scopes.set(scope, (scopes.get(scope) ?? 0) + bytesInOutput);
  }
  const top = (map: Map<string, number>): PackageBytes[] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([name, bytes]) => ({ name, bytes, share: Math.round((bytes / output.bytes) * 1000) / 1000 }));
  return {
    path: 'dist/rotate-stytch-secret/index.mjs',
    bytes: code.length,
    gzipBytes: gzipSync(code).length,
    topPackages: top(packages),
    topScopes: top(scopes),
    rebuildMatchesDist: inMemory !== undefined && inMemory.contents.length === code.length && outPath.endsWith('index.mjs'),
    sdkClients: sdkClientsOf(result.metafile!),
  };
}

export interface BaselineFigures {
  path: string;
  bytes: number;
  gzipBytes: number;
  /** The AWS SDK service clients (`@aws-sdk/client-*`) in the baseline's output: the ratio measures the function's own code only when they are the function's. */
  sdkClients: string[];
}

/** The cold-import baseline (bench/baseline/handler.ts) with the function's build options. */
export async function buildBaseline(): Promise<BaselineFigures> {
  const result = await build({
    ...functionBuildOptions(),
    entryPoints: { index: 'bench/baseline/handler.ts' },
    outdir: resolve(BUILD_DIR, 'baseline'),
  });
  const code = await readFile(BASELINE_BUNDLE);
  return {
    path: 'bench/.build/baseline/index.mjs',
    bytes: code.length,
    gzipBytes: gzipSync(code).length,
    sdkClients: sdkClientsOf(result.metafile!),
  };
}

/** Service clients whose code is in the output (bytesInOutput > 0), sorted. */
function sdkClientsOf(metafile: Metafile): string[] {
  const [, output] = mainOutput(metafile);
  const names = new Set<string>();
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const name = packageOf(input);
    if (bytesInOutput > 0 && name.startsWith('@aws-sdk/client-')) names.add(name);
  }
  return [...names].sort();
}

/** The child process that hosts the built function (bench/container/worker.ts), runnable by plain node. */
export async function buildContainer(): Promise<void> {
  await build({
    entryPoints: ['bench/container/worker.ts'],
    outfile: CONTAINER_SCRIPT,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    logLevel: 'warning',
  });
}

function mainOutput(metafile: Metafile): [string, Metafile['outputs'][string]] {
  const entry = Object.entries(metafile.outputs).find(([file]) => file.endsWith('.mjs'));
  if (!entry) throw new Error('esbuild produced no .mjs output');
  return entry;
}

/** `node_modules/@smithy/core/dist-es/x.js` → `@smithy/core`; the last node_modules wins (nested installs). */
export function packageOf(inputPath: string): string {
  const parts = inputPath.split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at < 0) return inputPath.startsWith('functions/') ? '(this project: functions/)' : '(other)';
  const first = parts[at + 1] ?? '(unknown)';
  return first.startsWith('@') ? `${first}/${parts[at + 2] ?? ''}` : first;
}
