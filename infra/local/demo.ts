/**
 * The local demo (DESIGN.md §6).
 *
 *   npm start       one real rotation of a demo Connected App secret on the
 *                   local stack, then a report and a verdict; exit 0 when
 *                   every check passes, 1 otherwise.
 *   npm run serve   the stack on fixed ports (Secrets Manager 4566, Stytch
 *                   4567) with two demo secrets, for the real AWS CLI; one
 *                   line per rotation step as it happens; Ctrl-C stops it.
 *
 * Both run the BUILT function (dist/rotate-stytch-secret/index.mjs), invoked
 * by the Secrets Manager emulator's RotateSecret exactly as the service does.
 * Nothing printed contains a whole secret (invariant V): last fours only.
 */
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import {
  formatOutcomeLine,
  formatReport,
  formatStepLine,
  fragment,
  redact,
  styleFor,
  type Check,
  type StepView,
  type Style,
  type VersionView,
} from './report.js';
import type { RotationEvent } from './secrets-manager/index.js';
import { CREDENTIALS_SECRET_NAME, LOCAL_LAMBDA_ARN, LocalStack, type SeededSecret } from './stack.js';

const DEFAULT_BUNDLE = fileURLToPath(new URL('../../dist/rotate-stytch-secret/index.mjs', import.meta.url));
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** How a bundle path is shown: relative to the project when inside it. */
const shown = (path: string): string => (path.startsWith(PROJECT_ROOT) ? relative(PROJECT_ROOT, path) : path);

/** Fields a real secret carries besides the client's credentials: a rotation must copy them unchanged. */
const DEMO_FIELDS = { environment: 'local-demo', owner: 'platform-team' };
/** Serve mode's rotation rule: `--schedule-scale 8640` makes it fire every 10 s. */
const SERVE_SCHEDULE = 'rate(1 day)';
const DAY_SECONDS = 86_400;

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
  logs: boolean;
}

