// Mutation testing of the safety-critical code: npm run test:mutation
// (test/mutation/run.mjs runs each group below in turn; MUTATION_GROUP=<name>
// npx stryker run runs one).
//
// Every mutant of these files must be killed by a test or marked equivalent in
// the code (`// Stryker disable next-line <mutator>: <reason>`); a group whose
// score falls below `break` fails the run. Each group keeps its results in
// test/mutation/<group>.json, committed: a run re-tests only the mutants whose
// code or covering tests changed (CI runs it that way). `-- --force` re-tests
// everything and rewrites the files.
//
// Groups, each with the suites that test its files' decisions directly: with
// perTest coverage Stryker runs only the tests that reach a mutant, but code as
// central as the Stytch client is reached by nearly every test in the project;
// a module-level (static) mutant runs every test of its group. On two shared
// cores the focused suites are what makes a run affordable.
//
// The suites that go through the built bundle run against the source here:
// the local stack's races (test/reliability/races.test.ts) load the handler
// from functions/rotate-stytch-secret/index.ts in Stryker's sandbox
// (RACES_BUNDLE, set in test/mutation/vitest.config.ts), so they see the
// mutants, and no bundle has to be rebuilt in the sandbox. The fuzzer, the
// fault matrix and the property runs stay out (random or exhaustive sweeps of
// one to two minutes each, per surviving mutant); npm test runs them, and the
// hand-written mutation suite (test/reliability/mutation.test.ts, also in npm
// test) keeps showing that they catch the multi-line regressions they are for.
/** The suites that drive the function itself, in process from source, and the local stack's races. */
const FUNCTION_SUITES = [
  'test/unit/rotation.test.ts',
  'test/unit/overlap-window.test.ts',
  'test/unit/lease-and-binding.test.ts',
  'test/unit/bad-input.test.ts',
  'test/reliability/safety-checks.test.ts',
  'test/reliability/regressions.test.ts',
  'test/reliability/budget.test.ts',
  'test/reliability/races.test.ts',
];

/** The state table's suites: its decisions one by one, and the lease and binding as the function meets them. */
const STATE_SUITES = ['test/unit/lease-and-binding.test.ts', 'test/unit/overlap-window.test.ts', 'test/fidelity/state-table.test.ts', 'test/unit/state-table.test.ts'];
/** The operator CLI's suites. */
const CLI_SUITES = ['cli/plan.test.ts', 'cli/diagnose.test.ts', 'cli/cli.test.ts', 'test/cli/recover.test.ts', 'test/cli/recover-decisions.test.ts', 'test/cli/races.test.ts'];

