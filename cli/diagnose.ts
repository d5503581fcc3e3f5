import type { Snapshot, VersionView } from './snapshot.js';

/**
 * The verdicts of `status`: which of the states of DESIGN.md §4 a secret and
 * its Stytch client are in, worst first, each with the command that fixes it.
 * Pure: a Snapshot in, verdicts out. Stytch's state is read through last
 * fours, as in rotation.ts: S4 = client_secret_last_four, N4 =
 * next_client_secret_last_four, compared with the secrets Secrets Manager holds.
 */

export type VerdictCode =
  | 'drift'
  | 'half-done'
  | 'orphan-next-secret'
  | 'dead-pending'
  | 'pending-without-value'
  | 'rotation-in-progress'
  | 'consistent';

/** Worst first: the order verdicts are reported in. */
export const VERDICT_ORDER: readonly VerdictCode[] = [
  'drift',
  'half-done',
  'orphan-next-secret',
  'dead-pending',
  'pending-without-value',
  'rotation-in-progress',
  'consistent',
];

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
    removePending: (versionId: string) =>
      aws('update-secret-version-stage', '--secret-id', id, '--version-stage', 'AWSPENDING', '--remove-from-version-id', shellQuote(versionId)),
    putValue: aws('put-secret-value', '--secret-id', id, '--secret-string', 'file://secret.json'),
  };
}

const four = (last4: string | null | undefined) => (last4 ? `…${last4}` : 'none');

/** The pending version's last four, when it holds a valid value for this client. */
export function pendingLast4(s: Snapshot): string | undefined {
  const v = s.pending?.value;
  return v?.kind === 'value' && v.clientId === s.current.value.clientId ? v.last4 : undefined;
}

/** Why a pending version can never complete, or undefined when it could. */
function deadPendingReason(s: Snapshot, pending: VersionView): string | undefined {
  const v = pending.value;
  if (v.kind === 'none') return undefined;
  if (v.kind === 'invalid') return `does not hold a valid rotated secret (${v.reason})`;
  if (v.clientId !== s.current.value.clientId) return `names client ${v.clientId}, not ${s.current.value.clientId}: a rotation never changes the client`;
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

  if (N4 !== null && N4 === cur4) {
    verdicts.push({
      code: 'half-done',
      exitCode: 1,
      summary: `AWSCURRENT (${four(cur4)}) is Stytch's next secret: a rotation moved AWSCURRENT but Stytch never completed it, so the old secret (${four(S4)}) still works.`,
      fix: {
        command: cmd.recover,
        byRecover: true,
        explanation: `recover completes the rotation at Stytch (rotate): AWSCURRENT becomes Stytch's only secret and ${four(S4)} stops working. The next rotation (${cmd.rotateSecret}) would do the same first.`,
      },
    });
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
