import { describe, expect, it } from 'vitest';
import { commands, diagnose } from './diagnose.js';
import { describeAction, planRecovery, planRetirement, type Action } from './plan.js';
import type { Snapshot } from './snapshot.js';
import { CUR_VERSION, PEND_VERSION, READ_AT, snapshotOf, type StateSpec, type TableSpec } from './test-snapshots.js';

/**
 * planRecovery over plain data: the action each verdict gets, and, over every
 * state of a small alphabet, a model of what the actions do to Secrets
 * Manager's labels and Stytch's secrets, checking invariant I after each one.
 */

const plan = (spec: StateSpec, cancelRotation = false) => {
  const s = snapshotOf(spec);
  return planRecovery(s, diagnose(s), { cancelRotation });
};

describe('Function: planRecovery, whole plans exactly', () => {
  const explanation = (spec: StateSpec, code: string) => diagnose(snapshotOf(spec)).find((v) => v.code === code)!.fix.explanation;
  const promote = { kind: 'promote-pending', versionId: PEND_VERSION, fromVersionId: CUR_VERSION, last4: 'pppp' } as const;
  const removePending = { kind: 'remove-pending', versionId: PEND_VERSION } as const;

  it('a rotation in progress: left alone with its explanation, whatever the verdict says', () => {
    const spec: StateSpec = { cur: 'aaaa', S4: 'aaaa', N4: 'pppp', pending: 'pppp' };
    expect(plan(spec)).toEqual({ actions: [], notes: [`rotation-in-progress: left alone. ${explanation(spec, 'rotation-in-progress')}`] });
  });

  it('a drift whose pending secret Stytch holds as current: promoted, never cancelled, even with --cancel-rotation', () => {
    expect(plan({ cur: 'aaaa', S4: 'pppp', N4: null, pending: 'pppp' }, true)).toEqual({ actions: [promote, removePending], notes: [] });
  });

  it('a drift whose pending secret is Stytch\'s next: promoted, then completed at Stytch (retiring the unknown current one)', () => {
    expect(plan({ cur: 'aaaa', S4: 'xxxx', N4: 'pppp', pending: 'pppp' }, true)).toEqual({
      actions: [promote, { kind: 'complete-at-stytch', nextLast4: 'pppp', retiredLast4: 'xxxx' }, removePending],
      notes: [],
    });
  });

  it('a drift with an orphan: both left alone, each with its explanation', () => {
    const spec: StateSpec = { cur: 'aaaa', S4: 'xxxx', N4: 'nnnn' };
    expect(plan(spec)).toEqual({
      actions: [],
      notes: [`drift: nothing recover can do safely. ${explanation(spec, 'drift')}`, `orphan-next-secret: left alone. ${explanation(spec, 'orphan-next-secret')}`],
    });
  });

  it('a drift ended by promoting Stytch\'s current secret makes the orphan cancellable: promote, cancel, remove', () => {
    expect(plan({ cur: 'aaaa', S4: 'pppp', N4: 'nnnn', pending: 'pppp' })).toEqual({
      actions: [promote, { kind: 'cancel-at-stytch', nextLast4: 'nnnn', currentLast4: 'pppp' }, removePending],
      notes: [],
    });
  });

  it('a half-done rotation whose pending version holds the secret it retires: complete, then remove that label', () => {
    const spec: StateSpec = { cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', pending: 'aaaa' };
    expect(plan(spec)).toEqual({
      actions: [{ kind: 'complete-at-stytch', nextLast4: 'bbbb', retiredLast4: 'aaaa' }, removePending],
      notes: [`rotation-in-progress: left alone. ${explanation(spec, 'rotation-in-progress')}`],
    });
  });

  it('an overdue window: a note naming retire, no action', () => {
    const spec: StateSpec = { cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', table: { windowDueInMs: -60_000 } };
    const verdicts = diagnose(snapshotOf(spec)).map((v) => v.code);
    const expected = verdicts.includes('retirement-overdue') ? [`retirement-overdue: left to retire (${commands('demo/stytch-client').retire}), which retires the previous secret under the same checks as the sweep.`] : [];
    expect(plan(spec)).toEqual({ actions: [], notes: expected });
  });

  it('a binding mismatch: the note says recover --yes refuses, with the explanation', () => {
    const spec: StateSpec = { cur: 'aaaa', S4: 'aaaa', N4: null, table: { binding: { otherClient: 'connected-app-test-9' } } };
    expect(plan(spec)).toEqual({ actions: [], notes: [`binding-mismatch: recover --yes refuses to change anything until it is resolved. ${explanation(spec, 'binding-mismatch')}`] });
  });

  it('plans each action once, even when two verdicts call for it', () => {
    const s = snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: 'dddd' });
    const verdicts = diagnose(s);
    const twice = planRecovery(s, [...verdicts, ...verdicts]);
    expect(twice.actions).toEqual([removePending]);
  });

  it('plans nothing, with the default options, for no verdicts', () => {
    expect(planRecovery(snapshotOf({ cur: 'aaaa', S4: 'aaaa', N4: 'pppp', pending: 'pppp' }), [])).toEqual({ actions: [], notes: [] });
  });
});

