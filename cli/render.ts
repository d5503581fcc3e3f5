import type { ExitCode, Verdict } from './diagnose.js';
import { credentialsLabel, exitCodeOf, isoTime } from './diagnose.js';
import { CLIENT_LABELS, type Snapshot, type StateView, type Survey, type VersionView } from './snapshot.js';

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
      return view.value.copyOfCurrent ? `${view.value.last4} (a copy of AWSCURRENT)` : view.value.last4;
    case 'none':
      return '(no value)';
    case 'invalid':
      return `(${view.value.reason})`;
  }
}

function rotationLine(s: Survey): string {
  const r = s.rotation;
  if (!r.lambdaArn) return 'not configured';
  const parts = [r.enabled ? 'enabled' : 'disabled', r.schedule ?? 'no schedule', r.lambdaArn];
  if (r.lastRotatedDate) parts.push(`last ${r.lastRotatedDate}`);
  if (r.nextRotationDate) parts.push(`next ${r.nextRotationDate}`);
  return parts.join(', ');
}

function bindingLine(s: Survey): string {
  const state = s.state;
  if (state.kind === 'unknown') return `unknown: ${state.reason}`;
  const bound = state.binding ?? (state.clientBinding?.secretArn === s.arn ? state.clientBinding : undefined);
  if (!bound) {
    return state.valueNames
      ? `not bound yet (the next rotation binds it to client ${state.valueNames.clientId} of project ${state.valueNames.projectId})`
      : 'not bound yet';
  }
  const since = bound.boundAt ? `, bound since ${bound.boundAt.replace(/\.\d{3}Z$/, 'Z')}` : '';
  return `client ${bound.clientId}, project ${bound.projectId}, ${credentialsLabel(bound.credentialsSecretId)}${since}`;
}

function leaseLine(s: Survey): string {
  const state = s.state;
  if (state.kind === 'unknown') return 'unknown';
  const lease = state.lease;
  if (!lease) return 'free';
  if (lease.until < s.readAt) return `free (the last holder, ${lease.holder}, ${lease.what || 'unknown work'}, ended without giving it back; it expired at ${isoTime(lease.until)})`;
  return `held by ${lease.holder} (${lease.what || 'unknown work'}) until ${isoTime(lease.until)}`;
}

function windowLine(s: Survey): string {
  const state = s.state;
  if (state.kind === 'unknown') return 'unknown';
  const r = state.retirement;
  if (!r) return 'none (no previous secret waiting to be retired)';
  const when = r.dueAt > s.readAt ? `accepted until ${isoTime(r.dueAt)}` : `due for retirement since ${isoTime(r.dueAt)}`;
  return `previous secret …${r.previousLast4 || '?'} (version ${r.previousVersionId || '?'}) ${when}; it was replaced by version ${r.versionId} (…${r.last4})`;
}

function clientLine(s: Survey): string {
  if (!s.client) return 'unknown (AWSCURRENT names none and the state table has no binding)';
  const from = s.current?.value.kind === 'value' ? '' : ' (from the binding: AWSCURRENT names none)';
  return `${CLIENT_LABELS[s.client.kind]} ${s.client.id}${from}`;
}

