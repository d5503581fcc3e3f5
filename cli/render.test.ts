import { describe, expect, it } from 'vitest';
import { diagnose } from './diagnose.js';
import { renderStatus, statusJson, table } from './render.js';
import { CUR_VERSION, PEND_VERSION, PREV_VERSION, PROJECT_ID, snapshotOf, STATE_TABLE } from './test-snapshots.js';

describe('Function: table', () => {
  it('pads every column but the last to its widest cell', () => {
    expect(table([['a', 'bb', 'c'], ['ccc', 'd', 'e']])).toEqual(['a    bb  c', 'ccc  d   e']);
  });
});

describe('Function: renderStatus', () => {
  it('shows stages, Stytch last fours, rotation and the verdicts with their fixes, aligned', () => {
    // Prepare
    const s = snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: 'nnnn', pending: 'none' });
    // Act
    const lines = renderStatus(s, diagnose(s));
    // Assess
    expect(lines).toContain(`AWSCURRENT   ${CUR_VERSION}  aaaa`);
    expect(lines).toContain(`AWSPENDING   ${PEND_VERSION}  (no value)`);
    expect(lines.some((l) => /^Stytch\s+next secret\s+nnnn$/.test(l))).toBe(true);
    expect(lines).toContain('Verdict: orphan-next-secret, pending-without-value (exit 1)');
    expect(lines.filter((l) => l.startsWith('    fix: npm run cli -- recover --secret-id demo/stytch-client --yes'))).toHaveLength(2);
    expect(lines.find((l) => l.startsWith('Rotation'))).toBe(
      'Rotation  enabled, rate(30 days), arn:aws:lambda:us-east-1:123456789012:function:rotate-stytch-secret, last 2026-01-01T00:00:00Z, next 2026-01-31T00:00:00Z',
    );
  });

  it('says when AWSPENDING was left on the AWSCURRENT version, and when rotation is not configured', () => {
    const s = { ...snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: null, pendingOnCurrent: true }), rotation: { enabled: false, lambdaArn: undefined, schedule: undefined, lastRotatedDate: undefined, nextRotationDate: undefined } };
    const lines = renderStatus(s, diagnose(s));
    expect(lines.some((l) => /^AWSPENDING\s+\(on the AWSCURRENT version: finished\)/.test(l))).toBe(true);
    expect(lines).toContain('Rotation  not configured');
    expect(lines).toContain('Verdict: consistent (exit 0)');
  });
});

describe('Function: renderStatus, the state table', () => {
  it('shows the binding, a held lease (who, what, until) and the overlap window', () => {
    // Prepare
    const s = snapshotOf({
      cur: 'bbbb',
      S4: 'aaaa',
      N4: 'bbbb',
      table: { windowDueInMs: 3_600_000, lease: { holder: 'req-1/abc', what: 'createSecret of version x', untilInMs: 60_000 } },
    });
    // Act
    const lines = renderStatus(s, diagnose(s));
    // Assess
    expect(lines).toContain(`Binding   client connected-app-test-0001, project ${PROJECT_ID}, the function's default credentials, bound since 2025-12-01T00:00:00Z`);
    expect(lines).toContain('Lease     held by req-1/abc (createSecret of version x) until 2026-01-15T12:01:00Z');
    expect(lines).toContain(`Window    previous secret …aaaa (version ${PREV_VERSION}) accepted until 2026-01-15T13:00:00Z; it was replaced by version ${CUR_VERSION} (…bbbb)`);
    expect(lines).toContain('Verdict: overlap-window (exit 0)');
  });

  it('says when the secret is not bound yet, and a lease whose holder died', () => {
    const s = snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: null, table: { binding: 'unbound', lease: { holder: 'req-2/def', what: 'finishSecret', untilInMs: -1_000 } } });
    const lines = renderStatus(s, diagnose(s));
    expect(lines).toContain(`Binding   not bound yet (the next rotation binds it to client connected-app-test-0001 of project ${PROJECT_ID})`);
    expect(lines.find((l) => l.startsWith('Lease'))).toContain('free (the last holder, req-2/def, finishSecret, ended without giving it back');
    expect(lines).toContain('Window    none (no previous secret waiting to be retired)');
  });

  it('says the binding, lease and window are unknown without a state table, and how to name one', () => {
    const s = snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: null, table: 'unknown' });
    const lines = renderStatus(s, diagnose(s));
    expect(lines.find((l) => l.startsWith('Binding'))).toMatch(/^Binding\s+unknown: no state table is named\. .*--state-table NAME or ROTATION_STATE_TABLE/);
    expect(lines).toContain('Window    unknown');
    expect(lines).toContain('Verdict: consistent (exit 0)');
  });

  it('marks a pending copy of AWSCURRENT in the versions table', () => {
    const s = snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: { copyOfCurrent: true } });
    expect(renderStatus(s, diagnose(s))).toContain(`AWSPENDING   ${PEND_VERSION}  aaaa (a copy of AWSCURRENT)`);
  });
});

describe('Function: statusJson', () => {
  it('includes everything the state table says: binding, lease, window, and when it was read', () => {
    const s = snapshotOf({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', table: { windowDueInMs: 60_000, lease: { holder: 'h', what: 'w', untilInMs: 5_000 } } });
    const json = statusJson(s, diagnose(s));
    expect(json).toMatchObject({
      verdict: 'overlap-window',
      exitCode: 0,
      readAt: '2026-01-15T12:00:00Z',
      state: {
        table: STATE_TABLE,
        known: true,
        binding: { clientId: 'connected-app-test-0001', projectId: PROJECT_ID, credentialsSecretId: null, boundAt: '2025-12-01T00:00:00.000Z' },
        lease: { holder: 'h', what: 'w', until: '2026-01-15T12:00:05Z', held: true },
        retirement: { dueAt: '2026-01-15T12:01:00Z', versionId: CUR_VERSION, last4: 'bbbb', previousVersionId: PREV_VERSION, previousLast4: 'aaaa' },
      },
    });
    const unknown = statusJson(snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: null, table: 'unknown' }), []);
    expect(unknown.state).toEqual({ table: null, known: false, reason: expect.stringContaining('--state-table') });
  });

  it('gives scripts the worst verdict, every verdict with its fix, and the exit code', () => {
    const s = snapshotOf({ cur: 'aaaa', S4: 'xxxx', N4: null, pending: 'dddd' });
    const json = statusJson(s, diagnose(s));
    expect(json).toMatchObject({
      verdict: 'drift',
      exitCode: 2,
      versions: { AWSCURRENT: { versionId: CUR_VERSION, last4: 'aaaa', value: 'present' }, AWSPENDING: { versionId: PEND_VERSION, last4: 'dddd' } },
      stytch: { currentLast4: 'xxxx', nextLast4: null },
    });
    expect(json.verdicts.map((v) => v.code)).toEqual(['drift', 'dead-pending']);
    expect(json.verdicts[0]!.fix.command).toBe('aws secretsmanager rotate-secret --secret-id demo/stytch-client');
  });
});
