import type { Retirement } from '../functions/lib/state/table.js';
import { bindingMismatch, overlapOf, pendingAccepted, pendingLast4, type Verdict } from './diagnose.js';
import type { Snapshot } from './snapshot.js';

/**
 * What `recover` does for each verdict: only fixes that keep AWSCURRENT
 * accepted by Stytch (invariant I), and, for a drift, only the one that makes
 * it accepted again. Pure: the recover command applies the actions under the
 * client's lease (VI), each behind a fresh check that the state it was
 * planned on still holds.
 */

export type Action =
  /** Move AWSCURRENT to the pending version, which Stytch accepts: ends a drift. */
  | { kind: 'promote-pending'; versionId: string; fromVersionId: string; last4: string }
  /** Stytch rotate: its next secret (AWSCURRENT's) becomes its only secret. */
  | { kind: 'complete-at-stytch'; nextLast4: string; retiredLast4: string | null }
  /** Stytch rotate/cancel, only while AWSCURRENT is Stytch's current secret. */
  | { kind: 'cancel-at-stytch'; nextLast4: string; currentLast4: string }
  | { kind: 'remove-pending'; versionId: string };

export interface RecoveryPlan {
  actions: Action[];
  /** Verdicts recover leaves alone, and why. */
  notes: string[];
}

export interface RecoverOptions {
  /** Abandon a rotation in progress (rotate/cancel and remove AWSPENDING). */
  cancelRotation: boolean;
}

const ORDER: Record<Action['kind'], number> = { 'promote-pending': 0, 'complete-at-stytch': 1, 'cancel-at-stytch': 2, 'remove-pending': 3 };

// Stryker disable next-line ObjectLiteral: equivalent; without the field cancelRotation is undefined, which every use below treats as false.
export function planRecovery(s: Snapshot, verdicts: readonly Verdict[], options: RecoverOptions = { cancelRotation: false }): RecoveryPlan {
  const actions: Action[] = [];
  const notes: string[] = [];
  const add = (action: Action) => {
    if (!actions.some((a) => JSON.stringify(a) === JSON.stringify(action))) actions.push(action);
  };
  const cur4 = s.current.value.last4;
  const { secretLast4: S4, nextSecretLast4: N4 } = s.stytch;
  const p4 = pendingLast4(s);

  for (const verdict of verdicts) {
    switch (verdict.code) {
      case 'drift': {
        const accepted = pendingAccepted(s);
        if (
          accepted &&
          s.pending &&
          // Stryker disable next-line ConditionalExpression: equivalent; pendingAccepted is set only when pendingLast4 is, so this only narrows the type.
          p4 !== undefined
        ) {
          add({ kind: 'promote-pending', versionId: s.pending.versionId, fromVersionId: s.current.versionId, last4: p4 });
          if (accepted === 'next') add({ kind: 'complete-at-stytch', nextLast4: p4, retiredLast4: S4 });
          add({ kind: 'remove-pending', versionId: s.pending.versionId });
        } else {
          notes.push(`drift: nothing recover can do safely. ${verdict.fix.explanation}`);
        }
        break;
      }
      case 'half-done':
        add({ kind: 'complete-at-stytch', nextLast4: cur4, retiredLast4: S4 });
        // The failed finishSecret left AWSPENDING on the AWSCURRENT version; a successful rotation ends without it.
        if (s.pendingOnCurrent) add({ kind: 'remove-pending', versionId: s.current.versionId });
        // A pending version holding the secret this retires would be dead afterwards.
        if (s.pending && p4 === S4 && p4 !== cur4) add({ kind: 'remove-pending', versionId: s.pending.versionId });
        break;
      case 'orphan-next-secret': {
        // I: cancel only while AWSCURRENT is Stytch's current secret. After a drift's promotion of Stytch's current secret,
        // AWSCURRENT is that secret: cancelling is safe then too. (Without a drift, an orphan means AWSCURRENT is Stytch's
        // current secret already, and a pending secret Stytch holds as current ends in the same four.)
        const effective = (pendingAccepted(s) === 'current' ? p4 : undefined) ?? cur4;
        if (
          // Stryker disable next-line ConditionalExpression: equivalent; the verdict is given only while Stytch has a next secret, so this only narrows the type.
          N4 !== null &&
          effective === S4
        ) {
          add({ kind: 'cancel-at-stytch', nextLast4: N4, currentLast4: effective });
        } else {
          notes.push(`orphan-next-secret: left alone. ${verdict.fix.explanation}`);
        }
        break;
      }
      case 'dead-pending':
      case 'pending-without-value':
        // diagnose gives these two verdicts only about a pending version.
        add({ kind: 'remove-pending', versionId: s.pending!.versionId });
        break;
      case 'rotation-in-progress':
        if (verdicts.some((v) => v.code === 'drift')) break; // finished by the drift's promotion above
        if (options.cancelRotation && s.pending && p4 === N4 && cur4 === S4) {
          add({ kind: 'cancel-at-stytch', nextLast4: p4, currentLast4: cur4 });
          add({ kind: 'remove-pending', versionId: s.pending.versionId });
        } else if (options.cancelRotation) {
          notes.push('rotation-in-progress: not cancelled: Stytch has already made the pending secret current, so only finishing it keeps the secret.');
        } else {
          notes.push(`rotation-in-progress: left alone. ${verdict.fix.explanation}`);
        }
        break;
      case 'binding-mismatch':
        // VII: recover --yes acts only on the client the secret is bound to; it refuses while they disagree.
        notes.push(`binding-mismatch: recover --yes refuses to change anything until it is resolved. ${verdict.fix.explanation}`);
        break;
      case 'retirement-overdue':
        notes.push(`retirement-overdue: left to retire (${verdict.fix.command}), which retires the previous secret under the same checks as the sweep.`);
        break;
      // overlap-window and consistent: nothing to do.
    }
  }
  actions.sort((a, b) => ORDER[a.kind] - ORDER[b.kind]);
  return { actions, notes };
}