const USAGE = `Usage: tsx infra/local/demo.ts [--serve] [--sm-port N] [--stytch-port N] [--schedule-scale N] [--logs] [--bundle PATH]

  (no flag)           run one rotation on the local stack and print a verified report (npm start)
  --serve             keep the stack up for the AWS CLI (npm run serve)
  --sm-port N         Secrets Manager port (serve default 4566; 0 = any free port)
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
  const rawScale = values['schedule-scale'];
  const scale = rawScale === undefined ? undefined : Number(rawScale);
  if (scale !== undefined && !(scale > 0 && Number.isFinite(scale))) throw new UsageError(`--schedule-scale must be a positive number, got ${rawScale}.`);
  if (scale !== undefined && !values.serve) throw new UsageError('--schedule-scale only applies with --serve.');
  return {
    serve: values.serve,
    bundle: values.bundle === undefined ? DEFAULT_BUNDLE : resolve(values.bundle),
    smPort: port('--sm-port', values['sm-port']),
    stytchPort: port('--stytch-port', values['stytch-port']),
    scheduleScale: scale,
    logs: values.logs,
  };
}

class UsageError extends Error {
  override name = 'UsageError';
}

// ---------------------------------------------------------------- npm start

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

const STAGE_ORDER = ['AWSCURRENT', 'AWSPENDING', 'AWSPREVIOUS'];
const rank = (stages: string[]) => Math.min(...stages.map((s) => STAGE_ORDER.indexOf(s)).filter((i) => i >= 0), STAGE_ORDER.length);

function versionsOf(stack: LocalStack, secretId: string): VersionView[] {
  return Object.entries(stack.sm.inspect(secretId).versions)
    .map(([id, v]) => ({ id, stages: v.stages, last4: last4(clientSecretOf(v.secretString)) }))
    .sort((a, b) => rank(a.stages) - rank(b.stages));
}

async function valueAt(stack: LocalStack, secretId: string, stage: string): Promise<string | undefined> {
  try {
    return ((await stack.sm.handle('GetSecretValue', { SecretId: secretId, VersionStage: stage })) as { SecretString?: string }).SecretString;
  } catch {
    return undefined;
  }
}

/** "get ×4, rotate_start ×1, rotate ×1": what the function asked Stytch, failures counted apart. */
function stytchCallSummary(stack: LocalStack, clientId: string): string {
  const counts = new Map<string, { ok: number; failed: number }>();
  for (const r of stack.stytch.requests) {
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

async function runOnce(options: Options, style: Style): Promise<number> {
  const started = performance.now();
  const stack = await LocalStack.start({ bundlePath: options.bundle, secretsManagerPort: options.smPort, stytchPort: options.stytchPort, echoLogs: options.logs });
  try {
    const seeded = await stack.seedSecret({ extraFields: DEMO_FIELDS });
    const { clientId } = seeded;
    const oldString = await valueAt(stack, seeded.name, 'AWSCURRENT');
    const oldSecret = clientSecretOf(oldString);
    const stytchBefore = stack.stytch.clientState(clientId);
    const versionsBefore = versionsOf(stack, seeded.name);
    stack.stytch.resetRequests();

    // RotateSecret → the built handler for createSecret, setSecret, testSecret, finishSecret.
    await stack.rotate(seeded.name);

    const record = stack.sm.rotationHistory(seeded.name).at(-1);
    const newString = await valueAt(stack, seeded.name, 'AWSCURRENT');
    const newSecret = clientSecretOf(newString);
    const previousString = await valueAt(stack, seeded.name, 'AWSPREVIOUS');
    const stytchAfter = stack.stytch.clientState(clientId);
    const versionsAfter = versionsOf(stack, seeded.name);
    const scan = await stack.scanForSecrets();
    const acceptedStarts = stack.stytch.requests.filter((r) => r.clientId === clientId && r.operation.endsWith('.rotate_start') && r.status === 200).length;

    const checks: Check[] = [
      {
        ok: record?.outcome === 'succeeded',
        text: 'RotateSecret ran the four steps to the end',
        why: `the rotation ${record?.outcome ?? 'never started'}`,
      },
      {
        ok: oldSecret !== undefined && !stack.stytch.isAccepted(clientId, oldSecret),
        text: `the old secret (${fragment(last4(oldSecret))}) is rejected by Stytch`,
        why: 'Stytch still accepts it',
      },
      {
        ok: newSecret !== undefined && newSecret !== oldSecret && stack.stytch.isAccepted(clientId, newSecret),
        text: `the new AWSCURRENT (${fragment(last4(newSecret))}) is accepted by Stytch`,
        why: newSecret === oldSecret ? 'AWSCURRENT did not change' : 'Stytch rejects it',
      },
      {
        ok: stytchAfter.nextClientSecretLast4 === null && stytchAfter.clientSecretLast4 === last4(newSecret),
        text: 'Stytch has no rotation in progress and holds AWSCURRENT as its secret',
        why: `client_secret_last_four ${stytchAfter.clientSecretLast4 ?? '-'}, next_client_secret_last_four ${stytchAfter.nextClientSecretLast4 ?? '-'}`,
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
        ok: scan.linesWithSecret === 0,
        text: `${scan.lines} log lines, ${scan.linesWithSecret} contain a secret`,
        why: `found ${scan.leaked.join(', ')}`,
      },
    ];

    const report = formatReport(
      {
        bundle: shown(options.bundle),
        secretsManagerUrl: stack.secretsManagerUrl,
        stytchUrl: stack.stytchUrl,
        secretName: seeded.name,
        client: `Connected App ${clientId}`,
        outcome: record?.outcome ?? 'not started',
        attempts: (record?.attempts ?? []).map((a) => a.steps.map((step): StepView => ({ ...step }))),
        stytchCalls: stytchCallSummary(stack, clientId),
        stytchBefore: { secretLast4: stytchBefore.clientSecretLast4, nextSecretLast4: stytchBefore.nextClientSecretLast4 },
        stytchAfter: { secretLast4: stytchAfter.clientSecretLast4, nextSecretLast4: stytchAfter.nextClientSecretLast4 },
        versionsBefore,
        versionsAfter,
        checks,
        totalMs: performance.now() - started,
      },
      style,
    );
    // Error messages come from the function; redact is a guard, the log scan above is the check.
    stdoutWrite(redact(report, (await stack.knownSecrets()).map((s) => s.value)));
    return checks.every((c) => c.ok) ? 0 : 1;
  } finally {
    await stack.close();
  }
}

// ---------------------------------------------------------------- npm run serve

async function serve(options: Options, style: Style): Promise<void> {
  const smPort = options.smPort ?? 4566;
  const stytchPort = options.stytchPort ?? 4567;
  const stack = await LocalStack.start({ bundlePath: options.bundle, secretsManagerPort: smPort, stytchPort, echoLogs: options.logs });
  const secrets: SeededSecret[] = [
    await stack.seedSecret({ kind: 'connected_app', extraFields: DEMO_FIELDS }),
    await stack.seedSecret({ kind: 'm2m', extraFields: DEMO_FIELDS }),
  ];
  const nameOf = (arn: string): string => secrets.find((s) => s.arn === arn)?.name ?? stack.sm.inspect(arn).name;
  const guard = async (text: string) => redact(text, (await stack.knownSecrets()).map((s) => s.value));

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
      print(await guard(line(false, error instanceof Error ? error.message : String(error))));
      throw error;
    }
  });

  // The outcome of each rotation, from the service events Secrets Manager emits.
  let seen = 0;
  const reportOutcomes = async (): Promise<void> => {
    const events = stack.sm.serviceEvents;
    while (seen < events.length) {
      const event = events[seen++]!;
      const name = nameOf(event.secretArn);
      const at = new Date(event.time);
      if (event.eventName === 'RotationSucceeded') {
        print(formatOutcomeLine(style, at, name, await describeSuccess(stack, event.secretArn), true));
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
    (reporting = reporting
      .then(reportOutcomes)
      .catch((error: unknown) => print(`could not report a rotation outcome: ${error instanceof Error ? error.message : String(error)}`)));
  const watcher = setInterval(() => void flushOutcomes(), 100);

  // Rotation attached without rotating: Secrets Manager runs testSecret as a configuration test.
  print(style.bold('Turning rotation on (RotateImmediately=false: Secrets Manager runs testSecret as a configuration test):'));
  for (const secret of secrets) await stack.rotate(secret.name, { rotateImmediately: false, schedule: SERVE_SCHEDULE });
  await flushOutcomes();

  const schedule = options.scheduleScale === undefined ? undefined : stack.sm.startSchedule({ tickMs: 200, scale: options.scheduleScale });

  const sm = stack.secretsManagerUrl;
  const aws = `aws --endpoint-url ${sm} secretsmanager`;
  const [app, m2m] = secrets as [SeededSecret, SeededSecret];
  const lines = [
    '',
    style.bold('The local stack is up (Ctrl-C stops it).'),
    `  Secrets Manager  ${sm}`,
    `  Stytch           ${stack.stytchUrl}`,
    `  Rotation Lambda  ${LOCAL_LAMBDA_ARN}  (the built ${shown(options.bundle)})`,
    `  Secrets          ${app.name}  Connected App ${app.clientId}`,
    `                   ${m2m.name}  M2M client ${m2m.clientId}`,
    `                   ${CREDENTIALS_SECRET_NAME}  the Stytch project credentials the function uses`,
    `  Rotation         on for both (${SERVE_SCHEDULE}), ${
      options.scheduleScale === undefined
        ? 'no schedule running (--schedule-scale N runs it N times faster)'
        : `schedule running ${options.scheduleScale}× faster: every ${formatSeconds(DAY_SECONDS / options.scheduleScale)}`
    }`,
    '',
    style.bold('Rotate with the AWS CLI (another shell):'),
    '  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=',
    `  ${aws} rotate-secret --secret-id ${app.name} --rotation-lambda-arn ${LOCAL_LAMBDA_ARN}`,
    `  ${aws} describe-secret --secret-id ${app.name}`,
    `  ${aws} get-secret-value --secret-id ${app.name}`,
    `  ${aws} rotate-secret --secret-id ${m2m.name}`,
    '',
    style.bold("Check the result against the Stytch emulator (GET client, with the project's credentials):"),
    `  CREDS=$(${aws} get-secret-value --secret-id ${CREDENTIALS_SECRET_NAME} --query SecretString --output text)`,
    `  curl -s -u "$(echo "$CREDS" | jq -r .project_id):$(echo "$CREDS" | jq -r .secret)" ${stack.stytchUrl}/v1/connected_apps/clients/${app.clientId} | jq .connected_app`,
    `  ${aws} get-secret-value --secret-id ${app.name} --query SecretString --output text | jq -r '.client_secret[-4:]'`,
    "  → Stytch's client_secret_last_four equals the last four of AWSCURRENT, and next_client_secret_last_four is null.",
    `  (M2M: ${stack.stytchUrl}/v1/m2m/clients/${m2m.clientId}, field .m2m_client)`,
    '',
    style.bold('Rotations, one line per step:'),
  ];
  print(lines.join('\n'));

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    print(`${signal}: stopping the local stack`);
    schedule?.stop();
    clearInterval(watcher);
    stack
      .close()
      .then(() => {
        print('stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        print(`could not stop cleanly: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/**
 * Serve mode runs for hours: scan only what the function printed since the
 * last scan, then drop it, keeping running totals (memory and scan time stay
 * bounded).
 */
