// Bundles the rotation function into one self-contained ESM file
// (DESIGN.md §2): the AWS SDK is bundled at the version pinned in
// package-lock.json, not taken from the Lambda runtime. The operator CLI
// (package.json "bin") is built the same way from the same shared code.
import { build } from 'esbuild';
import { chmod, mkdir, rm } from 'node:fs/promises';

const REQUIRE_SHIM = "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

async function bundle({ entry, outdir, sourcemap = false, shebang = false }) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const result = await build({
    entryPoints: { index: entry },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    minify: true,
    sourcemap,
    // Prefer the ES module builds so tree shaking works on the SDK.
    mainFields: ['module', 'main'],
    // Some bundled CommonJS dependencies call require() for Node built-ins.
    banner: { js: (shebang ? '#!/usr/bin/env node\n' : '') + REQUIRE_SHIM },
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  const file = `${outdir}/index.mjs`;
  if (shebang) await chmod(file, 0o755);
  const bytes = Object.entries(result.metafile.outputs).find(([out]) => out.endsWith('index.mjs'))?.[1].bytes ?? 0;
  console.log(`built ${file} (${(bytes / 1024).toFixed(1)} KiB)`);
}

await bundle({ entry: 'functions/rotate-stytch-secret/index.ts', outdir: 'dist/rotate-stytch-secret', sourcemap: true });
await bundle({ entry: 'cli/main.ts', outdir: 'dist/cli', shebang: true });
