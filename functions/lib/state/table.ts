import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { InvalidInputError } from '../errors.js';
import type { BindingKind } from '../schemas.js';

/**
 * The state table (DESIGN.md §4a): the function's only memory besides Secrets
 * Manager. Partition key `pk` (String), TTL attribute `expires_at` (epoch
 * seconds). Two kinds of item, each named for what it is in its key:
 *
 *   client#<project_id>#<client_id>   one per Stytch client: the binding to its
 *                                     secret (VII), the lease (VI) and the due
 *                                     retirement of its previous secret (III)
 *   secret#<secret ARN>               the binding seen from the secret (VII)
 *
 * The lease lives on the client's item, next to the binding, so that one
 * conditional write both checks the binding and takes the lease: two table
 * calls per step (take, give back). An expired lease is simply taken over by
 * the next holder. `expires_at` is set only on an item that holds nothing but
 * a lease (an operator's lease on a client no secret is bound to), so TTL
 * removes it once the lease is over; bound items never expire.
 *
 * Invariant kept by every writer: `client#P#X.secret_arn = A` implies
 * `secret#A` names (P, X). The binding is written secret side first, then
 * client side, and an administrator's rebinding detaches the client side
 * first. So a lease taken on the condition `secret_arn = A` proves the secret
 * is bound to that client and to no other.
 *
 * A secret or client an administrator's rebinding left without a partner
 * carries `unbound_at`: it is never bound again automatically (a value
 * naming it is refused), only by the administrator. Otherwise whoever can
 * write a secret's value could claim the client set free.
 */

export type DynamoDBSend = Pick<DynamoDBClient, 'send'>;

/** A Stytch client, in its project. */
export interface ClientRef {
  projectId: string;
  clientId: string;
}

/** A rotated secret bound to a Stytch client (VII). */
export interface Binding extends ClientRef {
  secretArn: string;
  /** The rotated secret's `stytch_credentials_secret_id`; undefined means the function's default credentials. */
  credentialsSecretId: string | undefined;
  /**
   * Which API the client is rotated through: a value may not switch it (the same id under another kind
   * could be another client). Always given by a caller; read from an item that predates it, undefined.
   */
  kind: BindingKind | undefined;
}

/** The previous secret of a rotation, due to be retired at Stytch once the overlap window ends (III). */
export interface Retirement {
  /** Epoch ms: not before (the window ends). */
  dueAt: number;
  /** The version AWSCURRENT moved to, and its secret's last four (Stytch's next secret during the window). */
  versionId: string;
  last4: string;
  /** The version that was AWSCURRENT before, and its secret's last four (Stytch's current secret during the window). */
  previousVersionId: string;
  previousLast4: string;
  /** A project secret's (DESIGN.md §4b): the id of the previous secret, deleted when the window ends. */
  previousSecretId?: string | undefined;
  /** Epoch ms AWSCURRENT moved (a project secret's: Stytch's last use after it means someone still uses the previous secret). */
  movedAt?: number | undefined;
  /** A project secret's deletion was already put off once because the previous secret was still in use. */
  deferred?: boolean | undefined;
}

/**
 * A project secret this function created for a version (DESIGN.md §4b): written under the lease just
 * before the create call (intent, no id yet) and again with the id it got. Only a secret recorded here
 * is ever deleted by a cancellation (II); an intent without an id after a crash makes the next
 * createSecret report any secret created meanwhile that no label holds.
 */
export interface CreatedSecret {
  versionId: string;
  /** Epoch ms just before the create call. */
  at: number;
  secretId: string | undefined;
}

export interface LeaseInfo {
  holder: string;
  /** Epoch ms. */
  until: number;
  /** What the holder is doing, for messages: e.g. `createSecret of version …`. */
  what: string;
}