const scanTotals = { lines: 0, linesWithSecret: 0, leaked: new Set<string>() };
async function scanSinceLast(stack: LocalStack): Promise<{ lines: number; linesWithSecret: number; leaked: string[] }> {
  const logged = stack.logs.length;
  const invoked = stack.invocations.length;
  const scan = await stack.scanForSecrets();
  stack.logs.splice(0, logged);
  stack.invocations.splice(0, invoked);
  scanTotals.lines += scan.lines;
  scanTotals.linesWithSecret += scan.linesWithSecret;
  for (const label of scan.leaked) scanTotals.leaked.add(label);
  return { lines: scanTotals.lines, linesWithSecret: scanTotals.linesWithSecret, leaked: [...scanTotals.leaked] };
}

async function describeSuccess(stack: LocalStack, arn: string): Promise<string> {
  const currentString = await valueAt(stack, arn, 'AWSCURRENT');
  const current = clientSecretOf(currentString);
  const previous = clientSecretOf(await valueAt(stack, arn, 'AWSPREVIOUS'));
  const clientId = (JSON.parse(currentString ?? '{}') as { client_id?: string }).client_id ?? '';
  const state = stack.stytch.clientState(clientId);
  const currentOk = current !== undefined && stack.stytch.isAccepted(clientId, current);
  const previousRejected = previous === undefined || !stack.stytch.isAccepted(clientId, previous);
  const scan = await scanSinceLast(stack);
  return [
    `rotated: AWSCURRENT ${fragment(last4(current))} ${currentOk ? 'accepted' : 'REJECTED'} by Stytch`,
    `AWSPREVIOUS ${fragment(last4(previous))} ${previousRejected ? 'rejected' : 'STILL ACCEPTED'}`,
    state.nextClientSecretLast4 === null ? 'Stytch not rotating' : `Stytch STILL ROTATING (next ${fragment(state.nextClientSecretLast4)})`,
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
    print(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
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
  const message = error instanceof Error ? error.message : String(error);
  print(
    code === 'EADDRINUSE'
      ? `A port is already in use (${message}). Choose others with --sm-port and --stytch-port (0 = any free port).`
      : `The demo failed: ${message}`,
  );
  // A half-started stack may still hold a listening socket.
  process.exit(1);
});
