// Bundles the rotation function into one self-contained ESM file
// (DESIGN.md §2): the AWS SDK is bundled at the version pinned in
// package-lock.json, not taken from the Lambda runtime.
import { build } from 'esbuild';
import { mkdir, rm } from 'node:fs/promises';

const outdir = 'dist/rotate-stytch-secret';
await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });

const result = await build({
  entryPoints: { index: 'functions/rotate-stytch-secret/index.ts' },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'esm',
  minify: true,
  sourcemap: true,
  // Prefer the ES module builds so tree shaking works on the SDK.
  mainFields: ['module', 'main'],
  // Some bundled CommonJS dependencies call require() for Node built-ins.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});

const bytes = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith('index.mjs'))?.[1].bytes ?? 0;
console.log(`built ${outdir}/index.mjs (${(bytes / 1024).toFixed(1)} KiB)`);