const GROUPS = {
  // The Stytch client and the error classes that decide transient vs definitive.
  stytch: {
    // 100.0 on a forced run: every mutant killed.
    break: 100,
    mutate: ['functions/lib/stytch/http.ts', 'functions/lib/errors.ts'],
    testFiles: ['test/unit/stytch-http.test.ts', 'test/unit/project-secret-parts.test.ts', 'test/reliability/safety-checks.test.ts', 'test/reliability/budget.test.ts'],
  },
  // What comes from outside: the event, the rotated secret, the credentials secret.
  schemas: {
    break: 100,
    mutate: ['functions/lib/schemas.ts'],
    testFiles: [
      'test/unit/schemas.test.ts',
      'test/unit/project-secret-parts.test.ts',
      'test/unit/bad-input.test.ts',
      'test/reliability/bad-input-table.test.ts',
      'test/reliability/safety-checks.test.ts',
    ],
  },
  // The state table, in two groups: the lease's wait and take-over (a few dozen mutants), and the table's conditional
  // writes (several hundred, each reached by nearly every test of the group: the slowest group to run in full).
  lease: {
    // 100.0: every mutant killed or marked equivalent in the code.
    break: 100,
    mutate: ['functions/lib/state/lease.ts'],
    testFiles: STATE_SUITES,
  },
  state: {
    // 100.0 (493 killed, 106 timeouts: mutants that stall a lease wait until the run's timeout); full run 35 min on two cores.
    break: 100,
    mutate: ['functions/lib/state/table.ts'],
    testFiles: STATE_SUITES,
  },
  // The operator CLI: the plan (what recover would do about a state), and recover, which checks again before each action.
  plan: {
    // 100.0: every mutant killed or marked equivalent in the code.
    break: 100,
    mutate: ['cli/plan.ts'],
    testFiles: CLI_SUITES,
  },
  recover: {
    // 100.0: every mutant killed.
    break: 100,
    mutate: ['cli/commands/recover.ts'],
    testFiles: CLI_SUITES,
  },
  // The function, in three groups of a few hundred mutants each: the steps and the failure policy,
  // the retirement sweep, and the handler (event validation, the budget and its reserve).
  rotation: {
    // 100.0: every mutant killed or marked equivalent in the code.
    break: 100,
    mutate: ['functions/rotate-stytch-secret/rotation.ts'],
    testFiles: [...FUNCTION_SUITES, 'test/unit/rotation-create.test.ts', 'test/unit/rotation-finish.test.ts'],
  },
  sweep: {
    // Full run: 100.0 (195 killed, 1 timeout; 11 ignored: log wording and mutants marked equivalent in the code).
    break: 100,
    mutate: ['functions/rotate-stytch-secret/sweep.ts'],
    testFiles: [...FUNCTION_SUITES, 'test/unit/sweep.test.ts'],
  },
  // The project secret's steps and sweep (DESIGN.md §4b), and the management API client.
  project: {
    // 100.0 (management.ts and project-secret.ts): every mutant killed or marked equivalent in the code.
    break: 100,
    mutate: ['functions/rotate-stytch-secret/project-secret.ts', 'functions/lib/stytch/management.ts'],
    testFiles: [
      'test/unit/project-secret.test.ts',
      'test/unit/project-secret-branches.test.ts',
      'test/unit/project-secret-parts.test.ts',
      'test/unit/project-secret-create.test.ts',
      'test/unit/project-secret-finish.test.ts',
    ],
  },
  handler: {
    // First full run: 100 (115 of 115 mutants killed; index.ts has none).
    break: 100,
    mutate: ['functions/rotate-stytch-secret/handler.ts', 'functions/rotate-stytch-secret/index.ts'],
    testFiles: [...FUNCTION_SUITES, 'test/unit/handler.test.ts'],
  },
};

const name = process.env.MUTATION_GROUP ?? 'stytch';
const group = GROUPS[name];
if (!group) throw new Error(`MUTATION_GROUP must be one of ${Object.keys(GROUPS).join(', ')}`);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: {
    configFile: 'test/mutation/vitest.config.ts',
    // The races suite reaches the function through the local stack, not by importing it: find tests by coverage.
    related: false,
  },
  plugins: ['@stryker-mutator/vitest-runner', './test/mutation/log-wording.mjs'],
  // Log wording only (the first argument of a logger call): see that file for why. Error messages are mutated.
  ignorers: ['log-wording'],
  mutate: group.mutate,
  // The group's suites are chosen by the vitest configuration (its include), not by Stryker's testFiles:
  // with testFiles, Stryker 9.6 activates a module-level (static) mutant only after its module has loaded,
  // and reports it as surviving whatever the tests do (stryker-js issue 6144).
  coverageAnalysis: 'perTest',
  // Two cores, shared: one test runner per core at most.
  concurrency: 2,
  // A mutant that makes a step wait (for a lease, a deadline) is stopped this long after its tests' usual time.
  timeoutMS: 8_000,
  timeoutFactor: 2,
  dryRunTimeoutMinutes: 10,
  incremental: true,
  incrementalFile: `test/mutation/${name}.json`,
  // 90 is the goal for every group; `break` is each group's floor, raised as its survivors are killed (never lowered).
  thresholds: { high: 95, low: 90, break: group.break },
  reporters: ['clear-text', 'progress-append-only', 'json'],
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0, reportScoreTable: true, reportMutants: true },
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  tempDirName: `.stryker-tmp/${name}`,
  cleanTempDir: true,
};

export { GROUPS };