/** What the table holds for one client. */
export interface ClientRecord {
  ref: ClientRef;
  binding: Binding | undefined;
  boundAt: string | undefined;
  /** An administrator's rebinding left this client without a secret: only an administrator binds it again. */
  unboundAt: string | undefined;
  lease: LeaseInfo | undefined;
  retirement: Retirement | undefined;
  created?: CreatedSecret | undefined;
}

export interface LeaseRequest {
  /**
   * The binding the caller acts under: the lease is taken only if the client
   * is bound to exactly this (secret, credentials). With `bind`, an unbound
   * client and secret are bound to each other first (a secret's first
   * rotation); without, an unbound client gets a lease-only item.
   */
  binding: Binding;
  bind: boolean;
  holder: string;
  what: string;
  /** Epoch ms until which the lease holds: the holder's deadline plus a margin for a request in flight (VI). */
  until: number;
  /** The caller's clock (epoch ms): a lease whose `until` is before it has expired. */
  now: number;
  /** Written together with the lease (finishSecret's retirement intent). */
  retirement?: Retirement | undefined;
}

export type AcquireResult =
  | {
      kind: 'acquired';
      /** The client's record just before the lease was taken. */
      previous: ClientRecord | undefined;
      /** The lease was taken over from a holder whose lease had expired. */
      tookOverExpired: LeaseInfo | undefined;
      /** This call created the binding (a secret's first rotation). */
      bound: boolean;
    }
  | { kind: 'held'; lease: LeaseInfo };

/** A value names a client, project or credentials secret other than the one its secret is bound to (VII). */
export class BindingError extends InvalidInputError {
  constructor(message: string) {
    super(message);
    this.name = 'BindingError';
  }
}

const CLIENT_PREFIX = 'client#';
export const clientKey = (ref: ClientRef): string => `${CLIENT_PREFIX}${ref.projectId}#${ref.clientId}`;
export const secretKey = (arn: string): string => `secret#${arn}`;

const isConditionFailure = (error: unknown): boolean => error instanceof Error && error.name === 'ConditionalCheckFailedException';

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });
type Item = Record<string, AttributeValue>;
const str = (item: Item, name: string): string | undefined => item[name]?.S;
const num = (item: Item, name: string): number | undefined => (item[name]?.N === undefined ? undefined : Number(item[name]!.N));

/** One day: how long a lease-only item outlives its lease before TTL removes it. */
const LEASE_ONLY_TTL_S = 86_400;

export class StateTable {
  private readonly client: DynamoDBSend;

  constructor(
    client: DynamoDBSend,
    readonly tableName: string,
    /** Turns configuration mistakes into a message that says what to fix (the CLI passes its own); anything else passes through. */
    explain: (error: unknown, tableName: string) => unknown = explainTableError,
  ) {
    this.client = {
      send: (async (command: Parameters<DynamoDBSend['send']>[0]) => {
        try {
          return await client.send(command);
        } catch (error) {
          throw explain(error, tableName);
        }
      }) as DynamoDBSend['send'],
    };
  }

  // ------------------------------------------------------------------ reads