export function renderStatus(s: Survey, verdicts: readonly Verdict[]): string[] {
  const pendingRow = s.pending
    ? ['AWSPENDING', s.pending.versionId, valueCell(s.pending)]
    : ['AWSPENDING', s.pendingOnCurrent ? '(on the AWSCURRENT version: finished)' : '-', '-'];
  const stytchCell = (last4: string | null | undefined) => (s.stytch ? (last4 ?? '-') : '(not read)');
  const rows: string[][] = [
    ['Secret', s.name],
    ['Client', clientLine(s)],
    ['Rotation', rotationLine(s)],
  ];
  if (s.credentials) rows.push(['Credentials', `${s.credentials.id} (from ${s.credentials.source})`]);
  rows.push(['Binding', bindingLine(s)], ['Lease', leaseLine(s)], ['Window', windowLine(s)]);
  const lines = table(rows);
  lines.push('');
  lines.push(
    ...table([
      ['', 'Version', 'Last four'],
      ['AWSCURRENT', s.current?.versionId ?? '-', valueCell(s.current)],
      pendingRow,
      ['AWSPREVIOUS', s.previous?.versionId ?? '-', valueCell(s.previous)],
      ['Stytch', 'current secret', stytchCell(s.stytch?.secretLast4)],
      ['Stytch', 'next secret', stytchCell(s.stytch?.nextSecretLast4)],
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
  client: { id: string; kind: string } | null;
  rotation: Snapshot['rotation'];
  /** The Stytch credentials secret and where the CLI found it; null when none was found. */
  credentials: { id: string; source: string } | null;
  versions: Record<'AWSCURRENT' | 'AWSPENDING' | 'AWSPREVIOUS', null | { versionId: string; stages: string[]; last4: string | null; value: string }>;
  /** null: Stytch was not read (a verdict says why). */
  stytch: { currentLast4: string | null; nextLast4: string | null } | null;
  /** The function's state table: the binding (VII), the lease (VI) and the overlap window. */
  state: StateJson;
  /** When status read all this (ISO 8601). */
  readAt: string;
  verdict: string;
  verdicts: Array<{ code: string; exitCode: ExitCode; summary: string; fix: { command: string | null; explanation: string; byRecover: boolean } }>;
  exitCode: ExitCode;
}

interface BindingJson {
  clientId: string;
  projectId: string;
  /** null: the function's default credentials. */
  credentialsSecretId: string | null;
}

export type StateJson =
  | { table: null; known: false; reason: string }
  | {
      table: string;
      known: true;
      valueNames: BindingJson | null;
      binding: (BindingJson & { boundAt: string | null }) | null;
      clientBinding: (BindingJson & { secretArn: string; boundAt: string | null }) | null;
      lease: { holder: string; what: string; until: string; held: boolean } | null;
      retirement: { dueAt: string; versionId: string; last4: string; previousVersionId: string; previousLast4: string } | null;
    };

const bindingJson = (b: { clientId: string; projectId: string; credentialsSecretId: string | undefined }): BindingJson => ({
  clientId: b.clientId,
  projectId: b.projectId,
  credentialsSecretId: b.credentialsSecretId ?? null,
});

function stateJson(state: StateView, readAt: number): StateJson {
  if (state.kind === 'unknown') return { table: null, known: false, reason: state.reason };
  const { binding, clientBinding, lease, retirement } = state;
  return {
    table: state.table,
    known: true,
    valueNames: state.valueNames ? bindingJson(state.valueNames) : null,
    binding: binding ? { ...bindingJson(binding), boundAt: binding.boundAt ?? null } : null,
    clientBinding: clientBinding ? { ...bindingJson(clientBinding), secretArn: clientBinding.secretArn, boundAt: clientBinding.boundAt ?? null } : null,
    lease: lease ? { holder: lease.holder, what: lease.what, until: isoTime(lease.until), held: lease.until >= readAt } : null,
    retirement: retirement
      ? {
          dueAt: isoTime(retirement.dueAt),
          versionId: retirement.versionId,
          last4: retirement.last4,
          previousVersionId: retirement.previousVersionId,
          previousLast4: retirement.previousLast4,
        }
      : null,
  };
}

function versionJson(view: VersionView | undefined): StatusJson['versions']['AWSCURRENT'] {
  if (!view) return null;
  return {
    versionId: view.versionId,
    stages: view.stages,
    last4: view.value.kind === 'value' ? view.value.last4 : null,
    value:
      view.value.kind === 'invalid'
        ? `invalid: ${view.value.reason}`
        : view.value.kind === 'value'
          ? view.value.copyOfCurrent
            ? 'copy of AWSCURRENT'
            : 'present'
          : 'none',
  };
}

export function statusJson(s: Survey, verdicts: readonly Verdict[]): StatusJson {
  return {
    secret: { id: s.secretId, name: s.name, arn: s.arn },
    client: s.client ? { id: s.client.id, kind: s.client.kind } : null,
    rotation: s.rotation,
    credentials: s.credentials ?? null,
    versions: { AWSCURRENT: versionJson(s.current), AWSPENDING: versionJson(s.pending), AWSPREVIOUS: versionJson(s.previous) },
    stytch: s.stytch ? { currentLast4: s.stytch.secretLast4, nextLast4: s.stytch.nextSecretLast4 } : null,
    state: stateJson(s.state, s.readAt),
    readAt: isoTime(s.readAt),
    verdict: verdicts[0]?.code ?? 'consistent',
    verdicts: verdicts.map((v) => ({ code: v.code, exitCode: v.exitCode, summary: v.summary, fix: { ...v.fix, command: v.fix.command ?? null } })),
    exitCode: exitCodeOf(verdicts),
  };
}
