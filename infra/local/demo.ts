/**
 * The local demo (DESIGN.md §6).
 *
 *   npm start       one real rotation of a demo Connected App secret on the
 *                   local stack with a short overlap window: the old secret
 *                   still works after the rotation, a retirement sweep after
 *                   the window retires it. Then the Stytch project secret in
 *                   the credentials secret is rotated the same way (through
 *                   the management API), the client is rotated again with the
 *                   new one, and the old project secret is deleted after its
 *                   window; then a verdict; exit 0 when every check passes,
 *                   1 otherwise.
 *   npm run serve   the stack on fixed ports (AWS 4566: Secrets Manager,
 *                   DynamoDB and Lambda Invoke; Stytch 4567) with two demo
 *                   secrets, for the real AWS CLI; a retirement sweep on a
 *                   timer; one line per rotation step and per sweep as it
 *                   happens; Ctrl-C stops it.
 *
 * Both run the BUILT function (dist/rotate-stytch-secret/index.mjs), invoked
 * by the Secrets Manager emulator's RotateSecret exactly as the service does,
 * and as an EventBridge schedule does for the sweep.
 * Nothing printed contains a whole secret (invariant V): last fours only.
 */
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import {
  clock,
  firstLine,
  formatEndState,
  formatOutcomeLine,
  formatRotation,
  formatSetup,
  formatStepLine,
  formatSweep,
  formatSweepLine,
  formatVerdict,
  fragment,
  redact,
  styleFor,
  type Check,
  type StepView,
  type Style,
  type StytchView,
  type VersionView,
} from './report.js';
import type { RequestRecord } from './stytch/emulator.js';
import type { RotationEvent } from './secrets-manager/index.js';
import {
  CREDENTIALS_SECRET_NAME,
  LOCAL_FUNCTION_NAME,
  LOCAL_LAMBDA_ARN,
  LocalStack,
  STATE_TABLE_NAME,
  scheduledEvent,
  type SeededSecret,
} from './stack.js';

const DEFAULT_BUNDLE = fileURLToPath(new URL('../../dist/rotate-stytch-secret/index.mjs', import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** How a bundle path is shown: relative to the project when inside it. */
const shown = (path: string): string => (path.startsWith(PROJECT_ROOT) ? relative(PROJECT_ROOT, path) : path);

/** Fields a real secret carries besides the client's credentials: a rotation must copy them unchanged. */
const DEMO_FIELDS = { environment: 'local-demo', owner: 'platform-team' };
/** Serve mode's rotation rule: `--schedule-scale 8640` makes it fire every 10 s. */
const SERVE_SCHEDULE = 'rate(1 day)';
const DAY_SECONDS = 86_400;
/** npm start waits the whole window once: long enough to see, short enough to wait for. */
const START_GRACE_SECONDS = 3;
/** Serve mode: long enough to paste a few commands inside the window. */
const SERVE_GRACE_SECONDS = 60;
const SERVE_SWEEP_SECONDS = 10;
/** The function's own bound on PREVIOUS_SECRET_GRACE_SECONDS (functions/lib/config.ts). */
const MAX_GRACE_SECONDS = 7 * DAY_SECONDS;
/** The shell setup serve prints: dummy credentials and the region (AWS_DEFAULT_REGION, which the AWS CLI and this CLI read). */
const SHELL_SETUP = 'export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=';
/** What EventBridge sends the function, reduced to what it checks: the sweep by hand. */
const SWEEP_PAYLOAD = '{"source":"aws.events","detail-type":"Scheduled Event"}';

// The pinned AWS SDK warns about Node 20 (which this project supports) on its first client: not news for a demo.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Kept before any invocation: the stack captures process.stdout.write while the function runs.
const stdoutWrite = process.stdout.write.bind(process.stdout);
const print = (text: string): void => {
  stdoutWrite(`${text}\n`);
};

interface Options {
  serve: boolean;
  bundle: string;
  smPort: number | undefined;
  stytchPort: number | undefined;
  scheduleScale: number | undefined;
  graceSeconds: number | undefined;
  sweepSeconds: number | undefined;
  logs: boolean;
}

const USAGE = `Usage: tsx infra/local/demo.ts [--serve] [--grace-seconds N] [--sweep-seconds N] [--sm-port N] [--stytch-port N] [--schedule-scale N] [--logs] [--bundle PATH]

  (no flag)           run one rotation on the local stack, wait out its overlap window, sweep, and print a verified report (npm start)
  --serve             keep the stack up for the AWS CLI (npm run serve)
  --grace-seconds N   the overlap window: how long the old secret keeps working after a rotation
                      (default ${START_GRACE_SECONDS}; serve ${SERVE_GRACE_SECONDS}, where 0 retires it at once)
  --sweep-seconds N   serve: run the retirement sweep every N seconds (default ${SERVE_SWEEP_SECONDS}; 0 = only when sent by hand)
  --sm-port N         the AWS port: Secrets Manager, DynamoDB, Lambda Invoke (serve default 4566; 0 = any free port)
  --stytch-port N     Stytch port (serve default 4567; 0 = any free port)
  --schedule-scale N  serve: run the rotation schedule N times faster (${SERVE_SCHEDULE}; 8640 = every 10 s)
  --logs              also print the function's own log lines
  --bundle PATH       the built function to run (default dist/rotate-stytch-secret/index.mjs)`;

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      serve: { type: 'boolean', default: false },
      'sm-port': { type: 'string' },
      'stytch-port': { type: 'string' },
      'schedule-scale': { type: 'string' },
      'grace-seconds': { type: 'string' },
      'sweep-seconds': { type: 'string' },
      logs: { type: 'boolean', default: false },
      bundle: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    print(USAGE);
    process.exit(0);
  }
  const port = (flag: string, raw: string | undefined): number | undefined => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new UsageError(`${flag} must be a port number (0-65535), got ${raw}.`);
    return n;
  };
  const seconds = (flag: string, raw: string | undefined, min: number, max: number): number | undefined => {
    if (raw === undefined) return undefined;
    const n = raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number of seconds from ${min} to ${max}, got ${raw}.`);
    return n;
  };
  const rawScale = values['schedule-scale'];
  const scale = rawScale === undefined ? undefined : Number(rawScale);
  if (scale !== undefined && !(scale > 0 && Number.isFinite(scale))) throw new UsageError(`--schedule-scale must be a positive number, got ${rawScale}.`);
  if (scale !== undefined && !values.serve) throw new UsageError('--schedule-scale only applies with --serve.');
  // npm start exists to show the overlap: a window of 0 would have none to show.
  const graceSeconds = seconds('--grace-seconds', values['grace-seconds'], values.serve ? 0 : 1, MAX_GRACE_SECONDS);
  const sweepSeconds = seconds('--sweep-seconds', values['sweep-seconds'], 0, DAY_SECONDS);
  if (sweepSeconds !== undefined && !values.serve) throw new UsageError('--sweep-seconds only applies with --serve (npm start sweeps once the window has ended).');
  return {
    serve: values.serve,
    bundle: values.bundle === undefined ? DEFAULT_BUNDLE : resolve(values.bundle),
    smPort: port('--sm-port', values['sm-port']),
    stytchPort: port('--stytch-port', values['stytch-port']),
    scheduleScale: scale,
    graceSeconds,
    sweepSeconds,
    logs: values.logs,
  };
}

class UsageError extends Error {
  override name = 'UsageError';
}

// ---------------------------------------------------------------- shared by both modes

const last4 = (secret: string | undefined): string | null => (secret === undefined ? null : secret.slice(-4));

function clientSecretOf(secretString: string | undefined): string | undefined {
  if (secretString === undefined) return undefined;
  try {
    const value = (JSON.parse(secretString) as { client_secret?: unknown }).client_secret;
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

async function valueAt(stack: LocalStack, secretId: string, stage: string): Promise<string | undefined> {
  try {
    return ((await stack.sm.handle('GetSecretValue', { SecretId: secretId, VersionStage: stage })) as { SecretString?: string }).SecretString;
  } catch {
    return undefined;
  }
}

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** A previous secret waiting for the sweep, as a client item of the state table records it. */
interface DueRetirement {
  secretArn: string;
  clientId: string;
  /** Epoch ms: the end of the overlap window. */
  dueAt: number;
  versionId: string;
  previousLast4: string;
}

/** The state table, read the way the function wrote it (item layout: functions/lib/state/table.ts). */
interface TableView {
  /** `secret#<arn>` items: the binding seen from the secret. */
  secrets: Array<{ secretArn: string; projectId: string; clientId: string }>;
  /** `client#<project>#<client>` items: the binding seen from the client, and its due retirement. */
  clients: Array<{ projectId: string; clientId: string; secretArn: string | undefined; retirement: DueRetirement | undefined }>;
}