describe('Function: planRetirement, its reasons exactly', () => {
  it.each([
    [{ cur: 'aaaa', S4: 'xxxx', N4: 'nnnn' }, { kind: 'refuse', why: 'AWSCURRENT (…aaaa) is not a secret Stytch accepts (Stytch holds …xxxx, next …nnnn): completing anything at Stytch could not make it work, so retire changes nothing.' }],
    [{ cur: 'aaaa', S4: 'xxxx', N4: null }, { kind: 'refuse', why: 'AWSCURRENT (…aaaa) is not a secret Stytch accepts (Stytch holds …xxxx): completing anything at Stytch could not make it work, so retire changes nothing.' }],
    [{ cur: 'aaaa', S4: 'aaaa', N4: 'nnnn' }, { kind: 'nothing', why: "Stytch's current secret is AWSCURRENT's (…aaaa) and its next secret (…nnnn) is not AWSCURRENT's, so retire leaves it alone: no previous secret is accepted any more." }],
    [{ cur: 'aaaa', S4: 'aaaa', N4: null }, { kind: 'nothing', why: "Stytch's current secret is AWSCURRENT's (…aaaa) and it has no next secret: no previous secret is accepted any more." }],
  ] as Array<[StateSpec, unknown]>)('%j: %j', (spec, expected) => {
    expect(planRetirement(snapshotOf(spec))).toEqual(expected);
  });
});

