import { describe, expect, it } from 'vitest';
import { diagnose } from './diagnose.js';
import { renderStatus, statusJson, table } from './render.js';
import { CUR_VERSION, PEND_VERSION, snapshotOf } from './test-snapshots.js';

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

describe('Function: statusJson', () => {
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
