import type { Snapshot, VersionView } from './snapshot.js';

/**
 * The verdicts of `status`: which state a secret, its Stytch client and the
 * function's state table are in, worst first, each with the command that
 * fixes it. Pure: a Snapshot in, verdicts out. Stytch's state is read through
 * last fours, as in rotation.ts: S4 = client_secret_last_four, N4 =
 * next_client_secret_last_four, compared with the secrets Secrets Manager holds.
 */

export type VerdictCode =
  | 'drift'
  | 'binding-mismatch'
  | 'half-done'
  | 'retirement-overdue'
  | 'orphan-next-secret'
  | 'dead-pending'
  | 'pending-without-value'
  | 'rotation-in-progress'
  | 'overlap-window'
  | 'consistent';

/** Worst first: the order verdicts are reported in. */
export const VERDICT_ORDER: readonly VerdictCode[] = [
  'drift',
  'binding-mismatch',
  'half-done',
  'retirement-overdue',
  'orphan-next-secret',
  'dead-pending',
  'pending-without-value',
  'rotation-in-progress',
  'overlap-window',
  'consistent',
];

/**
 * How long after its due time a previous secret may still be accepted before
 * the retirement sweep counts as late: one sweep interval (the deployment's
 * default schedule is every 5 minutes; this leaves room for slower ones).
 */
export const SWEEP_LATE_MS = 15 * 60_000;

/** 0 consistent, 1 needs attention, 2 drift (consumers are failing). 3 (usage or access error) never comes from a verdict. */
export type ExitCode = 0 | 1 | 2 | 3;

export interface Fix {
  /** The one command that fixes it; undefined when nothing needs doing. */
  command: string | undefined;
  /** Why, and what the command does; may name an alternative command. */
  explanation: string;
  /** `recover --yes` applies this fix. */
  byRecover: boolean;
}

export interface Verdict {
  code: VerdictCode;
  exitCode: ExitCode;
  summary: string;
  fix: Fix;
}

/** How fix commands are spelled for the operator who ran this one. */
export interface CommandStyle {
  /** How this CLI is run: `npm run cli --` or `stytch-secret-rotation`. */
  cli: string;
  /** AWS flags to repeat in every command (--endpoint-url, --region, --profile), already shell-quoted. */
  awsFlags: string[];
  /** This CLI's own flags to repeat (--credentials-secret-id), already shell-quoted. */
  cliFlags: string[];
}

export const DEFAULT_STYLE: CommandStyle = { cli: 'npm run cli --', awsFlags: [], cliFlags: [] };

const SAFE_WORD = /^[A-Za-z0-9/_+=.,:@%-]+$/;

