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

export interface DemoReport {
  bundle: string;
  secretsManagerUrl: string;
  stytchUrl: string;
  secretName: string;
  client: string;
  outcome: string;
  attempts: StepView[][];
  stytchCalls: string;
  stytchBefore: StytchView;
  stytchAfter: StytchView;
  versionsBefore: VersionView[];
  versionsAfter: VersionView[];
  checks: Check[];
  totalMs: number;
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

export function formatReport(r: DemoReport, s: Style): string {
  const lines: string[] = [];
  const attempts = r.attempts.length;
  const failed = r.checks.filter((c) => !c.ok);

  lines.push(s.bold(`Stytch secret rotation on the local stack, with the built function ${r.bundle}`));
  lines.push(`  Secrets Manager  ${r.secretsManagerUrl}  (emulator, awsJson1_1)`);
  lines.push(`  Stytch           ${r.stytchUrl}  (emulator)`);
  lines.push(`  Secret           ${r.secretName}  (${r.client})`);
  lines.push('');

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

  lines.push(s.bold('Stytch client'.padEnd(32) + 'before'.padEnd(9) + 'after'));
  lines.push(`  ${'client_secret_last_four'.padEnd(30)}${(r.stytchBefore.secretLast4 ?? '-').padEnd(9)}${r.stytchAfter.secretLast4 ?? '-'}`);
  lines.push(`  ${'next_client_secret_last_four'.padEnd(30)}${(r.stytchBefore.nextSecretLast4 ?? '-').padEnd(9)}${r.stytchAfter.nextSecretLast4 ?? '-'}`);
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

  lines.push(s.bold('Verdict'));
  for (const check of r.checks) {
    const mark = check.ok ? s.ok('ok  ') : s.bad('FAIL');
    lines.push(`  ${mark}  ${check.text}${check.ok || check.why === undefined ? '' : `: ${check.why}`}`);
  }
  const seconds = (r.totalMs / 1000).toFixed(1);
  lines.push(
    failed.length === 0
      ? s.ok(s.bold(`PASS: the rotation is verified (${seconds} s).`))
      : s.bad(s.bold(`FAIL: ${failed.length} of ${r.checks.length} checks failed (${seconds} s); see the FAIL lines above.`)),
  );
  return `${lines.join('\n')}\n`;
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

/** One line per rotation outcome (serve mode). */
export function formatOutcomeLine(s: Style, at: Date, secretName: string, text: string, ok: boolean): string {
  return `${s.dim(at.toISOString().slice(11, 19))} ${secretName.padEnd(NAME_WIDTH)}  ${ok ? s.ok(text) : s.bad(text)}`;
}
