/**
 * Plain-text formatting for the local demo (`npm start`, `npm run serve`):
 * what a person reads at a glance. Pure functions over plain data, so the
 * demo decides what is true and this file only lays it out.
 *
 * Secrets never reach this file whole (invariant V): callers pass last fours,
 * and `redact` is a last guard over anything printed that came from elsewhere
 * (error messages).
 */

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  ok(text: string): string;
  bad(text: string): string;
}

const plain: Style = { bold: (t) => t, dim: (t) => t, ok: (t) => t, bad: (t) => t };
const ansi = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;
const coloured: Style = { bold: ansi(1, 22), dim: ansi(2, 22), ok: ansi(32, 39), bad: ansi(31, 39) };

/** Colours only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function styleFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Style {
  return stream.isTTY === true && !env.NO_COLOR ? coloured : plain;
}

export interface StepView {
  step: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export interface VersionView {
  id: string;
  stages: string[];
  /** Last four of the version's client_secret; null when the version has no value. */
  last4: string | null;
}

export interface StytchView {
  secretLast4: string | null;
  nextSecretLast4: string | null;
}

export interface Check {
  ok: boolean;
  text: string;
  /** Why it failed, when it did. */
  why?: string;
}

/** What the report's first lines name: where everything runs. */
export interface DemoSetup {
  bundle: string;
  /** The one port that answers Secrets Manager, DynamoDB and Lambda Invoke. */
  awsUrl: string;
  stytchUrl: string;
  secretName: string;
  client: string;
  graceSeconds: number;
}

export interface RotationView {
  secretName: string;
  outcome: string;
  attempts: StepView[][];
  stytchCalls: string;
}

/** One invocation of the retirement sweep, as the demo saw it. */
export interface SweepView {
  at: Date;
  /** When it ran, in words ("inside the window"). */
  label: string;
  ok: boolean;
  ms: number;
  /** What it did ("retired …wRQa"), or its error. */
  text: string;
}

export interface EndState {
  /** Stytch's view of the client before the rotation, right after it, and after the sweep. */
  stytch: { before: StytchView; rotated: StytchView; swept: StytchView };
  versionsBefore: VersionView[];
  versionsAfter: VersionView[];
}

/** How a secret is shown anywhere: its last four characters only. */
export const fragment = (last4: string | null): string => (last4 === null ? '-' : `…${last4}`);

export const shortId = (versionId: string): string => versionId.slice(0, 8);

export const firstLine = (text: string): string => text.split('\n', 1)[0] ?? '';

export const ms = (value: number): string => `${Math.round(value)} ms`;

/** Replaces every occurrence of a known secret with its last four (a guard: nothing printed should contain one). */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 8) out = out.split(secret).join(fragment(secret.slice(-4)));
  return out;
}

/** Epoch ms as UTC wall-clock time, to the tenth of a second (windows of a few seconds need it). */
export const clock = (at: number | Date): string => new Date(at).toISOString().slice(11, 21);

export function formatSetup(r: DemoSetup, s: Style): string {
  return [
    s.bold(`Stytch secret rotation on the local stack, with the built function ${r.bundle}`),
    `  AWS              ${r.awsUrl}  (Secrets Manager, DynamoDB and Lambda emulators, one port)`,
    `  Stytch           ${r.stytchUrl}  (emulator)`,
    `  Secret           ${r.secretName}  (${r.client})`,
    `  Overlap window   ${r.graceSeconds} s: how long the old secret keeps working after AWSCURRENT moves`,
    '',
  ].join('\n');
}

export function formatRotation(r: RotationView, s: Style): string {
  const lines: string[] = [];
  const attempts = r.attempts.length;
  const outcome = r.outcome === 'succeeded' ? s.ok(r.outcome) : s.bad(r.outcome);
  lines.push(s.bold(`RotateSecret ${r.secretName}: `) + `${outcome} after ${attempts} attempt${attempts === 1 ? '' : 's'}`);
  r.attempts.forEach((steps, i) => {
    if (attempts > 1) lines.push(s.dim(`  attempt ${i + 1}`));
    for (const step of steps) {
      const status = step.ok ? s.ok('ok    ') : s.bad('failed');
      const error = step.error === undefined ? '' : `  ${firstLine(step.error)}`;
      lines.push(`  ${step.step.padEnd(13)} ${status} ${ms(step.ms).padStart(7)}${error}`);
    }
  });
  lines.push(s.dim(`  Stytch calls: ${r.stytchCalls}`));
  lines.push('');
  return lines.join('\n');
}

