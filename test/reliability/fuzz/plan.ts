/**
 * A trial's plan, drawn from its seed alone: the starting state, the client
 * kind, whether faults are injected, and the invocations to make, each at an
 * offset in milliseconds. Everything the trial does on purpose is here, so a
 * violation message can show it and FUZZ_SEED=<seed> FUZZ_TRIALS=1 replays it.
 * (Latencies and faults are drawn from the same seed as calls arrive; see
 * network.ts.)
 */
import { Rng } from './random.js';

export const STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type Step = (typeof STEPS)[number];

/**
 * - fresh: a secret never rotated (the first rotation binds it to its client);
 * - window: a rotation completed just now, its previous secret still accepted and due for retirement after the window;
 * - half-done: AWSCURRENT moved to Stytch's next secret but nothing completed it or recorded its retirement (the
 *   finishSecret that moved it ended early; Secrets Manager's reattempts run that token's steps again);
 * - ended: a completed rotation whose window has ended (with a window of 0: already retired).
 */
export const START_STATES = ['fresh', 'window', 'half-done', 'ended'] as const;
export type StartState = (typeof START_STATES)[number];

/** A: the rotation under way; B: a newer one, labelled AWSPENDING once A's version is AWSCURRENT. */
export type TokenName = 'A' | 'B';

export interface RotationPlan {
  token: TokenName;
  /** For B: milliseconds between A's version becoming AWSCURRENT and RotateSecret labelling B's version. */
  beginDelay: number;
  /** The steps Secrets Manager runs for this token, in order (B may stop early: still under way at the end). */
  steps: Step[];
  /** Steps delivered twice at once, as Lambda's at-least-once delivery may (each copy in its own container). */
  duplicates: Step[];
}

/** An invocation outside Secrets Manager's order: early, late, or of the other token. */
export interface Stray {
  token: TokenName;
  step: Step;
  /** Milliseconds after the token's version was labelled AWSPENDING. */
  at: number;
}

/**
 * What an outside actor does during a project-secret trial, milliseconds after A was labelled:
 * - usePrevious: an app that never re-read the secret authenticates with the one AWSCURRENT held before
 *   the last move (Stytch records the use: the sweep puts the deletion off once);
 * - deletePending: someone deletes, in the dashboard, the new secret AWSPENDING holds (the rotation must
 *   give up on it cleanly and never lose or wrongly delete a secret).
 */
export interface OutsideAction {
  what: 'usePrevious' | 'deletePending';
  at: number;
}

export interface TrialPlan {
  seed: number;
  /** project_secret: the rotated secret is a Stytch project API secret (DESIGN.md §4b), in a project environment of its own. */
  kind: 'connected_app' | 'm2m' | 'project_secret';
  start: StartState;
  /** Whether calls may fail (InternalServerError before or after the effect, a dropped Stytch connection). */
  faulty: boolean;
  rotations: RotationPlan[];
  strays: Stray[];
  /** Retirement sweeps (the scheduled event), milliseconds after the trial starts. */
  sweeps: number[];
  /** The operator CLI's `retire --yes`, milliseconds after the trial starts (only where the command exists). */
  retires: number[];
  /** Project-secret trials only. */
  outside: OutsideAction[];
}

export interface PlanOptions {
  /** Whether the operator CLI has a `retire` command to run. */
  cliRetire: boolean;
}

function duplicatesOf(rng: Rng, steps: readonly Step[], createOdds: number): Step[] {
  // createSecret and finishSecret are where duplicates can do harm (rotate/start, rotate, the label move).
  const odds: Record<Step, number> = { createSecret: createOdds, setSecret: 0.02, testSecret: 0.02, finishSecret: 0.1 };
  return steps.filter((step) => rng.chance(odds[step]));
}

/** Mostly early, so the stray overlaps the steps in flight; sometimes late. */
function strayOffset(rng: Rng): number {
  return rng.weighted([
    [rng.int(0, 15), 4],
    [rng.int(15, 80), 4],
    [rng.int(80, 300), 2],
  ]);
}