  async readClient(ref: ClientRef): Promise<ClientRecord | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: S(clientKey(ref)) }, ConsistentRead: true }));
    return out.Item ? toClientRecord(out.Item) : undefined;
  }

  /** The binding recorded on the secret's side, if any. */
  async readSecretBinding(secretArn: string): Promise<(Binding & { boundAt: string | undefined }) | undefined> {
    const side = await this.readSecretSide(secretArn);
    return side?.kind === 'bound' ? side.binding : undefined;
  }

  /** The secret's side as it is: bound, unbound by an administrator, or nothing yet. */
  async readSecretSide(
    secretArn: string,
  ): Promise<{ kind: 'bound'; binding: Binding & { boundAt: string | undefined } } | { kind: 'unbound'; unboundAt: string } | undefined> {
    const out = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: S(secretKey(secretArn)) }, ConsistentRead: true }));
    if (!out.Item) return undefined;
    const unboundAt = str(out.Item, 'unbound_at');
    if (unboundAt !== undefined && str(out.Item, 'client_id') === undefined) return { kind: 'unbound', unboundAt };
    return { kind: 'bound', binding: { ...bindingOf(out.Item, secretArn), boundAt: str(out.Item, 'bound_at') } };
  }

  /**
   * Refuses a value whose client, project or credentials secret differ from
   * the secret's binding, without creating one (VII). For callers that change
   * nothing (Secrets Manager's configuration test, `status`).
   */
  async checkBinding(binding: Binding): Promise<'bound' | 'unbound'> {
    const [side, client] = await Promise.all([this.readSecretSide(binding.secretArn), this.readClient(binding)]);
    if (side?.kind === 'unbound') throw secretUnboundError(binding, side.unboundAt);
    if (side) assertSameBinding(side.binding, binding);
    if (client?.binding) assertClientBoundTo(client.binding, binding);
    else if (client?.unboundAt) throw clientUnboundError(binding, client.unboundAt);
    return side && client?.binding ? 'bound' : 'unbound';
  }

  /** Client items whose retirement is due at `now` (a consistent scan, page by page). */
  async *dueRetirements(now: number): AsyncGenerator<ClientRecord> {
    let start: Item | undefined;
    do {
      const out = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          ConsistentRead: true,
          FilterExpression: 'retire_due <= :now',
          ExpressionAttributeValues: { ':now': N(now) },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      // Stryker disable next-line ArrayDeclaration: DynamoDB's Scan always answers Items (empty when nothing matches); the fallback only satisfies the SDK's optional type.
      for (const item of out.Items ?? []) {
        // Every item has pk, the table's partition key (String).
        if (str(item, 'pk')!.startsWith(CLIENT_PREFIX)) yield toClientRecord(item);
      }
      start = out.LastEvaluatedKey;
    } while (start);
  }

  // ------------------------------------------------------------------ the lease (VI) and the binding (VII)

  /**
   * Takes the lease on the request's client, if it is free or expired and the
   * client is bound to the request's secret and credentials. Happy path: one
   * conditional write. Throws BindingError when the binding disagrees.
   */
  async acquire(request: LeaseRequest): Promise<AcquireResult> {
    for (let round = 0; ; round++) {
      const taken = await this.tryTake(request);
      if (taken) return taken;
      // Why did the condition fail? Read the item (consistent) and decide.
      const record = await this.readClient(request.binding);
      if (record?.binding) assertClientBoundTo(record.binding, request.binding);
      if (record?.lease?.holder === request.holder && (record.binding || !request.bind)) {
        // Ours already: the SDK retried a write whose first answer was lost after it took effect.
        return { kind: 'acquired', previous: record, tookOverExpired: undefined, bound: false };
      }
      if (record?.binding) {
        if (record.lease && record.lease.until >= request.now) return { kind: 'held', lease: record.lease };
      } else if (record?.lease && record.lease.until >= request.now) {
        return { kind: 'held', lease: record.lease };
      } else if (request.bind && record?.unboundAt) {
        throw clientUnboundError(request.binding, record.unboundAt);
      } else if (request.bind) {
        const bound = await this.bindAndTake(request);
        if (bound) return bound;
      } else {
        const leaseOnly = await this.takeLeaseOnly(request);
        if (leaseOnly) return leaseOnly;
      }
      // The item changed between the write and the read (a lease ended, a twin bound it): look again.
      if (round >= 5) throw new Error(`The state table item ${clientKey(request.binding)} kept changing while taking its lease; try again.`);
    }
  }

  /**
   * Gives the lease back, and in the same write sets (a Retirement) or clears
   * (null) the due retirement. Returns false when the lease was no longer this
   * holder's (it expired and was taken over): nothing is written then.
   */
  async release(ref: ClientRef, holder: string, retirement?: Retirement | null): Promise<boolean> {
    // released_by tells a retried give-back whose first answer was lost that it did land.
    const set: string[] = ['released_by = :holder'];
    const remove = ['lease_holder', 'lease_until', 'lease_what'];
    const values: Item = { ':holder': S(holder) };
    if (retirement === null) remove.push(...RETIREMENT_ATTRIBUTES);
    if (retirement) Object.assign(values, retirementValues(retirement, set));
    let after: Item;
    try {
      const out = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: S(clientKey(ref)) },
          UpdateExpression: `SET ${set.join(', ')} REMOVE ${remove.join(', ')}`,
          ConditionExpression: 'lease_holder = :holder',
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      // The condition (lease_holder = :holder) needs the item, so ALL_NEW always returns it.
      after = out.Attributes!;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      // Lost only if another holder took it over: a retried give-back whose first answer was lost finds its
      // own released_by, or no lease at all.
      const out = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: { pk: S(clientKey(ref)) }, ConsistentRead: true }));
      if (str(out.Item ?? {}, 'released_by') === holder) return true;
      // The write's condition failed, so a lease still there is another holder's.
      return !(out.Item && toClientRecord(out.Item).lease);
    }
    // An item that held nothing but this lease goes away with it (bound items, clients an
    // administrator set free, and those that still owe a retirement, stay).
    if (!after.secret_arn && !after.retire_due && !after.unbound_at) {
      await this.client
        .send(
          new DeleteItemCommand({
            TableName: this.tableName,
            Key: { pk: S(clientKey(ref)) },
            ConditionExpression:
              'attribute_not_exists(secret_arn) AND attribute_not_exists(retire_due) AND attribute_not_exists(unbound_at) AND attribute_not_exists(lease_holder)',
          }),
        )
        .catch((error: unknown) => {
          // Taken or bound meanwhile: it is someone else's now. TTL removes it otherwise.
          if (!isConditionFailure(error)) throw error;
        });
    }
    return true;
  }

  // ------------------------------------------------------------------ an administrator's acts (the CLI)

  /**
   * Binds a secret to a client, replacing whatever either was bound to before
   * (VII: rebinding is an administrator's act). The caller holds the leases
   * of the clients involved. Client sides are detached first, so the
   * invariant in the file comment holds at every instant.
   */
  async rebind(binding: Binding, now: Date): Promise<{ previousOfSecret: Binding | undefined; previousOfClient: string | undefined }> {
    const previousOfSecret = await this.readSecretBinding(binding.secretArn);
    const client = await this.readClient(binding);
    const previousOfClient = client?.binding?.secretArn;
    if (previousOfSecret && clientKey(previousOfSecret) !== clientKey(binding)) await this.detachClient(previousOfSecret, binding.secretArn, now.toISOString());
    const boundAt = now.toISOString();
    if (previousOfClient && previousOfClient !== binding.secretArn) {
      await this.detachClient(binding, previousOfClient, boundAt);
      // The secret set free keeps a marker: its rotations are refused until an administrator binds it again.
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: { pk: S(secretKey(previousOfClient)), kind: S('secret'), secret_arn: S(previousOfClient), unbound_at: S(boundAt) },
          ConditionExpression: 'attribute_not_exists(pk) OR (project_id = :p AND client_id = :c)',
          ExpressionAttributeValues: { ':p': S(binding.projectId), ':c': S(binding.clientId) },
        }),
      );
    }
    await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: secretItem(binding, boundAt) }));
    const values: Item = { ':arn': S(binding.secretArn), ':at': S(boundAt), ':p': S(binding.projectId), ':c': S(binding.clientId), ':k': S(binding.kind ?? 'connected_app') };
    const set = ['secret_arn = :arn', 'bound_at = :at', 'project_id = :p', 'client_id = :c', 'client_kind = :k'];
    const remove = ['expires_at', 'unbound_at'];
    if (binding.credentialsSecretId === undefined) remove.push('credentials_secret_id');
    else {
      set.push('credentials_secret_id = :creds');
      values[':creds'] = S(binding.credentialsSecretId);
    }
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: { pk: S(clientKey(binding)) },
        UpdateExpression: `SET ${set.join(', ')} REMOVE ${remove.join(', ')}`,
        ExpressionAttributeValues: values,
      }),
    );
    return { previousOfSecret, previousOfClient };
  }

  /**
   * Removes a client's binding to `secretArn` (keeping its lease and retirement fields), if it still has
   * that binding, and marks it unbound: it is bound again only by an administrator.
   */
  private async detachClient(ref: ClientRef, secretArn: string, at: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: S(clientKey(ref)) },
          UpdateExpression: 'SET unbound_at = :at REMOVE secret_arn, credentials_secret_id, bound_at, client_kind',
          ConditionExpression: 'secret_arn = :arn',
          ExpressionAttributeValues: { ':arn': S(secretArn), ':at': S(at) },
        }),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  /**
   * Records (or with null, clears) the project secret this lease holder is creating. Returns false when
   * the lease is no longer the holder's: nothing is written then, and the caller must not go on (VI).
   */
  async markCreated(ref: ClientRef, holder: string, created: CreatedSecret | null): Promise<boolean> {
    const values: Item = { ':me': S(holder) };
    let update = 'REMOVE created_version, created_at, created_secret_id';
    if (created) {
      values[':cv'] = S(created.versionId);
      values[':ca'] = N(created.at);
      update = 'SET created_version = :cv, created_at = :ca';
      if (created.secretId !== undefined) {
        values[':cs'] = S(created.secretId);
        update += ', created_secret_id = :cs';
      } else {
        update += ' REMOVE created_secret_id';
      }
    }
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: S(clientKey(ref)) },
          UpdateExpression: update,
          ConditionExpression: 'lease_holder = :me',
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  // ------------------------------------------------------------------ internals

  /** The happy path: one conditional write on a bound client item. */
  private async tryTake(request: LeaseRequest): Promise<AcquireResult | undefined> {
    const { binding } = request;
    const set = ['lease_holder = :holder', 'lease_until = :until', 'lease_what = :what'];
    const values: Item = {
      ':holder': S(request.holder),
      ':until': N(request.until),
      ':what': S(request.what),
      ':now': N(request.now),
      ':arn': S(binding.secretArn),
    };
    if (request.retirement) Object.assign(values, retirementValues(request.retirement, set));
    let credentials = 'attribute_not_exists(credentials_secret_id)';
    if (binding.credentialsSecretId !== undefined) {
      credentials = 'credentials_secret_id = :creds';
      values[':creds'] = S(binding.credentialsSecretId);
    }
    // VII: the kind is recorded on an item written before kinds were, by a caller that knows it (a step, from the value).
    // A caller that read the binding from such an item (the sweep, the CLI) knows none: it neither checks nor records one.
    let kind = '';
    if (binding.kind !== undefined) {
      kind = ' AND (client_kind = :k OR attribute_not_exists(client_kind))';
      set.push('client_kind = :k');
      values[':k'] = S(binding.kind);
    }
    try {
      const out = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: S(clientKey(binding)) },
          UpdateExpression: `SET ${set.join(', ')}`,
          ConditionExpression: `secret_arn = :arn${kind} AND ${credentials} AND (attribute_not_exists(lease_until) OR lease_until < :now)`,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_OLD',
        }),
      );
      // The condition (secret_arn = :arn) needs the item, so ALL_OLD always returns it.
      const previous = toClientRecord(out.Attributes!);
      return { kind: 'acquired', previous, tookOverExpired: previous.lease, bound: false };
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  /** A secret's first rotation: bind secret and client to each other (secret side first), taking the lease in the client-side write. */
  private async bindAndTake(request: LeaseRequest): Promise<AcquireResult | undefined> {
    const { binding } = request;
    const boundAt = new Date(request.now).toISOString();
    let createdSecretSide = false;
    try {
      await this.client.send(
        new PutItemCommand({ TableName: this.tableName, Item: secretItem(binding, boundAt), ConditionExpression: 'attribute_not_exists(pk)' }),
      );
      createdSecretSide = true;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = await this.readSecretSide(binding.secretArn);
      // Gone again in between: start over.
      if (!existing) return undefined;
      if (existing.kind === 'unbound') throw secretUnboundError(binding, existing.unboundAt);
      assertSameBinding(existing.binding, binding);
    }
    const set = [
      'secret_arn = :arn',
      'bound_at = :at',
      'project_id = :p',
      'client_id = :c',
      'client_kind = :k',
      'lease_holder = :holder',
      'lease_until = :until',
      'lease_what = :what',
    ];
    const values: Item = {
      ':arn': S(binding.secretArn),
      ':at': S(boundAt),
      ':p': S(binding.projectId),
      ':c': S(binding.clientId),
      ':k': S(binding.kind ?? 'connected_app'),
      ':holder': S(request.holder),
      ':until': N(request.until),
      ':what': S(request.what),
      ':now': N(request.now),
    };
    if (binding.credentialsSecretId !== undefined) {
      set.push('credentials_secret_id = :creds');
      values[':creds'] = S(binding.credentialsSecretId);
    }
    if (request.retirement) Object.assign(values, retirementValues(request.retirement, set));
    try {
      const out = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: S(clientKey(binding)) },
          UpdateExpression: `SET ${set.join(', ')} REMOVE expires_at`,
          // Never a client an administrator set free (unbound_at): only an administrator binds it again.
          ConditionExpression: 'attribute_not_exists(secret_arn) AND attribute_not_exists(unbound_at) AND (attribute_not_exists(lease_until) OR lease_until < :now)',
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_OLD',
        }),
      );
      const previous = out.Attributes ? toClientRecord(out.Attributes) : undefined;
      return { kind: 'acquired', previous, tookOverExpired: previous?.lease, bound: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    const record = await this.readClient(binding);
    if (((record?.binding && record.binding.secretArn !== binding.secretArn) || record?.unboundAt) && createdSecretSide) {
      // The client was bound to another secret meanwhile: undo this secret's half, which names a client it cannot have.
      await this.client
        .send(
          new DeleteItemCommand({
            TableName: this.tableName,
            Key: { pk: S(secretKey(binding.secretArn)) },
            ConditionExpression: 'bound_at = :at AND client_id = :c',
            ExpressionAttributeValues: { ':at': S(boundAt), ':c': S(binding.clientId) },
          }),
        )
        .catch(() => undefined); // best effort: a leftover only blocks this secret, never another client
    }
    return undefined;
  }

  /** A lease on a client no secret is bound to (an operator's act): the item expires with TTL. */
  private async takeLeaseOnly(request: LeaseRequest): Promise<AcquireResult | undefined> {
    const values: Item = {
      ':p': S(request.binding.projectId),
      ':c': S(request.binding.clientId),
      ':holder': S(request.holder),
      ':until': N(request.until),
      ':what': S(request.what),
      ':now': N(request.now),
    };
    const take = async (withTtl: boolean) =>
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { pk: S(clientKey(request.binding)) },
          UpdateExpression: `SET project_id = :p, client_id = :c, lease_holder = :holder, lease_until = :until, lease_what = :what${withTtl ? ', expires_at = :exp' : ''}`,
          // TTL only for an item that holds nothing else: a client that still owes a retirement, or that an
          // administrator set free, must not expire.
          ConditionExpression: `attribute_not_exists(secret_arn) AND ${withTtl ? 'attribute_not_exists(retire_due) AND attribute_not_exists(unbound_at) AND ' : ''}(attribute_not_exists(lease_until) OR lease_until < :now)`,
          ExpressionAttributeValues: withTtl ? { ...values, ':exp': N(Math.ceil(request.until / 1000) + LEASE_ONLY_TTL_S) } : values,
          ReturnValues: 'ALL_OLD',
        }),
      );
    for (const withTtl of [true, false]) {
      try {
        const out = await take(withTtl);
        const previous = out.Attributes ? toClientRecord(out.Attributes) : undefined;
        return { kind: 'acquired', previous, tookOverExpired: previous?.lease, bound: false };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    }
    return undefined;
  }
}