async function readStateTable(stack: LocalStack): Promise<TableView> {
  const view: TableView = { secrets: [], clients: [] };
  for (const item of (await stack.dynamo.scan()) as Array<Record<string, { S?: string; N?: string } | undefined>>) {
    const S = (name: string) => item[name]?.S;
    const pk = S('pk') ?? '';
    const projectId = S('project_id') ?? '';
    const clientId = S('client_id') ?? '';
    const secretArn = S('secret_arn');
    if (pk.startsWith('secret#')) view.secrets.push({ secretArn: pk.slice('secret#'.length), projectId, clientId });
    if (!pk.startsWith('client#')) continue;
    const due = item.retire_due?.N;
    view.clients.push({
      projectId,
      clientId,
      secretArn,
      retirement:
        due === undefined || secretArn === undefined
          ? undefined
          : { secretArn, clientId, dueAt: Number(due), versionId: S('retire_version') ?? '', previousLast4: S('retire_previous_last4') ?? '' },
    });
  }
  return view;
}

const retirementsOf = (table: TableView): DueRetirement[] => table.clients.flatMap((c) => (c.retirement ? [c.retirement] : []));

/** What one sweep did, from the state table before and after it and the Stytch calls it made. */
interface SweepOutcome {
  ok: boolean;
  ms: number;
  error: unknown;
  /** Completed at Stytch (`rotate`): the previous secret is retired. */
  retired: DueRetirement[];
  /** Record removed without a Stytch rotate (nothing left to retire). */
  cleared: DueRetirement[];
  /** Recorded and not acted on: due (the next sweep tries again) or still in their window. */
  pending: DueRetirement[];
  startedAt: number;
}

async function observeSweep(stack: LocalStack, run: () => Promise<void>): Promise<SweepOutcome> {
  const before = retirementsOf(await readStateTable(stack));
  const fromRequest = stack.stytch.requests.length;
  const startedAt = Date.now();
  const started = performance.now();
  let error: unknown;
  try {
    await run();
  } catch (caught) {
    error = caught ?? new Error('the sweep failed');
  }
  const ms = performance.now() - started;
  const after = retirementsOf(await readStateTable(stack));
  const rotatedClients = new Set(
    stack.stytch.requests
      .slice(fromRequest)
      .filter((r: RequestRecord) => r.operation.endsWith('.rotate') && r.status === 200)
      .map((r) => r.clientId),
  );
  const acted = before.filter((b) => !after.some((a) => a.clientId === b.clientId && a.versionId === b.versionId));
  return {
    ok: error === undefined,
    ms,
    error,
    retired: acted.filter((r) => rotatedClients.has(r.clientId)),
    cleared: acted.filter((r) => !rotatedClients.has(r.clientId)),
    pending: after,
    startedAt,
  };
}