describe('Function: planRecovery', () => {
  it('plans nothing for a consistent secret', () => {
    expect(plan({ cur: 'aaaa', S4: 'aaaa', N4: null })).toEqual({ actions: [], notes: [] });
  });

  it('completes a half-done rotation at Stytch', () => {
    expect(plan({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb' }).actions).toEqual([{ kind: 'complete-at-stytch', nextLast4: 'bbbb', retiredLast4: 'aaaa' }]);
  });

  it('also clears the AWSPENDING a failed finishSecret left on the AWSCURRENT version of a half-done rotation', () => {
    expect(plan({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', pendingOnCurrent: true }).actions).toEqual([
      { kind: 'complete-at-stytch', nextLast4: 'bbbb', retiredLast4: 'aaaa' },
      { kind: 'remove-pending', versionId: CUR_VERSION },
    ]);
  });

  it('cancels an orphan at Stytch while AWSCURRENT is Stytch current secret', () => {
    expect(plan({ cur: 'aaaa', S4: 'aaaa', N4: 'nnnn' }).actions).toEqual([{ kind: 'cancel-at-stytch', nextLast4: 'nnnn', currentLast4: 'aaaa' }]);
  });

  it('removes AWSPENDING from a dead pending version and from a placeholder', () => {
    expect(plan({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: 'dddd' }).actions).toEqual([{ kind: 'remove-pending', versionId: PEND_VERSION }]);
    expect(plan({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: 'none' }).actions).toEqual([{ kind: 'remove-pending', versionId: PEND_VERSION }]);
  });

  it('leaves a rotation in progress alone unless asked to cancel it, and then cancels at Stytch before removing the label', () => {
    // Prepare
    const spec: StateSpec = { cur: 'aaaa', S4: 'aaaa', N4: 'pppp', pending: 'pppp' };
    // Act
    const byDefault = plan(spec);
    const cancelled = plan(spec, true);
    // Assess
    expect(byDefault.actions).toEqual([]);
    expect(byDefault.notes.join(' ')).toContain('rotation-in-progress: left alone');
    expect(cancelled.actions).toEqual([
      { kind: 'cancel-at-stytch', nextLast4: 'pppp', currentLast4: 'aaaa' },
      { kind: 'remove-pending', versionId: PEND_VERSION },
    ]);
  });

  it('changes nothing for a drift with nothing Stytch accepts, and explains why', () => {
    const result = plan({ cur: 'aaaa', S4: 'xxxx', N4: null });
    expect(result.actions).toEqual([]);
    expect(result.notes.join(' ')).toContain('drift: nothing recover can do safely');
  });

  it('does not cancel an orphan during a drift', () => {
    const result = plan({ cur: 'aaaa', S4: 'xxxx', N4: 'nnnn' });
    expect(result.actions).toEqual([]);
    expect(result.notes.join(' ')).toContain('orphan-next-secret: left alone');
  });

  it('ends a drift by moving AWSCURRENT to a pending secret Stytch accepts, completing at Stytch when it is the next one', () => {
    expect(plan({ cur: 'aaaa', S4: 'pppp', N4: null, pending: 'pppp' }).actions).toEqual([
      { kind: 'promote-pending', versionId: PEND_VERSION, fromVersionId: CUR_VERSION, last4: 'pppp' },
      { kind: 'remove-pending', versionId: PEND_VERSION },
    ]);
    expect(plan({ cur: 'aaaa', S4: 'xxxx', N4: 'pppp', pending: 'pppp' }).actions).toEqual([
      { kind: 'promote-pending', versionId: PEND_VERSION, fromVersionId: CUR_VERSION, last4: 'pppp' },
      { kind: 'complete-at-stytch', nextLast4: 'pppp', retiredLast4: 'xxxx' },
      { kind: 'remove-pending', versionId: PEND_VERSION },
    ]);
  });

  it('cancels an orphan during a drift once the promotion made AWSCURRENT Stytch current secret', () => {
    expect(plan({ cur: 'aaaa', S4: 'pppp', N4: 'nnnn', pending: 'pppp' }).actions).toEqual([
      { kind: 'promote-pending', versionId: PEND_VERSION, fromVersionId: CUR_VERSION, last4: 'pppp' },
      { kind: 'cancel-at-stytch', nextLast4: 'nnnn', currentLast4: 'pppp' },
      { kind: 'remove-pending', versionId: PEND_VERSION },
    ]);
  });

  it('also removes AWSPENDING when completing at Stytch retires the secret it holds', () => {
    expect(plan({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', pending: 'aaaa' }).actions).toEqual([
      { kind: 'complete-at-stytch', nextLast4: 'bbbb', retiredLast4: 'aaaa' },
      { kind: 'remove-pending', versionId: PEND_VERSION },
    ]);
  });

  it('orders Stytch changes before label removals when several verdicts apply', () => {
    expect(plan({ cur: 'aaaa', S4: 'aaaa', N4: 'nnnn', pending: 'none' }).actions.map((a) => a.kind)).toEqual(['cancel-at-stytch', 'remove-pending']);
    expect(plan({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', pending: 'dddd' }).actions.map((a) => a.kind)).toEqual(['complete-at-stytch', 'remove-pending']);
  });

  it('leaves an overlap window alone: it is healthy, and retiring early is retire\'s decision', () => {
    expect(plan({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', table: { windowDueInMs: 3_600_000 } })).toEqual({ actions: [], notes: [] });
  });

  it('leaves an overdue retirement to retire, and says so', () => {
    const result = plan({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', table: { windowDueInMs: -3_600_000 } });
    expect(result.actions).toEqual([]);
    expect(result.notes.join(' ')).toContain(`retirement-overdue: left to retire (${commands('demo/stytch-client').retire})`);
  });

  it('still completes a half-done rotation when no state table is named (recover --yes then refuses until one is)', () => {
    expect(plan({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', table: 'unknown' }).actions).toEqual([{ kind: 'complete-at-stytch', nextLast4: 'bbbb', retiredLast4: 'aaaa' }]);
  });

  it('notes that recover --yes refuses while the binding disagrees with the value', () => {
    const result = plan({ cur: 'aaaa', S4: 'aaaa', N4: 'nnnn', table: { binding: { otherClient: 'connected-app-test-9999' } } });
    expect(result.notes.join(' ')).toContain('binding-mismatch: recover --yes refuses to change anything until it is resolved');
  });

  it('removes AWSPENDING from a pending copy of AWSCURRENT, never promotes it', () => {
    expect(plan({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: { copyOfCurrent: true } }).actions).toEqual([{ kind: 'remove-pending', versionId: PEND_VERSION }]);
  });

  it('describes every action with last fours and version ids only', () => {
    const actions: Action[] = [
      { kind: 'promote-pending', versionId: PEND_VERSION, fromVersionId: CUR_VERSION, last4: 'pppp' },
      { kind: 'complete-at-stytch', nextLast4: 'bbbb', retiredLast4: 'aaaa' },
      { kind: 'cancel-at-stytch', nextLast4: 'nnnn', currentLast4: 'aaaa' },
      { kind: 'remove-pending', versionId: PEND_VERSION },
    ];
    expect(actions.map(describeAction)).toEqual([
      `Move AWSCURRENT from version ${CUR_VERSION} to version ${PEND_VERSION} (…pppp), which Stytch accepts`,
      'Complete the rotation at Stytch (rotate): …bbbb becomes its only secret, …aaaa stops working',
      "Cancel Stytch's next secret …nnnn (rotate/cancel); AWSCURRENT …aaaa keeps working",
      `Remove AWSPENDING from version ${PEND_VERSION}`,
    ]);
  });

  describe('a model of the actions over every state (exhaustive over four last fours)', () => {
    interface Model {
      cur: string;
      curVersion: string;
      pending: StateSpec['pending'];
      pendingOnCurrent: boolean;
      S4: string | null;
      N4: string | null;
    }
    const accepted = (m: Model) => m.cur === m.S4 || m.cur === m.N4;

    /** What each action does, behind the same checks recover makes on a fresh read. */
    function applyAction(m: Model, a: Action): 'done' | 'stopped' {
      switch (a.kind) {
        case 'promote-pending':
          if (typeof m.pending !== 'string' || m.pending === 'none' || (m.pending !== m.S4 && m.pending !== m.N4)) return 'stopped';
          Object.assign(m, { cur: m.pending, curVersion: PEND_VERSION, pending: undefined, pendingOnCurrent: true });
          return 'done';
        case 'complete-at-stytch':
          if (m.N4 === null && m.S4 === a.nextLast4) return 'done';
          if (m.N4 !== a.nextLast4 || m.cur !== a.nextLast4) return 'stopped';
          Object.assign(m, { S4: m.N4, N4: null });
          return 'done';
        case 'cancel-at-stytch':
          if (m.N4 === null) return 'done'; // already gone, as recover reports it
          if (m.N4 !== a.nextLast4 || m.S4 !== a.currentLast4 || m.cur !== a.currentLast4) return 'stopped';
          m.N4 = null;
          return 'done';
        case 'remove-pending':
          if (m.curVersion === a.versionId) m.pendingOnCurrent = false;
          else m.pending = undefined;
          return 'done';
      }
    }
    const snapshotOfModel = (m: Model, table: TableSpec | undefined): Snapshot => {
      const s = snapshotOf({ cur: m.cur, S4: m.S4, N4: m.N4, pending: m.pending, pendingOnCurrent: m.pendingOnCurrent, table });
      return { ...s, current: { ...s.current, versionId: m.curVersion } };
    };

    const fours = ['aaaa', 'bbbb', 'cccc', 'dddd'];
    const tables: TableSpec[] = ['unknown', {}, { windowDueInMs: 3_600_000 }, { windowDueInMs: -3_600_000 }];
    const states: StateSpec[] = [];
    for (const cur of fours)
      for (const S4 of fours)
        // Stytch's next secret is new: its last four equal the current one's only by a 1-in-16M accident.
        for (const N4 of [null, ...fours.filter((f) => f !== S4)])
          for (const pending of [undefined, 'none', { invalid: 'not JSON' }, { copyOfCurrent: true as const }, ...fours])
            for (const table of tables) states.push({ cur, S4, N4, pending, table });

    it.each([false, true])('never makes AWSCURRENT unaccepted, ends every drift it plans for, and leaves nothing recover could fix (--cancel-rotation: %s)', (cancelRotation) => {
      for (const spec of states) {
        // Prepare
        const m: Model = { cur: spec.cur, curVersion: CUR_VERSION, pending: spec.pending, pendingOnCurrent: false, S4: spec.S4, N4: spec.N4 };
        const wasAccepted = accepted(m);
        const { actions, notes } = plan(spec, cancelRotation);
        // What status promises is what recover plans.
        const before = diagnose(snapshotOf(spec));
        for (const v of before) {
          if (v.fix.byRecover) expect(actions.length, `${JSON.stringify(spec)} ${v.code}`).toBeGreaterThan(0);
          if (notes.some((n) => n.startsWith(`${v.code}:`))) expect(v.fix.byRecover, `${JSON.stringify(spec)} ${v.code}`).toBe(false);
        }
        // Act + Assess (I after every action)
        for (const action of actions) {
          expect(applyAction(m, action), `${JSON.stringify(spec)} ${action.kind}`).toBe('done');
          if (wasAccepted) expect(accepted(m), `${JSON.stringify(spec)} after ${action.kind}`).toBe(true);
        }
        if (actions.some((a) => a.kind === 'promote-pending')) expect(accepted(m), JSON.stringify(spec)).toBe(true);
        const left = diagnose(snapshotOfModel(m, spec.table));
        const fixable = left.filter((v) => v.fix.byRecover);
        expect(fixable.map((v) => v.code), `${JSON.stringify(spec)} leaves`).toEqual([]);
      }
    });
  });
});

describe('Function: planRetirement', () => {
  const HOUR = 3_600_000;

  it('retires the previous secret when Stytch next secret is AWSCURRENT, inside the overlap window', () => {
    // Prepare
    const s = snapshotOf({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', table: { windowDueInMs: HOUR } });
    // Act
    const result = planRetirement(s);
    // Assess
    expect(result).toMatchObject({ kind: 'retire', retiredLast4: 'aaaa', keptLast4: 'bbbb', currentVersionId: CUR_VERSION });
    expect(result.kind === 'retire' && result.window?.dueAt).toBe(READ_AT + HOUR);
  });

  it('retires the old secret of a rotation Stytch never completed (no window recorded)', () => {
    expect(planRetirement(snapshotOf({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb' }))).toMatchObject({ kind: 'retire', window: undefined });
  });

  it.each<[string, StateSpec]>([
    ['Stytch accepts only AWSCURRENT', { cur: 'aaaa', S4: 'aaaa', N4: null }],
    ["Stytch's next secret is not AWSCURRENT's (an orphan or a rotation in progress)", { cur: 'aaaa', S4: 'aaaa', N4: 'nnnn' }],
  ])('has nothing to retire when %s, and never plans a rotate then (invariant I)', (_name, spec) => {
    expect(planRetirement(snapshotOf(spec)).kind).toBe('nothing');
  });

  it('refuses under drift and under a binding mismatch (VII)', () => {
    expect(planRetirement(snapshotOf({ cur: 'aaaa', S4: 'xxxx', N4: 'nnnn' }))).toMatchObject({ kind: 'refuse', why: expect.stringContaining('not a secret Stytch accepts') });
    expect(planRetirement(snapshotOf({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', table: { binding: { otherClient: 'connected-app-test-9999' } } }))).toMatchObject({
      kind: 'refuse',
      why: expect.stringContaining('retire acts only on the client the secret is bound to'),
    });
  });

  it('plans a retirement in exactly the states where Stytch rotate leaves AWSCURRENT as its only secret', () => {
    const fours = ['aaaa', 'bbbb', 'cccc'];
    for (const cur of fours)
      for (const S4 of fours)
        for (const N4 of [null, ...fours.filter((f) => f !== S4)]) {
          const result = planRetirement(snapshotOf({ cur, S4, N4 }));
          // rotate makes N4 the only secret: safe exactly when N4 is AWSCURRENT's.
          expect(result.kind === 'retire', JSON.stringify({ cur, S4, N4 })).toBe(N4 === cur);
        }
  });
});

describe('Function: planRecovery, at the edges of its decisions', () => {
  const explanation = (spec: StateSpec, code: string) => diagnose(snapshotOf(spec)).find((v) => v.code === code)!.fix.explanation;
  const removePending = { kind: 'remove-pending', versionId: PEND_VERSION } as const;
  const notCancelled = 'rotation-in-progress: not cancelled: Stytch has already made the pending secret current, so only finishing it keeps the secret.';

  it('without options, leaves a rotation it could cancel alone: cancelling is only ever asked for', () => {
    // Prepare
    const spec: StateSpec = { cur: 'aaaa', S4: 'aaaa', N4: 'pppp', pending: 'pppp' };
    const s = snapshotOf(spec);
    // Act
    const result = planRecovery(s, diagnose(s));
    // Assess
    expect(result).toEqual({ actions: [], notes: [`rotation-in-progress: left alone. ${explanation(spec, 'rotation-in-progress')}`] });
  });

  it('with --cancel-rotation, says why it does not cancel a rotation Stytch has already completed, and still completes the half-done one', () => {
    expect(plan({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', pending: 'aaaa' }, true)).toEqual({
      actions: [{ kind: 'complete-at-stytch', nextLast4: 'bbbb', retiredLast4: 'aaaa' }, removePending],
      notes: [notCancelled],
    });
  });

  it('with --cancel-rotation, never cancels when the pending secret is Stytch\'s current one, even if AWSCURRENT ends in the same four', () => {
    expect(plan({ cur: 'aaaa', S4: 'aaaa', N4: null, pending: 'aaaa' }, true)).toEqual({ actions: [], notes: [notCancelled] });
  });

  it('cancels an orphan by AWSCURRENT\'s secret when the pending version is dead, and removes that label too', () => {
    expect(plan({ cur: 'aaaa', S4: 'aaaa', N4: 'nnnn', pending: 'dddd' })).toEqual({
      actions: [{ kind: 'cancel-at-stytch', nextLast4: 'nnnn', currentLast4: 'aaaa' }, removePending],
      notes: [],
    });
  });

  it('when Stytch\'s two last fours collide with AWSCURRENT\'s, never removes a pending version that may hold the secret it keeps', () => {
    const spec: StateSpec = { cur: 'bbbb', S4: 'bbbb', N4: 'bbbb', pending: 'bbbb' };
    expect(plan(spec)).toEqual({
      actions: [{ kind: 'complete-at-stytch', nextLast4: 'bbbb', retiredLast4: 'bbbb' }],
      notes: [`rotation-in-progress: left alone. ${explanation(spec, 'rotation-in-progress')}`],
    });
  });

  it.each<[string, StateSpec['pending']]>([
    ['a dead pending secret', 'dddd'],
    ['a placeholder without a value', 'none'],
    ['an invalid value', { invalid: 'client_secret is missing' }],
  ])('the half-done verdict on its own removes only the pending version holding the secret it retires, not %s (that is its own verdict\'s action)', (_name, pending) => {
    // Prepare
    const s = snapshotOf({ cur: 'bbbb', S4: 'aaaa', N4: 'bbbb', pending });
    const halfDone = diagnose(s).filter((v) => v.code === 'half-done');
    // Act
    const result = planRecovery(s, halfDone);
    // Assess
    expect(halfDone).toHaveLength(1);
    expect(result).toEqual({ actions: [{ kind: 'complete-at-stytch', nextLast4: 'bbbb', retiredLast4: 'aaaa' }], notes: [] });
  });

  it('describes completing a rotation when Stytch reports no current secret to retire', () => {
    expect(describeAction({ kind: 'complete-at-stytch', nextLast4: 'bbbb', retiredLast4: null })).toBe('Complete the rotation at Stytch (rotate): …bbbb becomes its only secret');
  });
});

describe('Function: planRetirement, when Stytch reports no current secret', () => {
  it('refuses under drift, naming "none" for Stytch\'s secret', () => {
    expect(planRetirement(snapshotOf({ cur: 'aaaa', S4: null, N4: null }))).toEqual({
      kind: 'refuse',
      why: 'AWSCURRENT (…aaaa) is not a secret Stytch accepts (Stytch holds none): completing anything at Stytch could not make it work, so retire changes nothing.',
    });
  });

  it('retires when Stytch\'s next secret is AWSCURRENT\'s, with nothing named as retired', () => {
    expect(planRetirement(snapshotOf({ cur: 'aaaa', S4: null, N4: 'aaaa' }))).toEqual({ kind: 'retire', retiredLast4: null, keptLast4: 'aaaa', currentVersionId: CUR_VERSION, window: undefined });
  });
});