function explainTableError(error: unknown, tableName: string): unknown {
  if (!(error instanceof Error)) return error;
  if (error.name === 'ResourceNotFoundException') {
    return new InvalidInputError(
      `The state table ${tableName} does not exist in this account and region: deploy it with serverless.yml, or point ROTATION_STATE_TABLE at a table with partition key pk (String).`,
      { cause: error },
    );
  }
  if (error.name === 'AccessDeniedException') {
    return new InvalidInputError(
      `The function may not use the state table ${tableName}: its role needs dynamodb:GetItem, PutItem, UpdateItem, DeleteItem and Scan on that table (serverless.yml grants them).`,
      { cause: error },
    );
  }
  return error;
}

// ------------------------------------------------------------------ items

const RETIREMENT_ATTRIBUTES = [
  'retire_due',
  'retire_version',
  'retire_last4',
  'retire_previous_version',
  'retire_previous_last4',
  'retire_previous_secret_id',
  'retire_moved_at',
  'retire_deferred',
];

function retirementValues(r: Retirement, set: string[]): Item {
  set.push(
    'retire_due = :rdue',
    'retire_version = :rver',
    'retire_last4 = :rl4',
    'retire_previous_version = :rpver',
    'retire_previous_last4 = :rpl4',
    // Always written (empty, 0), so a record never keeps a field of the one it replaced.
    'retire_previous_secret_id = :rpsid',
    'retire_moved_at = :rmoved',
    'retire_deferred = :rdef',
  );
  return {
    ':rdue': N(r.dueAt),
    ':rver': S(r.versionId),
    ':rl4': S(r.last4),
    ':rpver': S(r.previousVersionId),
    ':rpl4': S(r.previousLast4),
    ':rpsid': S(r.previousSecretId ?? ''),
    ':rmoved': N(r.movedAt ?? 0),
    ':rdef': N(r.deferred ? 1 : 0),
  };
}