/** One line of what a sweep did, in last fours: "retired demo/stytch-client …TCyw: Stytch rejects it". */
function describeSweep(stack: LocalStack, outcome: SweepOutcome, nameOf: (arn: string) => string): string {
  const parts: string[] = [];
  if (!outcome.ok) parts.push(`failed: ${firstLine(errorText(outcome.error))}`);
  for (const r of outcome.retired) {
    const state = stack.stytch.clientState(r.clientId);
    const stillHeld = state.clientSecretLast4 === r.previousLast4 || state.nextClientSecretLast4 === r.previousLast4;
    parts.push(`retired ${nameOf(r.secretArn)} ${fragment(r.previousLast4)}: ${stillHeld ? 'Stytch STILL ACCEPTS it' : 'Stytch rejects it'}`);
  }
  for (const r of outcome.cleared) parts.push(`${nameOf(r.secretArn)}: nothing left to retire, record cleared`);
  for (const r of outcome.pending) {
    parts.push(
      r.dueAt <= outcome.startedAt
        ? `${nameOf(r.secretArn)} ${fragment(r.previousLast4)} due, left for the next sweep`
        : `${nameOf(r.secretArn)} ${fragment(r.previousLast4)} in its window until ${clock(r.dueAt)}`,
    );
  }
  const acted = outcome.retired.length + outcome.cleared.length;
  const dueLeft = outcome.pending.filter((r) => r.dueAt <= outcome.startedAt).length;
  if (outcome.ok && acted === 0 && dueLeft === 0) parts.unshift('nothing due');
  return parts.join('; ');
}

// ---------------------------------------------------------------- npm start

const STAGE_ORDER = ['AWSCURRENT', 'AWSPENDING', 'AWSPREVIOUS'];
const rank = (stages: string[]) => Math.min(...stages.map((s) => STAGE_ORDER.indexOf(s)).filter((i) => i >= 0), STAGE_ORDER.length);

function versionsOf(stack: LocalStack, secretId: string): VersionView[] {
  return Object.entries(stack.sm.inspect(secretId).versions)
    .map(([id, v]) => ({ id, stages: v.stages, last4: last4(clientSecretOf(v.secretString)) }))
    .sort((a, b) => rank(a.stages) - rank(b.stages));
}

/** "get ×4, rotate_start ×1, rotate ×1": what the function asked Stytch, failures counted apart. */
function stytchCallSummary(requests: ReadonlyArray<RequestRecord>, clientId: string): string {
  const counts = new Map<string, { ok: number; failed: number }>();
  for (const r of requests) {
    if (r.clientId !== clientId) continue;
    const name = r.operation.split('.')[1] ?? r.operation;
    const entry = counts.get(name) ?? { ok: 0, failed: 0 };
    if (r.status >= 200 && r.status < 300) entry.ok++;
    else entry.failed++;
    counts.set(name, entry);
  }
  if (counts.size === 0) return 'none';
  return [...counts].map(([name, c]) => `${name} ×${c.ok}${c.failed > 0 ? ` (+${c.failed} failed)` : ''}`).join(', ');
}

function withoutSecret(secretString: string | undefined): unknown {
  if (secretString === undefined) return undefined;
  try {
    const { client_secret: _dropped, ...rest } = JSON.parse(secretString) as Record<string, unknown>;
    return rest;
  } catch {
    return undefined;
  }
}

