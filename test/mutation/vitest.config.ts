import { fileURLToPath } from 'node:url';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.config.js';

const STRYKER_CONFIG: string = '../../stryker.config.mjs';
const { GROUPS } = (await import(STRYKER_CONFIG)) as { GROUPS: Record<string, { testFiles: string[] }> };
const group = GROUPS[process.env.MUTATION_GROUP ?? 'stytch'];
if (!group) throw new Error(`MUTATION_GROUP must be one of ${Object.keys(GROUPS).join(', ')}`);

/**
 * The test configuration Stryker runs (stryker.config.mjs): the project's own,
 * with the fast, focused suites first. A mutant is killed by the first test
 * that fails, so it should meet the millisecond unit tests before the suites
 * that drive the local stack over HTTP (vitest's default runs the slowest first).
 * The local stack's races run against the source, so that they see the mutants.
 */
const FIRST_TO_LAST = [
  'test/unit/',
  'test/reliability/safety-checks.test.ts',
  'cli/',
  'test/reliability/regressions.test.ts',
  'test/reliability/bad-input-table.test.ts',
  'test/fidelity/state-table.test.ts',
  'test/reliability/budget.test.ts',
  'test/cli/recover.test.ts',
  'test/cli/races.test.ts',
  'test/reliability/races.test.ts',
];
const rank = (file: string) => {
  const i = FIRST_TO_LAST.findIndex((prefix) => file.includes(`/${prefix}`));
  return i === -1 ? FIRST_TO_LAST.length : i;
};

class FastFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => rank(a.moduleId) - rank(b.moduleId) || a.moduleId.localeCompare(b.moduleId));
  }
}

const config = mergeConfig(
  base,
  defineConfig({
    root: fileURLToPath(new URL('../..', import.meta.url)),
    test: {
      sequence: { sequencer: FastFirst },
      // The local stack's races load the handler from the (mutated) source instead of the bundle.
      env: { RACES_BUNDLE: fileURLToPath(new URL('../../functions/rotate-stytch-secret/index.ts', import.meta.url)) },
    },
  }),
);
// The suites of the group under test (MUTATION_GROUP, see stryker.config.mjs) replace the project's list (merging would add them).
config.test!.include = group.testFiles;

export default config;