function secretItem(binding: Binding, boundAt: string): Item {
  const item: Item = {
    pk: S(secretKey(binding.secretArn)),
    kind: S('secret'),
    secret_arn: S(binding.secretArn),
    project_id: S(binding.projectId),
    client_id: S(binding.clientId),
    bound_at: S(boundAt),
  };
  if (binding.kind !== undefined) item.client_kind = S(binding.kind);
  if (binding.credentialsSecretId !== undefined) item.credentials_secret_id = S(binding.credentialsSecretId);
  return item;
}

function bindingOf(item: Item, secretArn: string): Binding {
  return {
    secretArn,
    projectId: str(item, 'project_id') ?? '',
    clientId: str(item, 'client_id') ?? '',
    credentialsSecretId: str(item, 'credentials_secret_id'),
    kind: str(item, 'client_kind') as BindingKind | undefined,
  };
}

function toClientRecord(item: Item): ClientRecord {
  // From the key (clientKey), which every client item has; project_id and client_id, which older items lack, repeat it.
  const pk = str(item, 'pk')!;
  const projectEnd = pk.indexOf('#', CLIENT_PREFIX.length);
  const ref: ClientRef = { projectId: pk.slice(CLIENT_PREFIX.length, projectEnd), clientId: pk.slice(projectEnd + 1) };
  const secretArn = str(item, 'secret_arn');
  const holder = str(item, 'lease_holder');
  const until = num(item, 'lease_until');
  const dueAt = num(item, 'retire_due');
  return {
    ref,
    binding: secretArn
      ? { ...ref, secretArn, credentialsSecretId: str(item, 'credentials_secret_id'), kind: str(item, 'client_kind') as BindingKind | undefined }
      : undefined,
    boundAt: str(item, 'bound_at'),
    unboundAt: str(item, 'unbound_at'),
    lease: holder !== undefined && until !== undefined ? { holder, until, what: str(item, 'lease_what') ?? '' } : undefined,
    retirement:
      dueAt !== undefined
        ? {
            dueAt,
            versionId: str(item, 'retire_version') ?? '',
            last4: str(item, 'retire_last4') ?? '',
            previousVersionId: str(item, 'retire_previous_version') ?? '',
            previousLast4: str(item, 'retire_previous_last4') ?? '',
            previousSecretId: str(item, 'retire_previous_secret_id') || undefined,
            movedAt: num(item, 'retire_moved_at') || undefined,
            deferred: num(item, 'retire_deferred') === 1 || undefined,
          }
        : undefined,
    created:
      str(item, 'created_version') !== undefined
        ? { versionId: str(item, 'created_version')!, at: num(item, 'created_at') ?? 0, secretId: str(item, 'created_secret_id') }
        : undefined,
  };
}