const stytchView = (stack: LocalStack, clientId: string): StytchView => {
  const state = stack.stytch.clientState(clientId);
  return { secretLast4: state.clientSecretLast4, nextSecretLast4: state.nextClientSecretLast4 };
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function runOnce(options: Options, style: Style): Promise<number> {
  const started = performance.now();
  const graceSeconds = options.graceSeconds ?? START_GRACE_SECONDS;
  const stack = await LocalStack.start({
    bundlePath: options.bundle,
    secretsManagerPort: options.smPort,
    stytchPort: options.stytchPort,
    echoLogs: options.logs,
    graceSeconds,
  });
  // The report goes out part by part, so the wait for the window is not a silent pause.
  // Error messages come from the function; redact is a guard, the log scan below is the check.
  const show = async (text: string) => {
    stdoutWrite(`${redact(text, (await stack.knownSecrets()).map((s) => s.value))}\n`);
  };
  try {
    const seeded = await stack.seedSecret({ extraFields: DEMO_FIELDS });
    const { clientId } = seeded;
    const nameOf = (arn: string) => (arn === seeded.arn ? seeded.name : stack.sm.inspect(arn).name);
    const oldString = await valueAt(stack, seeded.name, 'AWSCURRENT');
    const oldSecret = clientSecretOf(oldString);
    const accepted = (secret: string | undefined) => secret !== undefined && stack.stytch.isAccepted(clientId, secret);
    const stytchBefore = stytchView(stack, clientId);
    const versionsBefore = versionsOf(stack, seeded.name);
    stack.stytch.resetRequests();
    await show(
      formatSetup(
        {
          bundle: shown(options.bundle),
          awsUrl: stack.secretsManagerUrl,
          stytchUrl: stack.stytchUrl,
          secretName: seeded.name,
          client: `Connected App ${clientId}`,
          graceSeconds,
        },
        style,
      ),
    );

    // RotateSecret → the built handler for createSecret, setSecret, testSecret, finishSecret.
    const rotationStartedAt = Date.now();
    await stack.rotate(seeded.name);
    const rotatedAt = Date.now();

    const record = stack.sm.rotationHistory(seeded.name).at(-1);
    const newString = await valueAt(stack, seeded.name, 'AWSCURRENT');
    const newSecret = clientSecretOf(newString);
    const stytchRotated = stytchView(stack, clientId);
    const newAcceptedInWindow = accepted(newSecret);
    const oldAcceptedInWindow = accepted(oldSecret);
    const table = await readStateTable(stack);
    const retirement = retirementsOf(table).find((r) => r.secretArn === seeded.arn);
    await show(
      formatRotation(
        {
          secretName: seeded.name,
          outcome: record?.outcome ?? 'not started',
          attempts: (record?.attempts ?? []).map((a) => a.steps.map((step): StepView => ({ ...step }))),
          stytchCalls: stytchCallSummary(stack.stytch.requests, clientId),
        },
        style,
      ),
    );

    // The sweep, as the EventBridge schedule sends it: once inside the window (it must leave the
    // old secret alone), once after it (it must retire it).
    const sweepCallsFrom = stack.stytch.requests.length;
    let inside: { outcome: SweepOutcome; oldAccepted: boolean; endedAt: number } | undefined;
    let after: SweepOutcome | undefined;
    await show(style.bold('Retirement sweep') + style.dim(' (the EventBridge scheduled event)'));
    if (retirement === undefined) {
      await show('  not run: the state table records no retirement for this secret');
    } else {
      if (Date.now() < retirement.dueAt) {
        const outcome = await observeSweep(stack, () => stack.sweep());
        inside = { outcome, oldAccepted: accepted(oldSecret), endedAt: Date.now() };
        await show(formatSweep({ at: new Date(outcome.startedAt), label: 'inside the window', ok: outcome.ok, ms: outcome.ms, text: describeSweep(stack, outcome, nameOf) }, style));
      }
      const wait = retirement.dueAt - Date.now();
      if (wait > 0) {
        await show(style.dim(`  waiting ${(wait / 1000).toFixed(1)} s for the window to end`));
        // A few ms past the end: the function compares the due time with its own clock.
        await sleep(wait + 20);
      }
      after = await observeSweep(stack, () => stack.sweep());
      await show(formatSweep({ at: new Date(after.startedAt), label: 'after the window', ok: after.ok, ms: after.ms, text: describeSweep(stack, after, nameOf) }, style));
    }
    await show(style.dim(`  Stytch calls: ${stytchCallSummary(stack.stytch.requests.slice(sweepCallsFrom), clientId)}`) + '\n');

    const currentString = await valueAt(stack, seeded.name, 'AWSCURRENT');
    const previousString = await valueAt(stack, seeded.name, 'AWSPREVIOUS');
    const stytchSwept = stytchView(stack, clientId);
    const versionsAfter = versionsOf(stack, seeded.name);
    const tableAfter = await readStateTable(stack);
    const scan = await stack.scanForSecrets();
    const acceptedStarts = stack.stytch.requests.filter((r) => r.clientId === clientId && r.operation.endsWith('.rotate_start') && r.status === 200).length;
    const secretSide = tableAfter.secrets.find((b) => b.secretArn === seeded.arn);
    const clientSide = tableAfter.clients.find((c) => c.clientId === clientId);
    // III: the window is counted from the moment AWSCURRENT moved, inside the RotateSecret call.
    const windowStart = retirement === undefined ? undefined : retirement.dueAt - graceSeconds * 1000;
    const windowRight = windowStart !== undefined && windowStart >= rotationStartedAt && windowStart <= rotatedAt;
    const oldGone = !accepted(oldSecret);

    const checks: Check[] = [
      {
        ok: record?.outcome === 'succeeded',
        text: 'RotateSecret ran the four steps to the end',
        why: `the rotation ${record?.outcome ?? 'never started'}`,
      },
      {
        ok: newSecret !== undefined && newSecret !== oldSecret && newAcceptedInWindow && currentString === newString && accepted(newSecret),
        text: `the new AWSCURRENT (${fragment(last4(newSecret))}) is accepted by Stytch, before and after the sweep`,
        why: newSecret === oldSecret ? 'AWSCURRENT did not change' : currentString !== newString ? 'AWSCURRENT changed again' : 'Stytch rejects it',
      },
      {
        ok: oldAcceptedInWindow && retirement !== undefined && windowRight,
        text: `the old secret (${fragment(last4(oldSecret))}) is still accepted after the rotation${retirement === undefined ? '' : `, until ${clock(retirement.dueAt)} UTC`}`,
        why: !oldAcceptedInWindow
          ? 'Stytch already rejects it'
          : retirement === undefined
            ? 'the state table records no retirement for it'
            : `its window ends ${((retirement.dueAt - rotatedAt) / 1000).toFixed(1)} s after the rotation, not ${graceSeconds} s`,
      },
      {
        ok: inside !== undefined && inside.outcome.ok && inside.oldAccepted && inside.endedAt < (retirement?.dueAt ?? 0),
        text: 'a sweep inside the window leaves it accepted',
        why:
          inside === undefined
            ? retirement === undefined
              ? 'no window to sweep in'
              : 'the window ended before the sweep could run (try a longer --grace-seconds)'
            : !inside.outcome.ok
              ? `the sweep failed: ${firstLine(errorText(inside.outcome.error))}`
              : !inside.oldAccepted
                ? 'Stytch rejects it after that sweep'
                : 'the sweep ended after the window (try a longer --grace-seconds)',
      },
      {
        ok: after !== undefined && after.ok && oldGone && clientSide?.retirement === undefined,
        text: `the sweep after the window retires it: Stytch rejects ${fragment(last4(oldSecret))}`,
        why:
          after === undefined
            ? 'no sweep ran'
            : !after.ok
              ? `the sweep failed: ${firstLine(errorText(after.error))}`
              : !oldGone
                ? 'Stytch still accepts it'
                : 'its retirement is still recorded in the state table',
      },
      {
        ok: stytchSwept.nextSecretLast4 === null && stytchSwept.secretLast4 === last4(newSecret),
        text: 'Stytch has no rotation in progress and holds AWSCURRENT as its secret',
        why: `client_secret_last_four ${stytchSwept.secretLast4 ?? '-'}, next_client_secret_last_four ${stytchSwept.nextSecretLast4 ?? '-'}`,
      },
      {
        ok: previousString !== undefined && previousString === oldString,
        text: 'AWSPREVIOUS holds the old value',
        why: previousString === undefined ? 'no AWSPREVIOUS version' : 'it holds another value',
      },
      {
        ok: withoutSecret(newString) !== undefined && isDeepStrictEqual(withoutSecret(newString), withoutSecret(oldString)),
        text: `the other fields are unchanged (${Object.keys((withoutSecret(oldString) ?? {}) as object).join(', ')})`,
        why: 'the new version differs in more than client_secret',
      },
      {
        ok: !versionsAfter.some((v) => v.stages.includes('AWSPENDING')),
        text: 'no AWSPENDING label is left',
        why: 'a version still carries AWSPENDING',
      },
      {
        ok: acceptedStarts === 1,
        text: 'exactly one rotate/start was accepted by Stytch',
        why: `${acceptedStarts} were`,
      },
      {
        // VII: the secret names its client, and the client names its secret.
        ok: secretSide?.clientId === clientId && secretSide.projectId === stack.project.projectId && clientSide?.secretArn === seeded.arn,
        text: `the state table binds ${seeded.name} to its Stytch client, both ways`,
        why: secretSide === undefined ? `no secret# item for ${seeded.name}` : clientSide?.secretArn === undefined ? 'the client# item names no secret' : 'the items name another client or secret',
      },
      {
        ok: scan.linesWithSecret === 0,
        text: `${scan.lines} log lines, ${scan.linesWithSecret} contain a secret`,
        why: `found ${scan.leaked.join(', ')}`,
      },
    ];

    await show(formatEndState({ stytch: { before: stytchBefore, rotated: stytchRotated, swept: stytchSwept }, versionsBefore, versionsAfter }, style));

    // Part two: the project secret the function itself uses (DESIGN.md §4b), then the client again with it.
    checks.push(...(await projectSecretPart(stack, seeded, graceSeconds, show, style)));
    const finalScan = await stack.scanForSecrets();
    checks.push({
      ok: finalScan.linesWithSecret === 0,
      text: `${finalScan.lines} log lines in all, ${finalScan.linesWithSecret} contain a secret (project secrets and the workspace key included)`,
      why: `found ${finalScan.leaked.join(', ')}`,
    });
    await show(formatVerdict(checks, performance.now() - started, style));
    return checks.every((c) => c.ok) ? 0 : 1;
  } finally {
    await stack.close();
  }
}

/**
 * Rotates the Stytch project secret in the credentials secret (a project secret rotation, through the
 * management API), rotates the demo client again with the new credentials, and shows the old project secret
 * accepted inside the window and rejected after the sweep.
 */
async function projectSecretPart(
  stack: LocalStack,
  client: SeededSecret,
  graceSeconds: number,
  show: (text: string) => Promise<void>,
  style: Style,
): Promise<Check[]> {
  const name = stack.credentialsSecretName;
  const projectId = stack.project.projectId;
  const valueOf = async (stage: string) => {
    const text = await valueAt(stack, name, stage);
    return text === undefined ? undefined : (JSON.parse(text) as { secret?: string; secret_id?: string });
  };
  const accepted = (secret: string | undefined) => secret !== undefined && stack.stytch.isProjectSecretAccepted(projectId, secret);
  const idsAtStytch = () => stack.stytch.projectSecrets(projectId).map((s) => s.secretId);
  const before = await valueOf('AWSCURRENT');
  await show(style.bold(`Project secret rotation: ${name}`) + style.dim(' (the Stytch project secret the function itself uses, through the management API)'));
  await show(`  before: secret_id ${before?.secret_id ?? '-'} ${fragment(last4(before?.secret))}; Stytch has ${idsAtStytch().length} project secret(s)`);

  const attempt = async (secret: string) => {
    try {
      await stack.rotate(secret);
      return undefined;
    } catch (error) {
      return firstLine(errorText(error));
    }
  };
  const refused = await attempt(name);
  const movedAt = Date.now();
  const record = stack.sm.rotationHistory(name).at(-1);
  const after = await valueOf('AWSCURRENT');
  const bothInWindow = accepted(after?.secret) && accepted(before?.secret);
  await show(
    `  RotateSecret ${record?.outcome ?? 'not started'}: new secret_id ${after?.secret_id ?? '-'} ${fragment(last4(after?.secret))}; ` +
      `old ${accepted(before?.secret) ? 'still accepted' : 'rejected'}, new ${accepted(after?.secret) ? 'accepted' : 'rejected'}`,
  );

  // The client again: the function's cached credentials were dropped when it moved AWSCURRENT, so this uses the new secret.
  const clientRefused = await attempt(client.name);
  const clientRecord = clientRefused === undefined ? stack.sm.rotationHistory(client.name).at(-1) : undefined;
  const newUse = stack.stytch.projectSecrets(projectId).find((s) => s.secretId === after?.secret_id)?.usedAt ?? null;
  const oldUse = stack.stytch.projectSecrets(projectId).find((s) => s.secretId === before?.secret_id)?.usedAt ?? null;
  const clientUsedNew = newUse !== null && newUse >= movedAt && (oldUse === null || oldUse < movedAt);
  await show(`  ${client.name} rotated again: ${clientRefused ?? clientRecord?.outcome ?? 'not started'}${clientUsedNew ? ', with the new project secret' : ''}`);

  const table = await readStateTable(stack);
  const due = retirementsOf(table).find((r) => r.secretArn === stack.sm.inspect(name).arn);
  if (due && Date.now() < due.dueAt) {
    const inside = await observeSweep(stack, () => stack.sweep());
    await show(formatSweep({ at: new Date(inside.startedAt), label: 'inside the window', ok: inside.ok, ms: inside.ms, text: accepted(before?.secret) ? 'the old project secret is still accepted' : 'the old project secret was deleted' }, style));
    const wait = due.dueAt - Date.now();
    if (wait > 0) {
      await show(style.dim(`  waiting ${(wait / 1000).toFixed(1)} s for the window to end`));
      await sleep(wait + 20);
    }
  }
  const swept = await observeSweep(stack, () => stack.sweep());
  const oldGone = !accepted(before?.secret) && !idsAtStytch().includes(before?.secret_id ?? '');
  await show(formatSweep({ at: new Date(swept.startedAt), label: 'after the window', ok: swept.ok, ms: swept.ms, text: oldGone ? `deleted the old project secret ${before?.secret_id ?? ''}` : 'the old project secret is still there' }, style) + '\n');

  return [
    {
      ok: record?.outcome === 'succeeded' && after?.secret_id !== undefined && after.secret_id !== before?.secret_id,
      text: `the project secret in ${name} was rotated: a new Stytch secret (${after?.secret_id ?? '-'})`,
      why: refused ?? `the rotation ${record?.outcome ?? 'never started'}`,
    },
    {
      ok: bothInWindow && due !== undefined && due.dueAt - movedAt <= graceSeconds * 1000 + 1000,
      text: `inside the ${graceSeconds} s window both project secrets work`,
      why: due === undefined ? 'no deletion is recorded in the state table' : 'Stytch rejects one of them',
    },
    {
      ok: clientRecord?.outcome === 'succeeded' && clientUsedNew,
      text: `${client.name} rotates again with the new project secret`,
      why: clientRefused ?? (clientRecord?.outcome !== 'succeeded' ? `the rotation ${clientRecord?.outcome ?? 'never started'}` : 'Stytch saw the old project secret used after the move'),
    },
    {
      ok: swept.ok && oldGone && accepted(after?.secret) && idsAtStytch().length === 1,
      text: 'the sweep after the window deletes the old project secret; Stytch has only the new one',
      why: !swept.ok ? `the sweep failed: ${firstLine(errorText(swept.error))}` : !oldGone ? 'Stytch still has it' : `Stytch has ${idsAtStytch().length} secrets`,
    },
  ];
}

// ---------------------------------------------------------------- npm run serve

async function serve(options: Options, style: Style): Promise<void> {
  const smPort = options.smPort ?? 4566;
  const stytchPort = options.stytchPort ?? 4567;
  const graceSeconds = options.graceSeconds ?? SERVE_GRACE_SECONDS;
  const sweepSeconds = options.sweepSeconds ?? SERVE_SWEEP_SECONDS;
  const stack = await LocalStack.start({ bundlePath: options.bundle, secretsManagerPort: smPort, stytchPort, echoLogs: options.logs, graceSeconds });
  const secrets: SeededSecret[] = [
    await stack.seedSecret({ kind: 'connected_app', extraFields: DEMO_FIELDS }),
    await stack.seedSecret({ kind: 'm2m', extraFields: DEMO_FIELDS }),
  ];
  const nameOf = (arn: string): string => secrets.find((s) => s.arn === arn)?.name ?? stack.sm.inspect(arn).name;
  const guard = async (text: string) => redact(text, (await stack.knownSecrets()).map((s) => s.value));
  let stopping = false;

  // One line per step, as it happens: wrap the stack's own invoker.
  stack.sm.registerInvoker(LOCAL_LAMBDA_ARN, async (event: RotationEvent) => {
    const configurationTest = event.Step === 'testSecret' && stack.sm.inspect(event.SecretId).versions[event.ClientRequestToken]?.secretString === undefined;
    const started = performance.now();
    const line = (ok: boolean, error?: string) =>
      formatStepLine(style, new Date(), nameOf(event.SecretId), {
        step: event.Step,
        ok,
        ms: performance.now() - started,
        token: event.ClientRequestToken,
        configurationTest,
        ...(error === undefined ? {} : { error }),
      });
    try {
      await stack.invoke(event);
      print(line(true));
    } catch (error) {
      print(await guard(line(false, errorText(error))));
      throw error;
    }
  });

  // One line per sweep, whoever sent it: the timer below, or `aws lambda invoke` (the stack's
  // Invoke API calls stack.invoke too), so wrap that.
  const fromTimer = new WeakSet<object>();
  const invoke = stack.invoke.bind(stack);
  stack.invoke = async (...args: Parameters<LocalStack['invoke']>): Promise<void> => {
    const [event] = args;
    if ((event as { source?: unknown }).source !== 'aws.events') return invoke(...args);
    const outcome = await observeSweep(stack, () => invoke(...args));
    if (!stopping) {
      const trigger = fromTimer.has(event) ? 'schedule' : 'by hand';
      print(await guard(formatSweepLine(style, new Date(), { trigger, ok: outcome.ok, ms: outcome.ms, text: describeSweep(stack, outcome, nameOf) })));
    }
    // Sweeps run for as long as the stack does: scan their log lines and drop them (memory stays bounded).
    await scanSinceLast(stack);
    if (!outcome.ok) throw outcome.error;
  };

  // The outcome of each rotation, from the service events Secrets Manager emits.
  let seen = 0;
  const reportOutcomes = async (): Promise<void> => {
    const events = stack.sm.serviceEvents;
    while (seen < events.length) {
      const event = events[seen++]!;
      const name = nameOf(event.secretArn);
      const at = new Date(event.time);
      if (event.eventName === 'RotationSucceeded') {
        print(await guard(formatOutcomeLine(style, at, name, await describeSuccess(stack, event.secretArn), true)));
      } else if (event.eventName === 'RotationFailed') {
        print(formatOutcomeLine(style, at, name, 'rotation attempt failed: AWSPENDING stays, Secrets Manager reattempts with the same token', false));
      } else if (event.eventName === 'TestRotationFailed') {
        print(formatOutcomeLine(style, at, name, 'configuration test failed (TestRotationFailed): nothing was changed', false));
      } else if (event.eventName === 'RotationAbandoned') {
        print(formatOutcomeLine(style, at, name, 'rotation abandoned: a new AWSCURRENT was set by hand', false));
      }
    }
  };
  // One report at a time, in order.
  let reporting = Promise.resolve();
  const flushOutcomes = (): Promise<void> =>
    (reporting = reporting.then(reportOutcomes).catch((error: unknown) => print(`could not report a rotation outcome: ${errorText(error)}`)));
  const watcher = setInterval(() => void flushOutcomes(), 100);

  // Rotation attached without rotating: Secrets Manager runs testSecret as a configuration test.
  print(style.bold('Turning rotation on (RotateImmediately=false: Secrets Manager runs testSecret as a configuration test):'));
  for (const secret of secrets) await stack.rotate(secret.name, { rotateImmediately: false, schedule: SERVE_SCHEDULE });
  await flushOutcomes();

  const schedule = options.scheduleScale === undefined ? undefined : stack.sm.startSchedule({ tickMs: 200, scale: options.scheduleScale });

  // III: the previous secret is retired no later than its window plus one sweep interval.
  let sweeping: Promise<void> | undefined;
  const sweeper =
    sweepSeconds === 0
      ? undefined
      : setInterval(() => {
          if (sweeping || stopping) return; // one at a time, as a Lambda with reserved concurrency would
          const event = scheduledEvent();
          fromTimer.add(event);
          sweeping = stack
            .invoke(event)
            .catch(() => undefined) // its line says what failed; the next tick tries again
            .finally(() => (sweeping = undefined));
        }, sweepSeconds * 1000);

  const aws = `aws --endpoint-url ${stack.secretsManagerUrl}`;
  const sm = `${aws} secretsmanager`;
  const [app, m2m] = secrets as [SeededSecret, SeededSecret];
  const lines = [
    '',
    style.bold('The local stack is up (Ctrl-C stops it).'),
    `  AWS              ${stack.secretsManagerUrl}  (Secrets Manager, DynamoDB and Lambda emulators, one port)`,
    `  Stytch           ${stack.stytchUrl}`,
    `  Rotation Lambda  ${LOCAL_LAMBDA_ARN}  (the built ${shown(options.bundle)})`,
    `  State table      ${STATE_TABLE_NAME}`,
    `  Secrets          ${app.name}  Connected App ${app.clientId}`,
    `                   ${m2m.name}  M2M client ${m2m.clientId}`,
    `                   ${CREDENTIALS_SECRET_NAME}  the Stytch project credentials the function uses`,
    `  Rotation         on for both (${SERVE_SCHEDULE}), ${
      options.scheduleScale === undefined
        ? 'no schedule running (--schedule-scale N runs it N times faster)'
        : `schedule running ${options.scheduleScale}× faster: every ${formatSeconds(DAY_SECONDS / options.scheduleScale)}`
    }`,
    `  Overlap window   ${
      graceSeconds === 0 ? '0 s: a rotation retires the previous secret at once' : `${graceSeconds} s: after a rotation the previous secret keeps working that long`
    } (--grace-seconds N)`,
    `  Sweep            ${sweepSeconds === 0 ? 'only when sent by hand (--sweep-seconds N runs it every N s)' : `every ${sweepSeconds} s, retiring previous secrets whose window has ended (--sweep-seconds N)`}`,
    '',
    style.bold('Point a shell at it (the AWS CLI, this project\'s CLI and the AWS SDKs all read these):'),
    `  ${SHELL_SETUP} AWS_ENDPOINT_URL=${stack.secretsManagerUrl}`,
    '',
    style.bold("This project's CLI (it finds the credentials secret and the state table from the rotation function):"),
    `  npm run -s cli -- status --secret-id ${app.name}`,
    `  npm run -s cli -- rotate --secret-id ${app.name} --wait`,
    `  npm run -s cli -- status --secret-id ${m2m.name} --json`,
    '',
    style.bold('Rotate with the AWS CLI:'),
    `  ${sm} rotate-secret --secret-id ${app.name} --rotation-lambda-arn ${LOCAL_LAMBDA_ARN}`,
    `  ${sm} describe-secret --secret-id ${app.name}`,
    `  ${sm} get-secret-value --secret-id ${app.name}`,
    `  ${sm} rotate-secret --secret-id ${m2m.name}`,
    '',
    style.bold('The overlap window: the state table, and a retirement sweep sent by hand:'),
    `  ${aws} dynamodb scan --table-name ${STATE_TABLE_NAME}`,
    // fileb:// sends the bytes as they are with AWS CLI v1 and v2 alike (v2 would read an inline payload as base64).
    `  printf '%s' '${SWEEP_PAYLOAD}' > sweep-event.json`,
    `  ${aws} lambda invoke --function-name ${LOCAL_FUNCTION_NAME} --payload fileb://sweep-event.json sweep-result.json`,
    '  → each secret# item names its Stytch client, each client# item its secret; during a window the client# item',
    "    also holds retire_due (epoch ms) and retire_previous_last4. A sweep after retire_due retires that secret at Stytch",
    '    and removes them; sweep-result.json holds null, or the error.',
    '',
    style.bold("Check the result against the Stytch emulator (GET client, with the project's credentials):"),
    `  CREDS=$(${sm} get-secret-value --secret-id ${CREDENTIALS_SECRET_NAME} --query SecretString --output text)`,
    `  curl -s -u "$(echo "$CREDS" | jq -r .project_id):$(echo "$CREDS" | jq -r .secret)" ${stack.stytchUrl}/v1/connected_apps/clients/${app.clientId} | jq .connected_app`,
    `  ${sm} get-secret-value --secret-id ${app.name} --query SecretString --output text | jq -r '.client_secret[-4:]'`,
    "  → inside a window, Stytch's client_secret_last_four is the previous secret's and next_client_secret_last_four AWSCURRENT's;",
    "    once swept, client_secret_last_four is AWSCURRENT's and next_client_secret_last_four is null.",
    `  (M2M: ${stack.stytchUrl}/v1/m2m/clients/${m2m.clientId}, field .m2m_client)`,
    '',
    style.bold('Rotations and sweeps, one line per step and per sweep:'),
  ];
  print(lines.join('\n'));

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    print(`${signal}: stopping the local stack`);
    schedule?.stop();
    clearInterval(watcher);
    clearInterval(sweeper);
    // A sweep under way finishes first: closing the endpoints under it would fail it half-done.
    Promise.resolve(sweeping)
      .then(() => stack.close())
      .then(() => {
        print('stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        print(`could not stop cleanly: ${errorText(error)}`);
        process.exit(1);
      });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/**
 * Serve mode runs for hours: scan only what the function printed since the
 * last scan, then drop it, keeping running totals (memory and scan time stay
 * bounded). One scan at a time: two overlapping would each drop lines the
 * other had not scanned.
 */
const scanTotals = { lines: 0, linesWithSecret: 0, leaked: new Set<string>() };
let scanning: Promise<unknown> = Promise.resolve();
function scanSinceLast(stack: LocalStack): Promise<{ lines: number; linesWithSecret: number; leaked: string[] }> {
  const next = scanning.then(async () => {
    const logged = stack.logs.length;
    const invoked = stack.invocations.length;
    const scan = await stack.scanForSecrets();
    stack.logs.splice(0, logged);
    stack.invocations.splice(0, invoked);
    scanTotals.lines += scan.lines;
    scanTotals.linesWithSecret += scan.linesWithSecret;
    for (const label of scan.leaked) scanTotals.leaked.add(label);
    return { lines: scanTotals.lines, linesWithSecret: scanTotals.linesWithSecret, leaked: [...scanTotals.leaked] };
  });
  scanning = next.catch(() => undefined);
  return next;
}

async function describeSuccess(stack: LocalStack, arn: string): Promise<string> {
  const currentString = await valueAt(stack, arn, 'AWSCURRENT');
  const current = clientSecretOf(currentString);
  const previous = clientSecretOf(await valueAt(stack, arn, 'AWSPREVIOUS'));
  const clientId = (JSON.parse(currentString ?? '{}') as { client_id?: string }).client_id ?? '';
  const state = stack.stytch.clientState(clientId);
  const currentOk = current !== undefined && stack.stytch.isAccepted(clientId, current);
  const previousAccepted = previous !== undefined && stack.stytch.isAccepted(clientId, previous);
  // I: inside its window the previous secret must still work; III: the sweep retires it at the recorded time.
  const window = retirementsOf(await readStateTable(stack)).find((r) => r.secretArn === arn && r.previousLast4 === last4(previous));
  const previousText = !previousAccepted
    ? `AWSPREVIOUS ${fragment(last4(previous))} rejected; ${state.nextClientSecretLast4 === null ? 'Stytch not rotating' : `Stytch STILL ROTATING (next ${fragment(state.nextClientSecretLast4)})`}`
    : window
      ? `AWSPREVIOUS ${fragment(last4(previous))} still accepted until ${clock(window.dueAt)} (overlap window), then the sweep retires it`
      : `AWSPREVIOUS ${fragment(last4(previous))} STILL ACCEPTED and no retirement recorded`;
  const scan = await scanSinceLast(stack);
  return [
    `rotated: AWSCURRENT ${fragment(last4(current))} ${currentOk ? 'accepted' : 'REJECTED'} by Stytch`,
    previousText,
    `${scan.lines} log lines so far, ${scan.linesWithSecret} contain a secret${scan.leaked.length > 0 ? ` (${scan.leaked.join(', ')})` : ''}`,
  ].join('; ');
}

function formatSeconds(seconds: number): string {
  return seconds >= 1 ? `${Number(seconds.toFixed(1))} s` : `${Math.round(seconds * 1000)} ms`;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    print(`${errorText(error)}\n\n${USAGE}`);
    process.exit(2);
  }
  const style = styleFor(process.stdout);
  if (!existsSync(options.bundle)) {
    print(`The built function is missing (${shown(options.bundle)}): run npm run build first (npm start and npm run serve do).`);
    process.exit(1);
  }
  if (options.serve) {
    await serve(options, style);
    return;
  }
  process.exitCode = await runOnce(options, style);
}

main().catch((error: unknown) => {
  const code = (error as { code?: unknown }).code;
  const message = errorText(error);
  print(
    code === 'EADDRINUSE'
      ? `A port is already in use (${message}). Choose others with --sm-port and --stytch-port (0 = any free port).`
      : `The demo failed: ${message}`,
  );
  // A half-started stack may still hold a listening socket.
  process.exit(1);
});
