import { clientKey, type Binding, type ClientRecord } from '../../functions/lib/state/table.js';
import { clientKindOf } from '../../functions/lib/stytch/index.js';
import { COMMON_HELP, parseCommand } from '../args.js';
import { Connection } from '../context.js';
import { refuseProjectSecret } from './project-status.js';
import { commands, credentialsLabel, isoTime, shellQuote, type ExitCode } from '../diagnose.js';
import { CliError } from '../errors.js';
import type { CommandContext, Output } from '../io.js';
import { table as align } from '../render.js';

export const BIND_HELP = (cli: string) => `Usage: ${cli} bind --secret-id ID [--client-id CLIENT] [--project-id PROJECT] [--yes] [options]

Binds a rotated secret to a Stytch client. The function rotates a secret only
for the client it is bound to; the secret's first rotation binds it to the client
and project its value names. After that, a value that names another client,
project or credentials secret is refused, so whoever can only write the secret's
value cannot move rotation onto another client. Rebinding is an administrator's
act: it needs write access to the state table.

Use bind when the change is intended: the secret now holds another client, or
its stytch_credentials_secret_id changed. If the change is not intended, do not
bind: restore the value instead, with the JSON the binding names in secret.json:
  aws secretsmanager put-secret-value --secret-id ID --secret-string file://secret.json

  --client-id CLIENT     default: the client_id in the secret's AWSCURRENT value
  --project-id PROJECT   default: the project_id of the credentials the value uses
  --yes                  apply; without it bind only shows the old and the new binding (dry run)

  ${cli} bind --secret-id ID                            shows the old and new binding
  ${cli} bind --secret-id ID --yes                      binds to what the value names
  ${cli} bind --secret-id ID --client-id CLIENT --yes   binds to another client

The credentials part of the binding is always the value's stytch_credentials_secret_id
(none: the function's default credentials). A client is bound to one secret only:
binding it here unbinds the secret it was bound to, whose rotations are then refused
until it is bound again.

bind needs the function's state table (--state-table NAME or ROTATION_STATE_TABLE).
With --yes it first takes the lease of every client involved (the new one and the
one the secret was bound to), so that it never acts while a rotation step or the
retirement sweep works on them. If someone holds a lease, it waits up to 10 s, then
stops, naming the holder.

Exit code: 0 bound, already bound as asked, or a dry run; 3 usage or access error,
no state table, or a lease stayed held.

${COMMON_HELP}`;

const describeBinding = (b: Pick<Binding, 'clientId' | 'projectId' | 'credentialsSecretId'>) =>
  `client ${b.clientId}, project ${b.projectId}, ${credentialsLabel(b.credentialsSecretId)}`;