/** One sweep of the demo, under the "Retirement sweep" title. */
export function formatSweep(v: SweepView, s: Style): string {
  const status = v.ok ? s.ok('ok    ') : s.bad('failed');
  return `  ${clock(v.at)}  ${v.label.padEnd(18)} ${status} ${ms(v.ms).padStart(7)}  ${firstLine(v.text)}`;
}

export function formatEndState(r: EndState, s: Style): string {
  const lines: string[] = [];
  const cell = (value: string | null) => (value ?? '-').padEnd(9);
  lines.push(s.bold('Stytch client'.padEnd(32) + 'before'.padEnd(9) + 'rotated'.padEnd(9) + 'swept'));
  const { before, rotated, swept } = r.stytch;
  lines.push(`  ${'client_secret_last_four'.padEnd(30)}${cell(before.secretLast4)}${cell(rotated.secretLast4)}${swept.secretLast4 ?? '-'}`);
  lines.push(`  ${'next_client_secret_last_four'.padEnd(30)}${cell(before.nextSecretLast4)}${cell(rotated.nextSecretLast4)}${swept.nextSecretLast4 ?? '-'}`);
  lines.push('');
  for (const [title, versions] of [
    ['Secret versions before', r.versionsBefore],
    ['Secret versions after', r.versionsAfter],
  ] as const) {
    lines.push(s.bold(title));
    for (const v of versions) {
      const stages = v.stages.length > 0 ? v.stages.join(', ') : '(no label)';
      lines.push(`  ${shortId(v.id)}  ${stages.padEnd(24)} client_secret ${fragment(v.last4)}`);
    }
  }
  lines.push('');
  return lines.join('\n');
}

export function formatVerdict(checks: Check[], totalMs: number, s: Style): string {
  const lines = [s.bold('Verdict')];
  const failed = checks.filter((c) => !c.ok);
  for (const check of checks) {
    const mark = check.ok ? s.ok('ok  ') : s.bad('FAIL');
    lines.push(`  ${mark}  ${check.text}${check.ok || check.why === undefined ? '' : `: ${check.why}`}`);
  }
  const seconds = (totalMs / 1000).toFixed(1);
  lines.push(
    failed.length === 0
      ? s.ok(s.bold(`PASS: the rotation is verified (${seconds} s).`))
      : s.bad(s.bold(`FAIL: ${failed.length} of ${checks.length} checks failed (${seconds} s); see the FAIL lines above.`)),
  );
  return lines.join('\n');
}

/** Wide enough for the demo's secret names, so step lines line up. */
const NAME_WIDTH = 18;

/** One line per rotation step, as it happens (serve mode). */
export function formatStepLine(
  s: Style,
  at: Date,
  secretName: string,
  step: StepView & { token: string; configurationTest?: boolean },
): string {
  const time = at.toISOString().slice(11, 19);
  const status = step.ok ? s.ok('ok    ') : s.bad('failed');
  const what = step.configurationTest ? `${step.step} (configuration test)` : step.step;
  const error = step.error === undefined ? '' : `  ${firstLine(step.error)}`;
  return `${s.dim(time)} ${secretName.padEnd(NAME_WIDTH)}  ${shortId(step.token)}  ${what.padEnd(13)} ${status} ${ms(step.ms).padStart(7)}${error}`;
}

/** One line per retirement sweep (serve mode): who sent it, and what it did. */
export function formatSweepLine(s: Style, at: Date, sweep: { trigger: string; ok: boolean; ms: number; text: string }): string {
  const time = at.toISOString().slice(11, 19);
  const status = sweep.ok ? s.ok('ok    ') : s.bad('failed');
  const text = sweep.ok ? firstLine(sweep.text) : s.bad(firstLine(sweep.text));
  return `${s.dim(time)} ${'retirement sweep'.padEnd(NAME_WIDTH)}  ${sweep.trigger.padEnd(8 + 2 + 13)} ${status} ${ms(sweep.ms).padStart(7)}  ${text}`;
}

/** One line per rotation outcome (serve mode). */
export function formatOutcomeLine(s: Style, at: Date, secretName: string, text: string, ok: boolean): string {
  return `${s.dim(at.toISOString().slice(11, 19))} ${secretName.padEnd(NAME_WIDTH)}  ${ok ? s.ok(text) : s.bad(text)}`;
}
