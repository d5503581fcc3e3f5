import { isComplete, type Snapshot, type Survey, type SurveyProblem, type VersionView } from './snapshot.js';

/**
 * The verdicts of `status`: which state a secret, its Stytch client and the
 * function's state table are in, worst first, each with the command that
 * fixes it. Pure: a Snapshot in, verdicts out. Stytch's state is read through
 * last fours, as in rotation.ts: S4 = client_secret_last_four, N4 =
 * next_client_secret_last_four, compared with the secrets Secrets Manager holds.
 */

export type VerdictCode =
  | 'current-unusable'
  | 'drift'
  | 'credentials-broken'
  | 'client-not-found'
  | 'public-client'
  | 'client-kind-unknown'
  | 'stytch-unreachable'
  | 'credentials-unknown'
  | 'stytch-error'
  | 'binding-mismatch'
  | 'half-done'
  | 'retirement-overdue'
  | 'orphan-next-secret'
  | 'dead-pending'
  | 'pending-without-value'
  | 'pending-unverified'
  | 'rotation-in-progress'
  | 'overlap-window'
  | 'consistent';

/** Worst first: the order verdicts are reported in. */
export const VERDICT_ORDER: readonly VerdictCode[] = [
  'current-unusable',
  'drift',
  'credentials-broken',
  'client-not-found',
  'public-client',
  'client-kind-unknown',
  'stytch-unreachable',
  'credentials-unknown',
  'stytch-error',
  'binding-mismatch',
  'half-done',
  'retirement-overdue',
  'orphan-next-secret',
  'dead-pending',
  'pending-without-value',
  'pending-unverified',
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

/**
 * 0 consistent, 1 needs attention, 2 consumers are failing now (drift, an
 * unusable AWSCURRENT), 3 the CLI itself could not read a part (Stytch
 * unreachable, no credentials secret known) or a usage error.
 */
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
    /** Moves AWSCURRENT back to `versionId` (AWSPREVIOUS follows the version it leaves). */
    restoreCurrent: (versionId: string, fromVersionId: string | undefined) =>
      aws(
        'update-secret-version-stage',
        '--secret-id',
        id,
        '--version-stage',
        'AWSCURRENT',
        '--move-to-version-id',
        shellQuote(versionId),
        ...(fromVersionId ? ['--remove-from-version-id', shellQuote(fromVersionId)] : []),
      ),
    putCredentials: (credentialsSecretId: string) =>
      ['aws secretsmanager put-secret-value --secret-id', shellQuote(credentialsSecretId), '--secret-string file://credentials.json', ...style.awsFlags].join(' '),
    statusWith: (...words: string[]) => cli('status', ...words),
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
export function bindingMismatch(s: Pick<Survey, 'state' | 'name' | 'arn'>): string | undefined {
  if (s.state.kind !== 'read') return undefined;
  const { valueNames: want, binding, clientBinding } = s.state;
  if (!want) return undefined;
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
            `AWSPENDING (version ${pendingVersion}, ${four(p4)}) holds Stytch's ${accepted} secret. recover moves AWSCURRENT to it. ` +
            (accepted === 'next' ? `It then completes the rotation at Stytch, which retires ${four(S4)} (Secrets Manager does not hold that secret). ` : '') +
            'This ends the outage without a new secret.',
        },
      });
    } else {
      const clearFirst = s.pending
        ? ` RotateSecret refuses to start while AWSPENDING is on version ${pendingVersion}. Remove it first: ${cmd.removePending(pendingVersion)}`
        : '';
      verdicts.push({
        code: 'drift',
        exitCode: 2,
        summary: `AWSCURRENT (${four(cur4)}) is not a secret Stytch accepts (${stytchHolds}): consumers of this secret are failing now.`,
        fix: {
          command: cmd.rotateSecret,
          byRecover: false,
          explanation:
            `recover cannot repair this. The secret Stytch accepts is not in Secrets Manager, and Stytch shows a secret only once. ` +
            `Two ways out. If whoever changed it has that secret (${four(S4)}), put it into the secret with the same JSON fields: ${cmd.putValue}. ` +
            `Otherwise issue a new secret: ${cmd.rotateSecret} (or ${cmd.rotateAndWait}). ` +
            `That works under drift, because Stytch's rotation takes the project credentials. ` +
            `It retires ${four(S4)}: anything still using that secret stops working.${clearFirst}`,
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
          `If the value was not meant to change, restore ${restore}: ${cmd.putValue}. ` +
          `(Whoever can write the value may be trying to move rotation onto another client.) ` +
          `If the change is intended, an administrator rebinds the secret. ${cmd.bind} shows the old and the new binding and changes nothing. ${cmd.bindApply} applies it.`,
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
            `${cmd.retire} retires it now (Stytch rotate). AWSCURRENT (${four(cur4)}) becomes Stytch's only secret. ` +
            "Then find out why the sweep did not. Look at the function's log (\"retirement sweep\"), its RetirementFailed and SweepFailed metrics, and its EventBridge schedule.",
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
                `Nothing to do while its steps run: Secrets Manager runs them one after the other. recover leaves it alone. ` +
                `If it stays like this, a step failed. Secrets Manager tries it again only inside the secret's rotation windows` +
                (s.rotation.nextRotationDate ? ` (the next one starts ${s.rotation.nextRotationDate})` : '') +
                `. The function's log says why it failed.` +
                (cancellable ? ` To abandon it now: ${cmd.cancelRotation}` : ''),
            }
          : {
              command: cancellable ? cmd.cancelRotation : undefined,
              byRecover: false,
              explanation:
                `Rotation is disabled on this secret, so nothing will try it again. ` +
                (cancellable
                  ? `${cmd.cancelRotation} abandons it. Stytch discards the pending secret (rotate/cancel) and AWSPENDING is removed. AWSCURRENT keeps working.`
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

/** The worst exit code, where an outage (2) outranks the CLI's own trouble reading a part (3): a script must see the outage. */
export function exitCodeOf(verdicts: readonly Verdict[]): ExitCode {
  if (verdicts.some((v) => v.exitCode === 2)) return 2;
  return verdicts.reduce<ExitCode>((worst, v) => (v.exitCode > worst ? v.exitCode : worst), 0);
}

const CREDENTIALS_JSON = 'credentials.json holds {"project_id": "project-…", "secret": "secret-…"}, with "base_url" for another API host.';

/** The verdict for a part of the survey that could not be read, with its fix. */
function problemVerdict(p: SurveyProblem, s: Survey, cmd: ReturnType<typeof commands>): Verdict {
  switch (p.kind) {
    case 'credentials-unknown':
      return {
        code: 'credentials-unknown',
        exitCode: 3,
        summary: `Stytch was not read. ${p.message}`,
        fix: {
          command: cmd.statusWith('--credentials-secret-id', '<id>'),
          byRecover: false,
          explanation: `Or name the rotation function: ${cmd.statusWith('--function-name', '<name>')}`,
        },
      };
    case 'credentials-unreadable': {
      const access = /AWS refused|AccessDenied|No AWS credentials/.test(p.message);
      return {
        code: access ? 'stytch-error' : 'credentials-broken',
        exitCode: access ? 3 : 1,
        summary: `The Stytch credentials secret ${p.credentialsSecretId} could not be read, so Stytch was not read. ${p.message}`,
        fix: access
          ? { command: undefined, byRecover: false, explanation: `Use AWS credentials that may read ${p.credentialsSecretId}.` }
          : {
              command: cmd.putCredentials(p.credentialsSecretId),
              byRecover: false,
              explanation: `The function cannot rotate or retire anything with it either. Put the project's credentials into it. ${CREDENTIALS_JSON}`,
            },
      };
    }
    case 'stytch-credentials-rejected':
      return {
        code: 'credentials-broken',
        exitCode: 1,
        summary: `Stytch rejected the project credentials in ${p.credentialsSecretId}, so Stytch's state is unknown. The function's rotations and sweeps fail the same way.`,
        fix: {
          command: cmd.putCredentials(p.credentialsSecretId),
          byRecover: false,
          explanation: `Put the project's current secret into the credentials secret. ${CREDENTIALS_JSON} Consumers of ${s.name} are not affected by this.`,
        },
      };
    case 'client-not-found':
      return {
        code: 'client-not-found',
        exitCode: 1,
        summary: `Stytch has no client ${s.client?.id ?? ''} in the project of the credentials in ${p.credentialsSecretId}.`,
        fix: {
          command: undefined,
          byRecover: false,
          explanation: `Either the client_id in ${s.name} is wrong (fix it: ${cmd.putValue}), or the credentials are for another project (fix them: ${cmd.putCredentials(p.credentialsSecretId)}).`,
        },
      };
    case 'public-client':
      return { code: 'public-client', exitCode: 1, summary: p.message, fix: { command: undefined, byRecover: false, explanation: 'Turn rotation off for this secret.' } };
    case 'client-kind-unknown':
      return { code: 'client-kind-unknown', exitCode: 1, summary: p.message, fix: { command: cmd.putValue, byRecover: false, explanation: 'Add client_kind to the value.' } };
    case 'stytch-unreachable':
      return {
        code: 'stytch-unreachable',
        exitCode: 3,
        summary: `Stytch could not be read. ${p.message}`,
        fix: { command: cmd.status, byRecover: false, explanation: 'Run status again once Stytch answers.' },
      };
    case 'stytch-error':
      return { code: 'stytch-error', exitCode: 3, summary: `Stytch could not be read. ${p.message}`, fix: { command: cmd.status, byRecover: false, explanation: 'Run status again.' } };
  }
}

/**
 * The verdicts for whatever status could read. With every part read, those of
 * diagnose; otherwise one verdict per part that could not be read (with its
 * fix), and those that Secrets Manager's side alone decides: an unusable
 * AWSCURRENT, and an AWSPENDING left behind.
 */
export function diagnoseSurvey(s: Survey, style: CommandStyle = DEFAULT_STYLE): Verdict[] {
  if (isComplete(s)) return diagnose(s, style);
  const cmd = commands(s.secretId, style);
  const verdicts: Verdict[] = [];
  const stytch = s.stytch;
  const accepted = (last4: string) => stytch !== undefined && (last4 === stytch.secretLast4 || last4 === stytch.nextSecretLast4);

  const value = s.current?.value;
  if (value?.kind !== 'value') {
    const what = !s.current ? 'No version is labelled AWSCURRENT' : value?.kind === 'invalid' ? `AWSCURRENT is not a rotated secret (${value.reason})` : 'AWSCURRENT has no value';
    const prev = s.previous?.value;
    const usable = prev?.kind === 'value' && (s.client === undefined || prev.clientId === s.client.id) ? prev : undefined;
    const fix: Fix =
      usable && s.previous
        ? {
            command: cmd.restoreCurrent(s.previous.versionId, s.current?.versionId),
            byRecover: false,
            explanation:
              `This moves AWSCURRENT back to AWSPREVIOUS (version ${s.previous.versionId}, ${four(usable.last4)}), the last value that was current. ` +
              (stytch === undefined
                ? "Whether Stytch still accepts it is unknown (Stytch was not read). "
                : accepted(usable.last4)
                  ? 'Stytch accepts it. '
                  : `Stytch does not accept it any more (${stytch.secretLast4 ? `it holds ${four(stytch.secretLast4)}` : 'no secret'}): run status afterwards for the drift's fix. `) +
              'Then find who wrote the broken value.',
          }
        : {
            command: cmd.putValue,
            byRecover: false,
            explanation: `No earlier version holds a usable value. Put the client's current credentials into the secret: secret.json holds {"client_id": "…", "client_secret": "…"}.`,
          };
    verdicts.push({ code: 'current-unusable', exitCode: 2, summary: `${what}: consumers of ${s.name} are failing now. The function refuses to rotate it too.`, fix });
  }

  for (const p of s.problems ?? []) verdicts.push(problemVerdict(p, s, cmd));

  const mismatch = bindingMismatch(s);
  if (mismatch) {
    verdicts.push({
      code: 'binding-mismatch',
      exitCode: 1,
      summary: `${mismatch}. The function refuses to rotate this secret until the value and the binding agree.`,
      fix: { command: cmd.bind, byRecover: false, explanation: `${cmd.bind} shows the old and the new binding and changes nothing.` },
    });
  }

  const pending = s.pending;
  if (pending) {
    const v = pending.value;
    const removal = cmd.removePending(pending.versionId);
    if (v.kind === 'none') {
      verdicts.push({
        code: 'pending-without-value',
        exitCode: 1,
        summary: `AWSPENDING (version ${pending.versionId}) has no value: a rotation never got past createSecret. RotateSecret refuses to start another until the label is removed.`,
        fix: { command: removal, byRecover: false, explanation: 'Nothing consumers read changes.' },
      });
    } else {
      const currentValue = value?.kind === 'value' ? value : undefined;
      const dead =
        v.kind === 'invalid'
          ? `does not hold a valid rotated secret (${v.reason})`
          : s.client && v.clientId !== s.client.id
            ? `names client ${v.clientId}, not ${s.client.id}`
            : v.copyOfCurrent
              ? `is a copy of AWSCURRENT (${four(v.last4)}), not a new secret`
              : stytch && !accepted(v.last4)
                ? `holds a secret (${four(v.last4)}) that Stytch does not have, so it can never complete`
                : undefined;
      if (dead) {
        verdicts.push({
          code: 'dead-pending',
          exitCode: 1,
          summary: `AWSPENDING (version ${pending.versionId}) ${dead}. RotateSecret refuses to start a new rotation until the label is removed.`,
          fix: { command: removal, byRecover: false, explanation: 'Nothing consumers read changes, and the next rotation starts fresh.' },
        });
      } else if (v.kind === 'value') {
        verdicts.push({
          code: 'pending-unverified',
          exitCode: 1,
          summary:
            `AWSPENDING (version ${pending.versionId}, ${four(v.last4)}) is left from a rotation${currentValue ? '' : ' that never finished'}. ` +
            (stytch
              ? `Stytch holds that secret. RotateSecret refuses to start another rotation meanwhile.`
              : 'Whether Stytch still holds that secret is unknown, because Stytch was not read. RotateSecret refuses to start another rotation meanwhile.'),
          fix: {
            command: cmd.status,
            byRecover: false,
            explanation: `Fix the problems above first, then run status again: it says whether to finish or drop this rotation. To drop it anyway: ${removal}`,
          },
        });
      }
    }
  }
  return verdicts.sort((a, b) => VERDICT_ORDER.indexOf(a.code) - VERDICT_ORDER.indexOf(b.code));
}