export async function bindCommand(argv: string[], ctx: CommandContext): Promise<ExitCode> {
  const parsed = parseCommand('bind', argv, { yes: { type: 'boolean', short: 'y' }, 'client-id': { type: 'string' }, 'project-id': { type: 'string' } }, ctx.cli);
  if (!parsed) {
    ctx.io.out(BIND_HELP(ctx.cli));
    return 0;
  }
  const { common, values } = parsed;
  const { io, runtime } = ctx;
  const id = common.secretId;
  ctx.errorContext.secretId = id;
  const flag = (name: string) => {
    const value = values[name];
    if (value === '') throw new CliError(`bind: --${name} must not be empty.`, { usage: true });
    return typeof value === 'string' ? value : undefined;
  };
  const clientFlag = flag('client-id');
  const projectFlag = flag('project-id');
  const connection = Connection.for(runtime, common, ctx.errorContext);
  const table = await connection.requireState('bind', id);
  await refuseProjectSecret(connection, common.secretId, 'bind', ctx.cli);

  const { arn, name, current } = await connection.readCurrent(id);
  const valueProject = await connection.projectOf(current);
  const wanted: Binding = {
    secretArn: arn,
    clientId: clientFlag ?? current.client_id,
    projectId: projectFlag ?? valueProject,
    credentialsSecretId: current.stytch_credentials_secret_id,
    kind: clientKindOf(current),
  };
  const [secretSide, wantedClient] = await Promise.all([table.readSecretBinding(arn), table.readClient(wanted)]);
  const oldClient = secretSide && clientKey(secretSide) !== clientKey(wanted) ? await table.readClient(secretSide) : undefined;

  const since = secretSide?.boundAt ? `, since ${secretSide.boundAt.replace(/\.\d{3}Z$/, 'Z')}` : '';
  const overview = align([
    ['Secret', `${name} (${arn})`],
    ['Bound now', secretSide ? `${describeBinding(secretSide)}${since}` : 'not bound yet'],
    ['New binding', describeBinding(wanted)],
  ]);
  for (const line of overview) io.out(line);
  for (const note of notes(wanted, { current, valueProject, wantedClient, oldClient, name, retire: commands(id, common.style).retire })) io.out(`Note: ${note}`);

  const already =
    secretSide !== undefined &&
    clientKey(secretSide) === clientKey(wanted) &&
    secretSide.credentialsSecretId === wanted.credentialsSecretId &&
    wantedClient?.binding?.secretArn === arn &&
    wantedClient.binding.credentialsSecretId === wanted.credentialsSecretId;
  ctx.record({ bound: secretSide ? describeBinding(secretSide) : null, wanted: describeBinding(wanted) });
  if (already) {
    ctx.record({ outcome: 'already-bound' });
    io.out('Already bound as asked: nothing to do.');
    return 0;
  }
  const applyCommand = [
    commands(id, common.style).bindApply.replace(/ --yes$/, ''),
    ...(clientFlag ? ['--client-id', shellQuote(clientFlag)] : []),
    ...(projectFlag ? ['--project-id', shellQuote(projectFlag)] : []),
    '--yes',
  ].join(' ');
  if (!values.yes) {
    ctx.record({ outcome: 'dry-run' });
    io.out(`Dry run: nothing was changed. Bind with: ${applyCommand}`);
    return 0;
  }

  // VII: rebinding is an administrator's act, made while no one else changes the clients involved (VI).
  const involved = new Map<string, ClientRecord['ref']>();
  for (const ref of [wanted, ...(secretSide ? [secretSide] : [])]) involved.set(clientKey(ref), { projectId: ref.projectId, clientId: ref.clientId });
  const refs = [...involved.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, ref]) => ref);
  const result = await underLeases(connection, arn, refs, io, () => table.rebind(wanted, new Date(connection.runtime.now())));

  ctx.record({ outcome: 'bound' });
  io.out(`Bound secret ${name} to ${describeBinding(wanted)}. Its next rotation acts on client ${wanted.clientId}.`);
  if (result.previousOfSecret && clientKey(result.previousOfSecret) !== clientKey(wanted)) {
    io.out(`Client ${result.previousOfSecret.clientId} of project ${result.previousOfSecret.projectId} is no longer bound to any secret.`);
  }
  if (result.previousOfClient && result.previousOfClient !== arn) {
    io.out(`Secret ${result.previousOfClient} is no longer bound: its rotations are refused until it is bound again (bind --secret-id ${shellQuote(result.previousOfClient)}).`);
  }
  return 0;
}

/** What the new binding means for rotations and for the clients involved. */
function notes(
  wanted: Binding,
  context: {
    current: { client_id: string };
    valueProject: string;
    wantedClient: ClientRecord | undefined;
    oldClient: ClientRecord | undefined;
    name: string;
    retire: string;
  },
): string[] {
  const out: string[] = [];
  const other = context.wantedClient?.binding?.secretArn;
  if (other && other !== wanted.secretArn) {
    out.push(`client ${wanted.clientId} is bound to secret ${other} now: binding it here unbinds that secret, whose rotations are then refused until it is bound again.`);
  }
  if (wanted.clientId !== context.current.client_id) {
    out.push(`the value of ${context.name} names client ${context.current.client_id}, not ${wanted.clientId}: its rotations stay refused until the value names ${wanted.clientId}.`);
  }
  if (wanted.projectId !== context.valueProject) {
    out.push(
      `the credentials the value uses (${credentialsLabel(wanted.credentialsSecretId)}) are for project ${context.valueProject}, not ${wanted.projectId}: rotations stay refused until they are for ${wanted.projectId}.`,
    );
  }
  const due = context.oldClient?.retirement;
  if (context.oldClient && due) {
    out.push(
      `client ${context.oldClient.ref.clientId} still accepts its previous secret (…${due.previousLast4}), kept by an overlap window until ${isoTime(due.dueAt)}. ` +
        `Once that client is unbound, no sweep retires it: retire it first (${context.retire}, possible while the value still names that client), or rotate it in the Stytch dashboard.`,
    );
  }
  return out;
}

/** Runs `work` holding the leases of `refs` (taken in key order, so two binds never wait on each other in a circle). */
async function underLeases<T>(connection: Connection, secretArn: string, refs: Array<ClientRecord['ref']>, io: Output, work: () => Promise<T>): Promise<T> {
  const [first, ...rest] = refs;
  if (!first) return await work();
  const table = await connection.requireState('bind', secretArn);
  // The lease is taken on the binding the client has now (a client bound to no secret gets a lease-only item).
  const record = await table.readClient(first);
  const binding: Binding = record?.binding ?? { ...first, secretArn, credentialsSecretId: undefined, kind: 'connected_app' };
  return await connection.underLease(binding, 'bind', io, async () => ({ result: await underLeases(connection, secretArn, rest, io, work) }));
}
