// npm run test:mutation: each group of stryker.config.mjs in turn, incremental
// (only mutants whose code or covering tests changed are tested again), each
// printing its score per file. Fails if any group falls below its break
// threshold.
//
//   npm run test:mutation                  every group that has committed results
//   npm run test:mutation -- <group>       one group (creates its results the first time)
//   npm run test:mutation -- <group> --force   test all of its mutants again
//
// A group without committed results (test/mutation/<group>.json) would test
// every one of its mutants, which takes from minutes to hours on two cores: the
// default run names it and leaves it out, so CI stays within its time.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { GROUPS } from '../../stryker.config.mjs';

const args = process.argv.slice(2);
const only = args[0] && !args[0].startsWith('-') ? args.shift() : undefined;
if (only && !GROUPS[only]) {
  console.error(`No mutation group ${only}; the groups are ${Object.keys(GROUPS).join(', ')}.`);
  process.exit(2);
}
const baseline = (name) => existsSync(new URL(`./${name}.json`, import.meta.url));
const names = only ? [only] : Object.keys(GROUPS).filter(baseline);
const missing = only ? [] : Object.keys(GROUPS).filter((name) => !baseline(name));
if (missing.length > 0) {
  console.warn(`Mutation groups with no committed results, not run: ${missing.join(', ')}. Create them with npm run test:mutation -- <group>.`);
}
const failed = [];
for (const name of names) {
  console.log(`\n=== mutation testing: ${name} (${GROUPS[name].mutate.join(', ')})`);
  const started = Date.now();
  const run = spawnSync('npx', ['stryker', 'run', ...args], { stdio: 'inherit', env: { ...process.env, MUTATION_GROUP: name } });
  console.log(`=== ${name}: ${run.status === 0 ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - started) / 1000)} s`);
  if (run.status !== 0) failed.push(name);
}
if (failed.length > 0) {
  console.error(`Mutation testing failed for ${failed.join(', ')}: a score under the break threshold, or an error above.`);
  process.exit(1);
}