export function planTrial(seed: number, options: PlanOptions): TrialPlan {
  const rng = new Rng(seed).fork('plan');
  const clientKind = rng.chance(0.25) ? 'm2m' : 'connected_app';
  // A stream of its own, so the client trials' plans are drawn as before.
  const kinds = new Rng(seed).fork('kind');
  const kind = kinds.chance(1 / 3) ? 'project_secret' : clientKind;
  const start = rng.pick(START_STATES);
  const faulty = rng.chance(0.45);

  // The mix keeps a trial near 6 invocations: each costs ~15 ms of CPU (the real SDK over HTTP, in one
  // process with the stack), and 1,000 trials must fit well under two minutes.
  const rotations: RotationPlan[] = [{ token: 'A', beginDelay: 0, steps: [...STEPS], duplicates: duplicatesOf(rng, STEPS, 0.2) }];
  if (rng.chance(0.45)) {
    // B's createSecret is what races A's last steps and the sweep; its later steps matter less.
    const steps = rng.weighted<Step[]>([
      [['createSecret'], 80],
      [[...STEPS], 12],
      [['createSecret', 'setSecret', 'testSecret'], 8],
    ]);
    const beginDelay = rng.weighted([
      [rng.int(0, 2), 4],
      [rng.int(3, 15), 4],
      [rng.int(15, 60), 2],
    ]);
    rotations.push({ token: 'B', beginDelay, steps, duplicates: duplicatesOf(rng, steps, 0.3) });
  }

  const strays: Stray[] = [];
  const strayCount = rng.weighted([
    [0, 78],
    [1, 20],
    [2, 2],
  ]);
  for (let i = 0; i < strayCount; i++) {
    const token = rotations.length > 1 && rng.chance(0.4) ? 'B' : 'A';
    strays.push({ token, step: rng.pick(STEPS), at: strayOffset(rng) });
  }

  const sweepCount = rng.weighted([
    [0, 70],
    [1, 29],
    [2, 1],
  ]);
  const sweeps = Array.from({ length: sweepCount }, () => rng.int(0, 900)).sort((a, b) => a - b);
  const retires = options.cliRetire && kind !== 'project_secret' && rng.chance(0.05) ? [rng.int(0, 600)] : [];
  const outside: OutsideAction[] = [];
  if (kind === 'project_secret') {
    const count = kinds.weighted([
      [0, 45],
      [1, 45],
      [2, 10],
    ]);
    for (let i = 0; i < count; i++) outside.push({ what: kinds.chance(0.6) ? 'usePrevious' : 'deletePending', at: strayOffset(kinds) });
  }
  return { seed, kind, start, faulty, rotations, strays, sweeps, retires, outside };
}

const STEP_SHORT: Record<Step, string> = { createSecret: 'create', setSecret: 'set', testSecret: 'test', finishSecret: 'finish' };

/** The plan as text, for violation messages. */
export function describePlan(plan: TrialPlan): string {
  const rotation = (r: RotationPlan) => {
    const steps = r.steps.map((s) => `${STEP_SHORT[s]}${r.duplicates.includes(s) ? '×2' : ''}`).join(' → ');
    return r.token === 'A' ? `A: ${steps}` : `B (labelled ${r.beginDelay} ms after A became AWSCURRENT): ${steps}`;
  };
  const lines = [
    `seed ${plan.seed}: ${plan.kind}, start ${plan.start}, ${plan.faulty ? 'faults allowed' : 'no faults'}`,
    ...plan.rotations.map(rotation),
    `strays: ${plan.strays.map((s) => `${s.token}.${s.step} at +${s.at} ms after ${s.token} was labelled`).join(', ') || 'none'}`,
    `sweeps: ${plan.sweeps.map((t) => `+${t} ms`).join(', ') || 'none'}`,
  ];
  if (plan.retires.length > 0) lines.push(`CLI retire --yes: ${plan.retires.map((t) => `+${t} ms`).join(', ')}`);
  if (plan.outside.length > 0) lines.push(`outside actor: ${plan.outside.map((o) => `${o.what} at +${o.at} ms after A was labelled`).join(', ')}`);
  return lines.join('\n');
}