const four = (last4: string | null) => (last4 ? `…${last4}` : 'none');

export function describeAction(action: Action): string {
  switch (action.kind) {
    case 'promote-pending':
      return `Move AWSCURRENT from version ${action.fromVersionId} to version ${action.versionId} (${four(action.last4)}), which Stytch accepts`;
    case 'complete-at-stytch':
      return `Complete the rotation at Stytch (rotate): ${four(action.nextLast4)} becomes its only secret${action.retiredLast4 ? `, ${four(action.retiredLast4)} stops working` : ''}`;
    case 'cancel-at-stytch':
      return `Cancel Stytch's next secret ${four(action.nextLast4)} (rotate/cancel); AWSCURRENT ${four(action.currentLast4)} keeps working`;
    case 'remove-pending':
      return `Remove AWSPENDING from version ${action.versionId}`;
  }
}

/** What `retire` does: Stytch rotate only when its next secret is AWSCURRENT's (invariant I). */
export type RetirePlan =
  | {
      kind: 'retire';
      /** Stytch's current secret, which stops working. */
      retiredLast4: string | null;
      /** AWSCURRENT's secret, which becomes Stytch's only one. */
      keptLast4: string;
      currentVersionId: string;
      /** The recorded overlap window, when this is one (otherwise a rotation Stytch never completed). */
      window: Retirement | undefined;
    }
  | { kind: 'nothing'; why: string }
  | { kind: 'refuse'; why: string };

export function planRetirement(s: Snapshot): RetirePlan {
  const mismatch = bindingMismatch(s);
  // VII: never act on a client other than the one the secret is bound to.
  if (mismatch) return { kind: 'refuse', why: `${mismatch}. retire acts only on the client the secret is bound to.` };
  const cur4 = s.current.value.last4;
  const { secretLast4: S4, nextSecretLast4: N4 } = s.stytch;
  if (N4 === cur4) {
    return { kind: 'retire', retiredLast4: S4, keptLast4: cur4, currentVersionId: s.current.versionId, window: overlapOf(s) };
  }
  if (cur4 !== S4) {
    return {
      kind: 'refuse',
      why: `AWSCURRENT (${four(cur4)}) is not a secret Stytch accepts (Stytch holds ${four(S4)}${N4 ? `, next ${four(N4)}` : ''}): completing anything at Stytch could not make it work, so retire changes nothing.`,
    };
  }
  return {
    kind: 'nothing',
    why:
      `Stytch's current secret is AWSCURRENT's (${four(cur4)})` +
      (N4 ? ` and its next secret (${four(N4)}) is not AWSCURRENT's, so retire leaves it alone` : ' and it has no next secret') +
      ': no previous secret is accepted any more.',
  };
}
