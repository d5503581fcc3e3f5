/**
 * The local stack's DynamoDB: dynalite (an existing implementation from npm,
 * on LevelDB, in memory), for the function's state table (DESIGN.md §6).
 * Reached three ways, all through dynalite's own request handler:
 *
 * - over HTTP on its own port (`listen`), or on the Secrets Manager
 *   emulator's port, which routes `X-Amz-Target: DynamoDB_20120810.*` here;
 * - in process, as JSON in and out (`handle`), for tests that make thousands
 *   of calls and for the stack's own setup;
 * - as a request handler for the AWS SDK (`sdkRequestHandler`): the real SDK
 *   pipeline with no socket.
 *
 * Known difference from DynamoDB: dynalite has no UpdateTimeToLive (TTL is
 * not emulated; nothing the function does depends on items disappearing).
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import dynalite from 'dynalite';
import { type Listening, listen } from './listen.js';

export const STATE_TABLE_NAME = 'stytch-secret-rotation-state';
const TARGET_PREFIX = 'DynamoDB_20120810.';
/** A signature-shaped header: dynalite checks that one is present, not what it says. */
const LOCAL_AUTH = 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=local';

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** An error DynamoDB answered, by its short name (`ConditionalCheckFailedException`). */
export class DynamoDBServiceError extends Error {
  constructor(
    name: string,
    message: string,
    readonly httpStatus: number,
  ) {
    super(message);
    this.name = name;
  }
}

export class LocalDynamoDB {
  private readonly server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  /** dynalite's (req, res) handler: what its HTTP server runs for every request. */
  readonly listener: Listener = this.server.listeners('request')[0] as Listener;
  private listening: Listening | undefined;

  static isDynamoDBRequest(req: IncomingMessage): boolean {
    const target = req.headers['x-amz-target'];
    return typeof target === 'string' && target.startsWith(TARGET_PREFIX);
  }

  /** dynalite on its own port (loopback). */
  async listen(options: { port?: number } = {}): Promise<Listening> {
    const server = createServer(this.listener);
    this.listening = await listen(server, options);
    return this.listening;
  }

  /** One operation in process: JSON in, JSON out; a DynamoDB error is thrown as DynamoDBServiceError. */
  async handle(operation: string, input: unknown): Promise<Record<string, unknown>> {
    const { status, body } = await this.dispatch({ 'x-amz-target': `${TARGET_PREFIX}${operation}` }, JSON.stringify(input ?? {}));
    const payload = body === '' ? {} : (JSON.parse(body) as Record<string, unknown>);
    if (status >= 300) {
      const type = String(payload.__type ?? 'InternalServerError');
      const message = String(payload.message ?? payload.Message ?? 'DynamoDB error');
      throw new DynamoDBServiceError(type.slice(type.lastIndexOf('#') + 1), message, status);
    }
    return payload;
  }

  /** An SDK `requestHandler`: the real DynamoDBClient pipeline, answered in process. */
  sdkRequestHandler() {
    return {
      handle: async (request: { headers: Record<string, string>; body?: unknown }) => {
        const raw = request.body;
        const text = typeof raw === 'string' ? raw : raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8') : '';
        const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]));
        const { status, headers: out, body } = await this.dispatch(headers, text);
        return { response: { statusCode: status, headers: out, body: Readable.from([Buffer.from(body)]) } };
      },
    };
  }

  /** The state table as the function expects it (DESIGN.md §2): partition key `pk` (String), on demand. */
  async createStateTable(name = STATE_TABLE_NAME): Promise<void> {
    await this.handle('CreateTable', {
      TableName: name,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    });
    // dynalite makes a table ACTIVE on the next tick.
    for (let i = 0; i < 200; i++) {
      const { Table } = (await this.handle('DescribeTable', { TableName: name })) as { Table?: { TableStatus?: string } };
      if (Table?.TableStatus === 'ACTIVE') return;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    throw new Error(`The local state table ${name} did not become ACTIVE.`);
  }

  /** Every item of a table (tests and the demo look at the state table with it). */
  async scan(tableName = STATE_TABLE_NAME): Promise<Array<Record<string, unknown>>> {
    const items: Array<Record<string, unknown>> = [];
    let start: unknown;
    do {
      const out = (await this.handle('Scan', { TableName: tableName, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) })) as {
        Items?: Array<Record<string, unknown>>;
        LastEvaluatedKey?: unknown;
      };
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } while (start);
    return items;
  }

  async close(): Promise<void> {
    await this.listening?.close();
    this.listening = undefined;
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Runs one request through dynalite's handler with stand-in request and response objects. */
  private dispatch(headers: Record<string, string>, body: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    return new Promise((resolve, reject) => {
      const req = Object.assign(new EventEmitter(), {
        method: 'POST',
        url: '/',
        headers: { 'content-type': 'application/x-amz-json-1.0', authorization: LOCAL_AUTH, 'x-amz-date': '20260101T000000Z', ...headers },
      });
      const out: Record<string, string> = {};
      const res = {
        statusCode: 200,
        contentType: undefined as string | undefined,
        setHeader(name: string, value: unknown) {
          out[name.toLowerCase()] = String(value);
        },
        end(chunk?: unknown) {
          resolve({ status: res.statusCode, headers: out, body: chunk === undefined ? '' : String(chunk) });
        },
      };
      try {
        this.listener(req as unknown as IncomingMessage, res as unknown as ServerResponse);
        if (body) req.emit('data', Buffer.from(body));
        req.emit('end');
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }
}
