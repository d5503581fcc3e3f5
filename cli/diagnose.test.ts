import { describe, expect, it } from 'vitest';
import { commands, diagnose, exitCodeOf, shellQuote, SWEEP_LATE_MS, VERDICT_ORDER, type CommandStyle, type Verdict } from './diagnose.js';
import { CUR_VERSION, OTHER_SECRET_ARN, PEND_VERSION, snapshotOf, type StateSpec, type TableSpec } from './test-snapshots.js';

/**
 * diagnose over plain data: every verdict of DESIGN.md §4 alone, the
 * combinations a crash or an outside action can produce, what the state table
 * adds (binding, overlap window), and, exhaustively over a small alphabet of
 * last fours, the rules that hold for every state.
 */

const codes = (spec: StateSpec) => diagnose(snapshotOf(spec)).map((v) => v.code);
const verdict = (spec: StateSpec, code: string): Verdict => {
  const found = diagnose(snapshotOf(spec)).find((v) => v.code === code);
  if (!found) throw new Error(`no ${code} verdict`);
  return found;
};
const cmd = commands('demo/stytch-client');

describe('Function: diagnose', () => {
  describe('each state alone', () => {
    it('reports consistent when AWSCURRENT is Stytch current secret, with no next secret and nothing pending (exit 0)', () => {
      // Prepare
      const spec = { cur: 'aaaa', S4: 'aaaa', N4: null };
      // Act
      const verdicts = diagnose(snapshotOf(spec));
      // Assess
      expect(verdicts.map((v) => v.code)).toEqual(['consistent']);
      expect(exitCodeOf(verdicts)).toBe(0);
      expect(verdicts[0]!.fix.command).toBeUndefined();
    });

    it('ignores AWSPENDING left on the AWSCURRENT version by a finished rotation', () => {
      expect(codes({ cur: 'aaaa', S4: 'aaaa', N4: null, pendingOnCurrent: true })).toEqual(['consistent']);
    });

    it('reports rotation-in-progress when AWSPENDING holds Stytch next secret, and says nothing needs doing while rotation is enabled', () => {
      const v = verdict({ cur: 'aaaa', S4: 'aaaa', N4: 'bbbb', pending: 'bbbb' }, 'rotation-in-progress');
      expect(codes({ cur: 'aaaa', S4: 'aaaa', N4: 'bbbb', pending: 'bbbb' })).toEqual(['rotation-in-progress']);
      expect(v.exitCode).toBe(1);
      expect(v.fix).toMatchObject({ command: undefined, byRecover: false });
      expect(v.fix.explanation).toContain("Secrets Manager tries it again only inside the secret's rotation windows");
      // It promises no reattempt sooner than Secrets Manager makes one.
      expect(v.fix.explanation).not.toMatch(/next rotation window|reattempts it/);
      expect(v.fix.explanation).toContain(cmd.cancelRotation);
    });

    it('names recover --cancel-rotation as the fix of a rotation in progress when rotation is disabled (nothing would reattempt it)', () => {
      const v = verdict({ cur: 'aaaa', S4: 'aaaa', N4: 'bbbb', pending: 'bbbb', rotationEnabled: false }, 'rotation-in-progress');
      expect(v.fix.command).toBe('npm run cli -- recover --secret-id demo/stytch-client --cancel-rotation --yes');
      expect(v.fix.explanation).toContain('Rotation is disabled');
    });

    it('reports half-done when AWSCURRENT is Stytch next secret, fixed by recover (Stytch rotate)', () => {
      const v = verdict({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb' }, 'half-done');
      expect(codes({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb' })).toEqual(['half-done']);
      expect(v.exitCode).toBe(1);
      expect(v.fix).toMatchObject({ command: cmd.recover, byRecover: true });
      expect(v.summary).toContain('…aaaa');
    });

    it('reports orphan-next-secret when Stytch has a next secret nobody holds, fixed by recover (rotate/cancel)', () => {
      const v = verdict({ cur: 'aaaa', S4: 'aaaa', N4: 'zzzz' }, 'orphan-next-secret');
      expect(codes({ cur: 'aaaa', S4: 'aaaa', N4: 'zzzz' })).toEqual(['orphan-next-secret']);
      expect(v.fix).toMatchObject({ command: cmd.recover, byRecover: true });
      expect(v.fix.explanation).toContain('rotate/cancel');
    });

    it('reports dead-pending when AWSPENDING holds a secret Stytch no longer has, naming the label removal', () => {
      const v = verdict({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: 'dddd' }, 'dead-pending');
      expect(codes({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: 'dddd' })).toEqual(['dead-pending']);
      expect(v.fix).toMatchObject({ command: cmd.recover, byRecover: true });
      expect(v.fix.explanation).toContain(
        `aws secretsmanager update-secret-version-stage --secret-id demo/stytch-client --version-stage AWSPENDING --remove-from-version-id ${PEND_VERSION}`,
      );
    });

    it('reports dead-pending when AWSPENDING is not a valid rotated secret, or names another client', () => {
      expect(verdict({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: { invalid: 'not JSON' } }, 'dead-pending').summary).toContain('not JSON');
      expect(verdict({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: { otherClient: 'aaaa' } }, 'dead-pending').summary).toContain('connected-app-test-other');
    });

    it('reports pending-without-value for an AWSPENDING placeholder, with the caveat about a rotation running right now', () => {
      const v = verdict({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: 'none' }, 'pending-without-value');
      expect(codes({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: 'none' })).toEqual(['pending-without-value']);
      expect(v.fix).toMatchObject({ command: cmd.recover, byRecover: true });
      expect(v.fix.explanation).toContain('re-check in a minute');
    });

    it('reports drift (exit 2) when Stytch accepts neither AWSCURRENT as current nor as next, and explains that recover cannot fix it', () => {
      const verdicts = diagnose(snapshotOf({ cur: 'aaaa', S4: 'xxxx', N4: null }));
      expect(verdicts.map((v) => v.code)).toEqual(['drift']);
      expect(exitCodeOf(verdicts)).toBe(2);
      const { fix } = verdicts[0]!;
      expect(fix).toMatchObject({ command: cmd.rotateSecret, byRecover: false });
      expect(fix.explanation).toContain('recover cannot repair this');
      expect(fix.explanation).toContain('put-secret-value');
      expect(fix.explanation).toContain('It retires …xxxx');
      expect(fix.explanation).toContain(cmd.rotateSecret);
      expect(fix.explanation).not.toContain('command above');
    });
  });

  describe('what the state table adds', () => {
    const HOUR = 3_600_000;
    const half = { cur: 'bbbb', S4: 'aaaa', N4: 'bbbb' };

    it('reports the overlap window as healthy (exit 0) with the time until which the previous secret is accepted, naming retire to end it early', () => {
      // Prepare
      const spec: StateSpec = { ...half, table: { windowDueInMs: HOUR } };
      // Act
      const verdicts = diagnose(snapshotOf(spec));
      // Assess
      expect(verdicts.map((v) => v.code)).toEqual(['overlap-window']);
      expect(exitCodeOf(verdicts)).toBe(0);
      expect(verdicts[0]!.summary).toContain('Previous secret accepted until 2026-01-15T13:00:00Z');
      expect(verdicts[0]!.summary).toContain('…aaaa');
      expect(verdicts[0]!.fix).toMatchObject({ command: undefined, byRecover: false });
      expect(verdicts[0]!.fix.explanation).toContain(cmd.retire);
    });

    it('still reports the overlap window (exit 0) just after it ended, until one sweep interval has passed', () => {
      const v = verdict({ ...half, table: { windowDueInMs: -(SWEEP_LATE_MS - 1_000) } }, 'overlap-window');
      expect(v.exitCode).toBe(0);
      expect(v.summary).toContain('The overlap window ended at');
      expect(v.summary).toContain('retirement sweep retires the previous secret (…aaaa) at its next run');
    });

    it('reports retirement-overdue (exit 1) once the window ended more than a sweep interval ago, naming retire as the fix', () => {
      const spec: StateSpec = { ...half, table: { windowDueInMs: -(SWEEP_LATE_MS + 1_000) } };
      const v = verdict(spec, 'retirement-overdue');
      expect(codes(spec)).toEqual(['retirement-overdue']);
      expect(v.exitCode).toBe(1);
      expect(v.summary).toContain('the retirement sweep is late or failing');
      expect(v.fix).toMatchObject({ command: cmd.retire, byRecover: false });
    });

    it('keeps half-done when no retirement is recorded, or the record is for another version or another previous secret', () => {
      expect(codes(half)).toEqual(['half-done']);
      const s = snapshotOf({ ...half, table: { windowDueInMs: HOUR } });
      const otherVersion = { ...s, current: { ...s.current, versionId: PEND_VERSION } };
      const otherPrevious = { ...s, stytch: { ...s.stytch, secretLast4: 'xxxx' } };
      expect(diagnose(otherVersion).map((v) => v.code)).toEqual(['half-done']);
      expect(diagnose(otherPrevious).map((v) => v.code)).toContain('half-done');
    });

    it('says, without a state table, that half-done may be an overlap window and how to name the table', () => {
      const v = verdict({ ...half, table: 'unknown' }, 'half-done');
      expect(v.fix.explanation).toContain('may instead be the overlap window');
      expect(v.fix.explanation).toContain('--state-table');
    });

    it.each<[string, TableSpec, string]>([
      ['another client', { binding: { otherClient: 'connected-app-test-9999' } }, 'bound to client connected-app-test-9999 of project project-test-0001'],
      ['another project', { binding: { otherProject: 'project-test-9999' } }, 'of project project-test-9999'],
      ['other credentials', { binding: { otherCredentials: 'stytch/other-creds' } }, 'through credentials secret stytch/other-creds'],
      ['a client bound to another secret', { binding: 'client-bound-elsewhere' }, `which is bound to another secret (${OTHER_SECRET_ARN})`],
    ])('reports a binding mismatch when the value names %s: rotations are refused; fix: restore the value or bind', (_name, table, words) => {
      // Prepare
      const spec: StateSpec = { cur: 'aaaa', S4: 'aaaa', N4: null, table };
      // Act
      const v = verdict(spec, 'binding-mismatch');
      // Assess
      expect(codes(spec)).toEqual(['binding-mismatch']);
      expect(v.exitCode).toBe(1);
      expect(v.summary).toContain(words);
      expect(v.summary).toContain('refuses to rotate this secret');
      expect(v.fix).toMatchObject({ command: cmd.bind, byRecover: false });
      expect(v.fix.explanation).toContain(cmd.putValue);
      expect(v.fix.explanation).toContain(cmd.bindApply);
    });

    it('sees no mismatch in a secret not bound yet', () => {
      expect(codes({ cur: 'aaaa', S4: 'aaaa', N4: null, table: { binding: 'unbound' } })).toEqual(['consistent']);
    });

    it('reports a pending copy of AWSCURRENT as dead-pending (the function refuses it), never as a rotation in progress', () => {
      const spec: StateSpec = { cur: 'aaaa', S4: 'aaaa', N4: null, pending: { copyOfCurrent: true } };
      const v = verdict(spec, 'dead-pending');
      expect(codes(spec)).toEqual(['dead-pending']);
      expect(v.summary).toContain('is a copy of AWSCURRENT (the same client_secret, …aaaa), not a new secret: the function refuses it');
      expect(v.fix).toMatchObject({ command: cmd.recover, byRecover: true });
      expect(v.fix.explanation).toContain(cmd.removePending(PEND_VERSION));
    });
  });

  describe('combinations', () => {
    it.each<[string, StateSpec, string[]]>([
      ['a crash between rotate/start and PutSecretValue', { cur: 'aaaa', S4: 'aaaa', N4: 'nnnn', pending: 'none' }, ['orphan-next-secret', 'pending-without-value']],
      ['a cancelled rotation, then one started by hand', { cur: 'aaaa', S4: 'aaaa', N4: 'nnnn', pending: 'dddd' }, ['orphan-next-secret', 'dead-pending']],
      ['a half-done rotation and a new rotation stuck before createSecret', { cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', pending: 'none' }, ['half-done', 'pending-without-value']],
      ['a half-done rotation and a dead pending version', { cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', pending: 'dddd' }, ['half-done', 'dead-pending']],
      ['drift and an orphan', { cur: 'aaaa', S4: 'xxxx', N4: 'nnnn' }, ['drift', 'orphan-next-secret']],
      ['drift and a dead pending version', { cur: 'aaaa', S4: 'xxxx', N4: null, pending: 'dddd' }, ['drift', 'dead-pending']],
      ['drift and a placeholder', { cur: 'aaaa', S4: 'xxxx', N4: null, pending: 'none' }, ['drift', 'pending-without-value']],
      ['drift while the pending version is Stytch next', { cur: 'aaaa', S4: 'xxxx', N4: 'pppp', pending: 'pppp' }, ['drift', 'rotation-in-progress']],
      ['drift because Stytch completed before AWSCURRENT moved', { cur: 'aaaa', S4: 'pppp', N4: null, pending: 'pppp' }, ['drift', 'rotation-in-progress']],
    ])('reports %s, worst first', (_name, spec, expected) => {
      expect(codes(spec)).toEqual(expected);
    });

    it('does not let recover cancel an orphan while AWSCURRENT is not Stytch current secret', () => {
      const v = verdict({ cur: 'aaaa', S4: 'xxxx', N4: 'nnnn' }, 'orphan-next-secret');
      expect(v.fix.byRecover).toBe(false);
    });

    it('warns that an orphan next to a placeholder may be a createSecret running right now', () => {
      expect(verdict({ cur: 'aaaa', S4: 'aaaa', N4: 'nnnn', pending: 'none' }, 'orphan-next-secret').fix.explanation).toContain('re-check in a minute');
    });

    it('lets recover end a drift when AWSPENDING holds a secret Stytch accepts (current or next)', () => {
      const asCurrent = verdict({ cur: 'aaaa', S4: 'pppp', N4: null, pending: 'pppp' }, 'drift');
      const asNext = verdict({ cur: 'aaaa', S4: 'xxxx', N4: 'pppp', pending: 'pppp' }, 'drift');
      expect(asCurrent.fix).toMatchObject({ command: cmd.recover, byRecover: true });
      expect(asNext.fix.explanation).toContain('completes the rotation at Stytch');
      expect(asCurrent.fix.explanation).not.toContain('completes the rotation at Stytch');
    });

    it('tells a drifting secret with AWSPENDING to clear it before rotate-secret', () => {
      expect(verdict({ cur: 'aaaa', S4: 'xxxx', N4: null, pending: 'dddd' }, 'drift').fix.explanation).toContain('Remove it first: aws secretsmanager update-secret-version-stage');
    });
  });

  describe('rules for every state (exhaustive over four last fours)', () => {
    const fours = ['aaaa', 'bbbb', 'cccc', 'dddd'];
    const tables: TableSpec[] = ['unknown', {}, { windowDueInMs: 3_600_000 }, { windowDueInMs: -3_600_000 }];
    const states: StateSpec[] = [];
    for (const cur of fours)
      for (const S4 of fours)
        for (const N4 of [null, ...fours])
          for (const pending of [undefined, 'none', { invalid: 'not JSON' }, { copyOfCurrent: true as const }, ...fours])
            for (const rotationEnabled of [true, false])
              for (const table of tables) states.push({ cur, S4, N4, pending, rotationEnabled, table });

    it('reports at least one verdict, sorted worst first, consistent only alone', () => {
      for (const spec of states) {
        const list = codes(spec);
        expect(list.length).toBeGreaterThan(0);
        expect([...list].sort((a, b) => VERDICT_ORDER.indexOf(a as never) - VERDICT_ORDER.indexOf(b as never))).toEqual(list);
        expect(new Set(list).size).toBe(list.length);
        if (list.includes('consistent')) expect(list).toEqual(['consistent']);
      }
    });

    it('is consistent exactly when AWSCURRENT is Stytch current secret with no next secret and nothing pending', () => {
      for (const spec of states) {
        const expected = spec.cur === spec.S4 && spec.N4 === null && spec.pending === undefined;
        expect(codes(spec).includes('consistent'), JSON.stringify(spec)).toBe(expected);
      }
    });

    it('exits 2 exactly when Stytch accepts AWSCURRENT neither as current nor as next, 0 when consistent or in an overlap window alone, 1 for any other problem', () => {
      for (const spec of states) {
        const code = exitCodeOf(diagnose(snapshotOf(spec)));
        const drift = spec.cur !== spec.S4 && spec.cur !== spec.N4;
        const healthy = codes(spec).every((c) => c === 'consistent' || c === 'overlap-window');
        expect(code, JSON.stringify(spec)).toBe(drift ? 2 : healthy ? 0 : 1);
      }
    });

    it('calls Stytch next secret = AWSCURRENT exactly one of half-done, overlap-window or retirement-overdue, the latter two only with a recorded window', () => {
      for (const spec of states) {
        const list = codes(spec).filter((c) => c === 'half-done' || c === 'overlap-window' || c === 'retirement-overdue');
        const nextIsCurrent = spec.N4 !== null && spec.N4 === spec.cur;
        expect(list.length, JSON.stringify(spec)).toBe(nextIsCurrent ? 1 : 0);
        const recorded = typeof spec.table === 'object' && spec.table.windowDueInMs !== undefined;
        if (!recorded) expect(list.filter((c) => c !== 'half-done'), JSON.stringify(spec)).toEqual([]);
      }
    });

    it('never reports a pending copy of AWSCURRENT as anything but dead-pending', () => {
      for (const spec of states.filter((s) => typeof s.pending === 'object' && 'copyOfCurrent' in s.pending)) {
        const list = codes(spec);
        expect(list, JSON.stringify(spec)).toContain('dead-pending');
        expect(list, JSON.stringify(spec)).not.toContain('rotation-in-progress');
      }
    });

    it('names a command or says nothing is needed for every verdict', () => {
      for (const spec of states) {
        for (const v of diagnose(snapshotOf(spec))) {
          if (v.fix.byRecover) expect(v.fix.command).toBe(cmd.recover);
          expect(v.fix.explanation.length).toBeGreaterThan(10);
        }
      }
    });
  });
});

describe('Function: commands', () => {
  it('repeats the flags the operator used, quoted for a POSIX shell', () => {
    // Prepare
    const style: CommandStyle = {
      cli: 'stytch-secret-rotation',
      awsFlags: ['--endpoint-url', 'http://127.0.0.1:4566', '--profile', shellQuote('ops team')],
      cliFlags: ['--credentials-secret-id', 'stytch/creds'],
    };
    // Act
    const c = commands("weird!name's", style);
    // Assess
    expect(c.recover).toBe(
      `stytch-secret-rotation recover --secret-id 'weird!name'\\''s' --credentials-secret-id stytch/creds --endpoint-url http://127.0.0.1:4566 --profile 'ops team' --yes`,
    );
    expect(c.removePending(CUR_VERSION)).toBe(
      `aws secretsmanager update-secret-version-stage --secret-id 'weird!name'\\''s' --version-stage AWSPENDING --remove-from-version-id ${CUR_VERSION} --endpoint-url http://127.0.0.1:4566 --profile 'ops team'`,
    );
  });
});