/** POSIX shell quoting for ids in printed commands. */
export function shellQuote(word: string): string {
  return SAFE_WORD.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function commands(secretId: string, style: CommandStyle = DEFAULT_STYLE) {
  const id = shellQuote(secretId);
  const aws = (...words: string[]) => ['aws secretsmanager', ...words, ...style.awsFlags].join(' ');
  const cli = (sub: string, ...words: string[]) => [style.cli, sub, '--secret-id', id, ...style.cliFlags, ...style.awsFlags, ...words].join(' ');
  return {
    status: cli('status'),
    recover: cli('recover', '--yes'),
    cancelRotation: cli('recover', '--cancel-rotation', '--yes'),
    rotateAndWait: cli('rotate', '--wait'),
    rotateSecret: aws('rotate-secret', '--secret-id', id),
    retire: cli('retire', '--yes'),
    /** bind without --yes: shows the old and new binding, changes nothing. */
    bind: cli('bind'),
    bindApply: cli('bind', '--yes'),
    removePending: (versionId: string) =>
      aws('update-secret-version-stage', '--secret-id', id, '--version-stage', 'AWSPENDING', '--remove-from-version-id', shellQuote(versionId)),
    putValue: aws('put-secret-value', '--secret-id', id, '--secret-string', 'file://secret.json'),
  };
}

const four = (last4: string | null | undefined) => (last4 ? `…${last4}` : 'none');

/** ISO 8601 to the second, as status prints times. */
export const isoTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The pending version's last four, when it holds a valid new value for this client (a copy of AWSCURRENT is not one). */
export function pendingLast4(s: Snapshot): string | undefined {
  const v = s.pending?.value;
  return v?.kind === 'value' && v.clientId === s.current.value.clientId && !v.copyOfCurrent ? v.last4 : undefined;
}

export const credentialsLabel = (id: string | undefined) => (id === undefined ? "the function's default credentials" : `credentials secret ${id}`);

/**
 * Why the function refuses to rotate this secret under its binding (VII), or
 * undefined when the value names what the secret is bound to (or nothing is
 * bound yet). The same comparisons the state table makes before any lease.
 */
export function bindingMismatch(s: Snapshot): string | undefined {
  if (s.state.kind !== 'read') return undefined;
  const { valueNames: want, binding, clientBinding } = s.state;
  const names = `client ${want.clientId} of project ${want.projectId}`;
  if (binding && (binding.clientId !== want.clientId || binding.projectId !== want.projectId)) {
    return `Secret ${s.name} is bound to client ${binding.clientId} of project ${binding.projectId}, but its AWSCURRENT value names ${names}`;
  }
  if (binding && binding.credentialsSecretId !== want.credentialsSecretId) {
    return `Secret ${s.name} is bound to client ${binding.clientId} through ${credentialsLabel(binding.credentialsSecretId)}, but its AWSCURRENT value names ${credentialsLabel(want.credentialsSecretId)}`;
  }
  if (clientBinding && clientBinding.secretArn !== s.arn) {
    return `The AWSCURRENT value of ${s.name} names ${names}, which is bound to another secret (${clientBinding.secretArn}): one client is rotated through one secret only`;
  }
  if (clientBinding && clientBinding.credentialsSecretId !== want.credentialsSecretId) {
    return `Client ${want.clientId} is bound to ${s.name} through ${credentialsLabel(clientBinding.credentialsSecretId)}, but the AWSCURRENT value names ${credentialsLabel(want.credentialsSecretId)}`;
  }
  return undefined;
}

/**
 * The recorded retirement that explains why Stytch's next secret is
 * AWSCURRENT's: the overlap window after the rotation to the AWSCURRENT
 * version, with Stytch's current secret the one that was AWSCURRENT before.
 */
export function overlapOf(s: Snapshot) {
  if (s.state.kind !== 'read' || !s.state.retirement) return undefined;
  const r = s.state.retirement;
  const { secretLast4: S4, nextSecretLast4: N4 } = s.stytch;
  const cur4 = s.current.value.last4;
  return r.versionId === s.current.versionId && N4 === cur4 && r.previousLast4 === S4 ? r : undefined;
}

/** Why a pending version can never complete, or undefined when it could. */
function deadPendingReason(s: Snapshot, pending: VersionView): string | undefined {
  const v = pending.value;
  if (v.kind === 'none') return undefined;
  if (v.kind === 'invalid') return `does not hold a valid rotated secret (${v.reason})`;
  if (v.clientId !== s.current.value.clientId) return `names client ${v.clientId}, not ${s.current.value.clientId}: a rotation never changes the client`;
  if (v.copyOfCurrent) return `is a copy of AWSCURRENT (the same client_secret, ${four(v.last4)}), not a new secret: the function refuses it`;
  const { secretLast4: S4, nextSecretLast4: N4 } = s.stytch;
  if (v.last4 === S4 || v.last4 === N4) return undefined;
  return `holds a secret (${four(v.last4)}) that Stytch no longer has: its rotation was cancelled or replaced, so it can never complete`;
}

/** Can recover end a drift by moving AWSCURRENT to the pending version? Only when Stytch accepts it (invariant I). */
export function pendingAccepted(s: Snapshot): 'current' | 'next' | undefined {
  const p4 = pendingLast4(s);
  if (p4 === undefined) return undefined;
  if (p4 === s.stytch.secretLast4) return 'current';
  if (p4 === s.stytch.nextSecretLast4) return 'next';
  return undefined;
}

export function diagnose(s: Snapshot, style: CommandStyle = DEFAULT_STYLE): Verdict[] {
  const cmd = commands(s.secretId, style);
  const cur4 = s.current.value.last4;
  const { secretLast4: S4, nextSecretLast4: N4 } = s.stytch;
  const p4 = pendingLast4(s);
  const drift = cur4 !== S4 && cur4 !== N4;
  const stytchHolds = `Stytch holds ${four(S4)}${N4 ? ` and next ${four(N4)}` : ''}`;
  const pendingVersion = s.pending?.versionId ?? '';
  const runningCaveat =
    'If a rotation is running right now (Secrets Manager runs them asynchronously), this is its createSecret at work: re-check in a minute before recovering.';
  const verdicts: Verdict[] = [];

  if (drift) {
    const accepted = pendingAccepted(s);
    if (accepted) {
      verdicts.push({
        code: 'drift',
        exitCode: 2,
        summary: `AWSCURRENT (${four(cur4)}) is not a secret Stytch accepts (${stytchHolds}): consumers of this secret are failing now.`,
        fix: {
          command: cmd.recover,
          byRecover: true,
          explanation:
            `AWSPENDING (version ${pendingVersion}, ${four(p4)}) holds Stytch's ${accepted} secret: recover moves AWSCURRENT to it` +
            (accepted === 'next' ? ` and completes the rotation at Stytch (which retires ${four(S4)}, a secret Secrets Manager does not hold)` : '') +
            ', which ends the outage without a new secret (Secrets Manager would do the same when it reattempts that rotation, but only in its next rotation window).',
        },
      });
    } else {
      const clearFirst = s.pending
        ? ` RotateSecret refuses to start while AWSPENDING sits on version ${pendingVersion}: clear it first (recover does, see below).`
        : '';
      verdicts.push({
        code: 'drift',
        exitCode: 2,
        summary: `AWSCURRENT (${four(cur4)}) is not a secret Stytch accepts (${stytchHolds}): consumers of this secret are failing now.`,
        fix: {
          command: cmd.rotateSecret,
          byRecover: false,
          explanation:
            `recover cannot repair this: the secret Stytch accepts is not in Secrets Manager, and Stytch shows a secret only once. ` +
            `Either put that secret (${four(S4)}) into the secret, if the system that changed it has it (${cmd.putValue}, with the same JSON fields), ` +
            `or issue a new secret both agree on with the command above (or ${cmd.rotateAndWait}): Stytch's rotation endpoints take the project credentials, not the client's secret, so it works under drift; ` +
            `but it retires Stytch's current secret ${four(S4)}, so anything still using that secret stops working.${clearFirst}`,
        },
      });
    }
  }

  const mismatch = bindingMismatch(s);
  if (mismatch && s.state.kind === 'read') {
    const bound = s.state.binding;
    const restore = bound
      ? `the value that names client ${bound.clientId} of project ${bound.projectId} with ${credentialsLabel(bound.credentialsSecretId)}`
      : 'the previous value';
    verdicts.push({
      code: 'binding-mismatch',
      exitCode: 1,
      summary: `${mismatch}. The function refuses to rotate this secret, and to retire its previous secret, until the value and the binding agree.`,
      fix: {
        command: cmd.bind,
        byRecover: false,
        explanation:
          `If the value was not meant to change (whoever can write it may be trying to move rotation onto another client), restore ${restore}: ${cmd.putValue}. ` +
          `If the change is intended, an administrator rebinds the secret: the command above shows the old and the new binding and changes nothing; ${cmd.bindApply} applies it.`,
      },
    });
  }

  if (N4 !== null && N4 === cur4) {
    const window = overlapOf(s);
    if (window && s.readAt < window.dueAt + SWEEP_LATE_MS) {
      const open = s.readAt < window.dueAt;
      verdicts.push({
        code: 'overlap-window',
        exitCode: 0,
        summary: open
          ? `Previous secret accepted until ${isoTime(window.dueAt)}: AWSCURRENT (${four(cur4)}) is Stytch's next secret and the previous secret (${four(S4)}) keeps working until then, so apps that cached it have time to re-read AWSCURRENT.`
          : `The overlap window ended at ${isoTime(window.dueAt)}: the retirement sweep retires the previous secret (${four(S4)}) at its next run; AWSCURRENT (${four(cur4)}) is Stytch's next secret.`,
        fix: {
          command: undefined,
          byRecover: false,
          explanation: `Nothing to do: the retirement sweep retires ${four(S4)} once the window ends. To retire it now (for example, it leaked): ${cmd.retire}`,
        },
      });
    } else if (window) {
      verdicts.push({
        code: 'retirement-overdue',
        exitCode: 1,
        summary: `The previous secret (${four(S4)}) is still accepted by Stytch although its overlap window ended at ${isoTime(window.dueAt)}: the retirement sweep is late or failing.`,
        fix: {
          command: cmd.retire,
          byRecover: false,
          explanation:
            `The command above retires it now (Stytch rotate): AWSCURRENT (${four(cur4)}) becomes Stytch's only secret. ` +
            "Then find out why the sweep did not: the function's log (\"retirement sweep\", the RetirementFailed and SweepFailed metrics) and its EventBridge schedule.",
        },
      });
    } else {
      const unknown =
        s.state.kind === 'unknown'
          ? ` This may instead be the overlap window after a rotation, which keeps the previous secret on purpose; the state table tells (${s.state.reason}). Inside the window, recover would retire the previous secret early.`
          : '';
      verdicts.push({
        code: 'half-done',
        exitCode: 1,
        summary: `AWSCURRENT (${four(cur4)}) is Stytch's next secret: a rotation moved AWSCURRENT but Stytch never completed it, so the old secret (${four(S4)}) still works.`,
        fix: {
          command: cmd.recover,
          byRecover: true,
          explanation: `recover completes the rotation at Stytch (rotate): AWSCURRENT becomes Stytch's only secret and ${four(S4)} stops working. The next rotation (${cmd.rotateSecret}) would do the same first.${unknown}`,
        },
      });
    }
  }

  if (N4 !== null && N4 !== cur4 && N4 !== p4) {
    const afterPromotion = drift && pendingAccepted(s) === 'current';
    const safe = cur4 === S4 || afterPromotion;
    const caveat = s.pending?.value.kind === 'none' ? ` ${runningCaveat}` : '';
    verdicts.push({
      code: 'orphan-next-secret',
      exitCode: 1,
      summary: `Stytch holds a next secret (${four(N4)}) that Secrets Manager does not (a lost rotate/start answer, a crash before PutSecretValue, or a rotation started by hand): it authenticates and nobody holds it.`,
      fix: safe
        ? {
            command: cmd.recover,
            byRecover: true,
            explanation: afterPromotion
              ? `Once recover has moved AWSCURRENT to Stytch's current secret (see the drift above), it cancels this one at Stytch (rotate/cancel).`
              : `recover cancels it at Stytch (rotate/cancel); AWSCURRENT (${four(cur4)}) is Stytch's current secret and keeps working. The next rotation would cancel it too.${caveat}`,
          }
        : {
            command: cmd.rotateSecret,
            byRecover: false,
            explanation: `Not cancelled by recover while AWSCURRENT is not Stytch's current secret: fix the drift above; a rotation cancels the orphan before it starts.`,
          },
    });
  }

  if (s.pending && s.pending.value.kind !== 'none') {
    const reason = deadPendingReason(s, s.pending);
    if (reason) {
      verdicts.push({
        code: 'dead-pending',
        exitCode: 1,
        summary: `AWSPENDING (version ${pendingVersion}) ${reason}; RotateSecret refuses to start a new rotation until the label is removed.`,
        fix: {
          command: cmd.recover,
          byRecover: true,
          explanation: `recover removes AWSPENDING from version ${pendingVersion} (${cmd.removePending(pendingVersion)}); nothing consumers read changes, and the next rotation starts fresh.`,
        },
      });
    }
  }

  if (s.pending && s.pending.value.kind === 'none') {
    verdicts.push({
      code: 'pending-without-value',
      exitCode: 1,
      summary: `AWSPENDING (version ${pendingVersion}) has no value: a rotation that never got past createSecret; RotateSecret refuses to start another until the label is removed.`,
      fix: {
        command: cmd.recover,
        byRecover: true,
        explanation: `recover removes AWSPENDING from version ${pendingVersion} (${cmd.removePending(pendingVersion)}); nothing consumers read changes. ${runningCaveat}`,
      },
    });
  }

  if (p4 !== undefined && (p4 === N4 || p4 === S4)) {
    const held = p4 === N4 ? "Stytch's next secret" : "Stytch's current secret (Stytch already completed; only the AWSCURRENT move is left)";
    const cancellable = p4 === N4 && cur4 === S4;
    verdicts.push({
      code: 'rotation-in-progress',
      exitCode: 1,
      summary: `AWSPENDING (version ${pendingVersion}, ${four(p4)}) holds ${held}: a rotation is under way between createSecret and finishSecret.`,
      fix: drift
        ? { command: undefined, byRecover: false, explanation: 'Finishing it ends the drift above: see its fix.' }
        : s.rotation.enabled
          ? {
              command: undefined,
              byRecover: false,
              explanation:
                `Nothing to do: Secrets Manager finishes it, or reattempts it with the same token in the next rotation window; recover leaves it alone.` +
                (cancellable ? ` To abandon it instead: ${cmd.cancelRotation}` : ''),
            }
          : {
              command: cancellable ? cmd.cancelRotation : undefined,
              byRecover: false,
              explanation:
                `Rotation is disabled on this secret, so nothing will reattempt it. ` +
                (cancellable
                  ? 'The command above abandons it: Stytch discards the pending secret (rotate/cancel) and AWSPENDING is removed; AWSCURRENT keeps working.'
                  : `Re-enable rotation (aws secretsmanager rotate-secret --secret-id ${shellQuote(s.secretId)} --rotation-lambda-arn <the function's ARN>) so it completes.`),
            },
    });
  }

  if (verdicts.length === 0) {
    verdicts.push({
      code: 'consistent',
      exitCode: 0,
      summary: `AWSCURRENT (${four(cur4)}) is Stytch's current secret; Stytch has no next secret and no rotation is pending.`,
      fix: { command: undefined, byRecover: false, explanation: 'Nothing to do.' },
    });
  }
  return verdicts.sort((a, b) => VERDICT_ORDER.indexOf(a.code) - VERDICT_ORDER.indexOf(b.code));
}

export function exitCodeOf(verdicts: readonly Verdict[]): ExitCode {
  return verdicts.reduce<ExitCode>((worst, v) => (v.exitCode > worst ? v.exitCode : worst), 0);
}
