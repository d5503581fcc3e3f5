import type { ExitCode, Verdict } from './diagnose.js';
import { exitCodeOf } from './diagnose.js';
import { CLIENT_LABELS, type Snapshot, type VersionView } from './snapshot.js';

/** Output of `status`: a short aligned table for people, one JSON object for scripts. Last fours only (V). */

/** Pads every column but the last to its widest cell. */
export function table(rows: ReadonlyArray<readonly string[]>, gap = '  '): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - [...cell].length)))
      .join(gap)
      .trimEnd(),
  );
}

function valueCell(view: VersionView | undefined): string {
  if (!view) return '-';
  switch (view.value.kind) {
    case 'value':
      return view.value.last4;
    case 'none':
      return '(no value)';
    case 'invalid':
      return `(${view.value.reason})`;
  }
}

function rotationLine(s: Snapshot): string {
  const r = s.rotation;
  if (!r.lambdaArn) return 'not configured';
  const parts = [r.enabled ? 'enabled' : 'disabled', r.schedule ?? 'no schedule', r.lambdaArn];
  if (r.lastRotatedDate) parts.push(`last ${r.lastRotatedDate}`);
  if (r.nextRotationDate) parts.push(`next ${r.nextRotationDate}`);
  return parts.join(', ');
}

export function renderStatus(s: Snapshot, verdicts: readonly Verdict[]): string[] {
  const pendingRow = s.pending
    ? ['AWSPENDING', s.pending.versionId, valueCell(s.pending)]
    : ['AWSPENDING', s.pendingOnCurrent ? '(on the AWSCURRENT version: finished)' : '-', '-'];
  const lines = table([
    ['Secret', s.name],
    ['Client', `${CLIENT_LABELS[s.client.kind]} ${s.client.id}`],
    ['Rotation', rotationLine(s)],
  ]);
  lines.push('');
  lines.push(
    ...table([
      ['', 'Version', 'Last four'],
      ['AWSCURRENT', s.current.versionId, s.current.value.last4],
      pendingRow,
      ['AWSPREVIOUS', s.previous?.versionId ?? '-', valueCell(s.previous)],
      ['Stytch', 'current secret', s.stytch.secretLast4 ?? '-'],
      ['Stytch', 'next secret', s.stytch.nextSecretLast4 ?? '-'],
    ]),
  );
  lines.push('');
  const exit = exitCodeOf(verdicts);
  lines.push(`Verdict: ${verdicts.map((v) => v.code).join(', ')} (exit ${exit})`);
  for (const v of verdicts) lines.push(...renderVerdict(v));
  return lines;
}

export function renderVerdict(v: Verdict): string[] {
  const lines = [`  ${v.code}: ${v.summary}`];
  if (v.fix.command) lines.push(`    fix: ${v.fix.command}`);
  if (v.code !== 'consistent') lines.push(`    ${v.fix.explanation}`);
  return lines;
}

export interface StatusJson {
  secret: { id: string; name: string; arn: string };
  client: { id: string; kind: string };
  rotation: Snapshot['rotation'];
  versions: Record<'AWSCURRENT' | 'AWSPENDING' | 'AWSPREVIOUS', null | { versionId: string; stages: string[]; last4: string | null; value: string }>;
  stytch: { currentLast4: string | null; nextLast4: string | null };
  verdict: string;
  verdicts: Array<{ code: string; exitCode: ExitCode; summary: string; fix: { command: string | null; explanation: string; byRecover: boolean } }>;
  exitCode: ExitCode;
}

function versionJson(view: VersionView | undefined): StatusJson['versions']['AWSCURRENT'] {
  if (!view) return null;
  return {
    versionId: view.versionId,
    stages: view.stages,
    last4: view.value.kind === 'value' ? view.value.last4 : null,
    value: view.value.kind === 'invalid' ? `invalid: ${view.value.reason}` : view.value.kind === 'value' ? 'present' : 'none',
  };
}

export function statusJson(s: Snapshot, verdicts: readonly Verdict[]): StatusJson {
  return {
    secret: { id: s.secretId, name: s.name, arn: s.arn },
    client: { id: s.client.id, kind: s.client.kind },
    rotation: s.rotation,
    versions: { AWSCURRENT: versionJson(s.current), AWSPENDING: versionJson(s.pending), AWSPREVIOUS: versionJson(s.previous) },
    stytch: { currentLast4: s.stytch.secretLast4, nextLast4: s.stytch.nextSecretLast4 },
    verdict: verdicts[0]?.code ?? 'consistent',
    verdicts: verdicts.map((v) => ({ code: v.code, exitCode: v.exitCode, summary: v.summary, fix: { ...v.fix, command: v.fix.command ?? null } })),
    exitCode: exitCodeOf(verdicts),
  };
}
