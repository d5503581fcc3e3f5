/**
 * The awsJson1_1 wire protocol over node:http, as the SDKs and the CLI speak
 * it: `POST /`, `X-Amz-Target: secretsmanager.<Operation>`, a JSON body;
 * answers in `application/x-amz-json-1.1`, errors as
 * `{"__type": "<Exception>", "Message": "..."}` with `x-amzn-ErrorType`.
 * SigV4 headers are accepted and ignored: there are no accounts to check.
 */
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { type Listening, listen } from '../listen.js';
import { SecretsManagerServiceError } from './errors.js';

export type OperationHandler = (operation: string, input: unknown) => Promise<unknown>;

/**
 * Another service answered on the same port (the local stack puts DynamoDB
 * and Lambda's Invoke there, so one endpoint URL serves every AWS call).
 */
export interface ExtraRoute {
  matches(req: IncomingMessage): boolean;
  listener(req: IncomingMessage, res: ServerResponse): void;
}

export type { Listening as RunningServer } from '../listen.js';

const CONTENT_TYPE = 'application/x-amz-json-1.1';
const TARGET_PREFIX = 'secretsmanager.';
/** Far above the service's 64 KiB secret limit; only guards memory. */
const MAX_BODY_BYTES = 1024 * 1024;

export async function startServer(handler: OperationHandler, options: { port?: number; host?: string; routes?: ExtraRoute[] } = {}): Promise<Listening> {
  const server = createServer((req, res) => {
    const route = options.routes?.find((r) => r.matches(req));
    if (route) route.listener(req, res);
    else void serve(handler, req, res);
  });
  return listen(server, options);
}

async function serve(handler: OperationHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    if (req.method !== 'POST') {
      throw new SecretsManagerServiceError('UnknownOperationException', 'Secrets Manager accepts only POST requests.', 404);
    }
    const target = header(req, 'x-amz-target');
    if (!target?.startsWith(TARGET_PREFIX)) {
      throw new SecretsManagerServiceError('UnknownOperationException', 'Missing or unknown X-Amz-Target header.');
    }
    const body = await readBody(req);
    let input: unknown = {};
    if (body.length > 0) {
      try {
        input = JSON.parse(body.toString('utf8'));
      } catch {
        throw new SecretsManagerServiceError('SerializationException', 'The request body is not valid JSON.');
      }
    }
    const output = await handler(target.slice(TARGET_PREFIX.length), input);
    send(res, 200, output ?? {});
  } catch (error) {
    const serviceError =
      error instanceof SecretsManagerServiceError
        ? error
        : new SecretsManagerServiceError('InternalServiceError', 'An error occurred on the server side.');
    send(res, serviceError.httpStatus, { __type: serviceError.name, Message: serviceError.message }, serviceError.name);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new SecretsManagerServiceError('SerializationException', 'The request body is too large.', 413);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, payload: unknown, errorType?: string): void {
  if (res.headersSent) return;
  const body = JSON.stringify(payload);
  const headers: Record<string, string | number> = {
    'Content-Type': CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(body),
    'x-amzn-RequestId': randomUUID(),
  };
  if (errorType) headers['x-amzn-ErrorType'] = errorType;
  res.writeHead(status, headers);
  res.end(body);
}
