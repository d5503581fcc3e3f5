// npm run test:mutation: each group of stryker.config.mjs in turn, incremental
// (only mutants whose code or covering tests changed are tested again), each
// printing its score per file. Fails if any group falls below its break
// threshold. Arguments go to every stryker run (e.g. --force, or a group name
// first to run only that group).
import { spawnSync } from 'node:child_process';
import { GROUPS } from '../../stryker.config.mjs';

const args = process.argv.slice(2);
const only = args[0] && !args[0].startsWith('-') ? args.shift() : undefined;
const names = only ? [only] : Object.keys(GROUPS);
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