// ------------------------------------------------------------------ binding checks (VII)

const credentialsLabel = (id: string | undefined) => (id === undefined ? "the function's default credentials" : `credentials secret ${id}`);

const REBIND_FIX =
  'If the change is intended, an administrator rebinds the secret with the CLI (bind --secret-id <secret> --client-id <client>), which needs write access to the state table.';

function secretUnboundError(wanted: Binding, at: string): BindingError {
  return new BindingError(
    `Secret ${wanted.secretArn} was unbound from its Stytch client by an administrator (${at}); its rotations are refused until an administrator binds it again, so its value cannot choose a client. ${REBIND_FIX}`,
  );
}

function clientUnboundError(wanted: Binding, at: string): BindingError {
  return new BindingError(
    `Stytch client ${wanted.clientId} of project ${wanted.projectId} was unbound by an administrator (${at}); only an administrator binds it again, so secret ${wanted.secretArn} may not claim it; nothing was changed. ${REBIND_FIX}`,
  );
}

/** The secret side of the binding must name exactly this client, project and credentials secret. */
function assertSameBinding(bound: Binding, wanted: Binding): void {
  if (bound.projectId !== wanted.projectId || bound.clientId !== wanted.clientId) {
    throw new BindingError(
      `Secret ${wanted.secretArn} is bound to Stytch client ${bound.clientId} of project ${bound.projectId}, but its value names client ${wanted.clientId} of project ${wanted.projectId}. ` +
        `A rotation acts only on the client its secret is bound to; nothing was changed. ${REBIND_FIX}`,
    );
  }
  if (bound.kind !== undefined && wanted.kind !== undefined && bound.kind !== wanted.kind) {
    throw new BindingError(
      `Secret ${wanted.secretArn} is bound to ${bound.kind} client ${bound.clientId}, but its value makes it a ${wanted.kind} client (client_kind); nothing was changed. ` +
        `Restore client_kind in the value, or rebind. ${REBIND_FIX}`,
    );
  }
  if (bound.credentialsSecretId !== wanted.credentialsSecretId) {
    throw new BindingError(
      `Secret ${wanted.secretArn} is bound to client ${bound.clientId} through ${credentialsLabel(bound.credentialsSecretId)}, but its value names ${credentialsLabel(wanted.credentialsSecretId)}; nothing was changed. ` +
        `Restore stytch_credentials_secret_id in the value, or rebind. ${REBIND_FIX}`,
    );
  }
}

/** The client side: the client must be bound to this secret, through these credentials. */
function assertClientBoundTo(bound: Binding, wanted: Binding): void {
  if (bound.secretArn !== wanted.secretArn) {
    throw new BindingError(
      `Stytch client ${wanted.clientId} of project ${wanted.projectId} is bound to another secret (${bound.secretArn}); secret ${wanted.secretArn} may not rotate it. ` +
        `One client is rotated through one secret only; nothing was changed. ${REBIND_FIX}`,
    );
  }
  assertSameBinding(bound, wanted);
}
