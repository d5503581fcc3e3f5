/**
 * A proxy in front of the local stack's Stytch emulator for the project-secret
 * trials. The emulator tells its interceptor the client a call names, but a
 * management call (secrets.create|list|get|delete) names a project by its slug
 * and the probe (m2m.get of a client that does not exist) by its Basic auth:
 * the proxy reads both, so the network (network.ts) can give the call its
 * trial's latencies and faults, and tell the trial of its effect at once.
 * A failed call drops the connection, before the emulator sees the request or
 * after it took effect (the answer lost), as the emulator's own faults do.
 *
 * The management credentials secret and each project-secret trial's value
 * point their base_url here (loopback http, as the function allows).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Phase } from './network.js';

const SECRETS_ROUTE = /^\/pwa\/v3\/projects\/([^/]+)\/environments\/[^/]+\/secrets(\/[^/]+)?$/;

export type ProxyDecision = (projectKey: string | undefined, operation: string, phase: Phase) => Promise<boolean> | boolean;

/** What a request is and which project it names (the slug for the management API, the Basic user for the project API). */
export function describeRequest(method: string, url: string, authorization: string | undefined): { operation: string; projectKey: string | undefined } {
  const path = new URL(url, 'http://proxy.local').pathname;
  const managed = SECRETS_ROUTE.exec(path);
  if (managed) {
    const operation = managed[2] === undefined ? (method === 'POST' ? 'secrets.create' : 'secrets.list') : method === 'DELETE' ? 'secrets.delete' : 'secrets.get';
    return { operation, projectKey: decodeURIComponent(managed[1]!) };
  }
  const basic = /^Basic (.+)$/i.exec(authorization ?? '');
  const user = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8').split(':')[0] : undefined;
  return { operation: path.startsWith('/v1/m2m/clients/') && method === 'GET' ? 'm2m.get' : 'other', projectKey: user };
}

export class StytchProxy {
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string, decide: ProxyDecision): Promise<StytchProxy> {
    const server = createServer((req, res) => void serve(target, decide, req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return new StytchProxy(server, `http://127.0.0.1:${port}`);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function serve(target: string, decide: ProxyDecision, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const method = req.method ?? 'GET';
    const { operation, projectKey } = describeRequest(method, req.url ?? '/', req.headers.authorization);
    if (await decide(projectKey, operation, 'before')) {
      req.socket.destroy();
      return;
    }
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'content-type', 'accept', 'user-agent']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const answer = await fetch(target + (req.url ?? '/'), { method, headers, ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}), redirect: 'manual' });
    const body = await answer.text();
    if (await decide(projectKey, operation, 'after')) {
      // The effect happened; the answer is lost.
      req.socket.destroy();
      return;
    }
    const out: Record<string, string> = { 'content-type': answer.headers.get('content-type') ?? 'application/json' };
    const retryAfter = answer.headers.get('retry-after');
    if (retryAfter) out['retry-after'] = retryAfter;
    res.writeHead(answer.status, out);
    res.end(body);
  } catch {
    // The emulator's own connection dropped (its fault injection): drop this one too.
    req.socket.destroy();
  }
}
