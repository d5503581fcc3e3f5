// Bundles the rotation function into one self-contained ESM file
// (DESIGN.md §2): the AWS SDK is bundled at the version pinned in
// package-lock.json, not taken from the Lambda runtime. The operator CLI
// (package.json "bin") is built the same way from the same shared code.
import { build } from 'esbuild';
import { chmod, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

const REQUIRE_SHIM = "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

async function bundle({ entry, outdir, sourcemap = false, shebang = false }) {
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
    write: false,
  });
  // Each file is written beside its final name and renamed into place, so a test or
  // a deploy reading dist/ while it is rebuilt sees the old file or the new one, never
  // a missing or half-written one.
  const written = new Set();
  for (const output of result.outputFiles) {
    const temporary = `${output.path}.${process.pid}.tmp`;
    await writeFile(temporary, output.contents, { mode: shebang && output.path.endsWith('.mjs') ? 0o755 : 0o644 });
    await rename(temporary, output.path);
    written.add(basename(output.path));
  }
  for (const stale of await readdir(outdir)) {
    if (!written.has(stale) && !stale.endsWith('.tmp')) await rm(join(outdir, stale), { recursive: true, force: true });
  }
  const file = `${outdir}/index.mjs`;
  if (shebang) await chmod(file, 0o755);
  const bytes = Object.entries(result.metafile.outputs).find(([out]) => out.endsWith('index.mjs'))?.[1].bytes ?? 0;
  console.log(`built ${file} (${(bytes / 1024).toFixed(1)} KiB)`);
}

await bundle({ entry: 'functions/rotate-stytch-secret/index.ts', outdir: 'dist/rotate-stytch-secret', sourcemap: true });
await bundle({ entry: 'cli/main.ts', outdir: 'dist/cli', shebang: true });
