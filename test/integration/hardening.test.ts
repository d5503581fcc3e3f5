/**
 * What a review that attacked the built bundle found besides the races, each
 * through the BUILT bundle on the local stack: a redirect never followed, every
 * other field preserved byte for byte, the size limit checked before
 * rotate/start, an unknown put outcome said out loud, a secret pasted as an id
 * never echoed, and the M2M token endpoint's OAuth errors read.
 *
 * HARDENING_BUNDLE=<path to another build> runs the same tests against it.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_LAMBDA_ARN, LocalStack } from '../../infra/local/stack.js';
import { builtBundle, expectNoLeaks, metricCount } from './support.js';

let stack: LocalStack;
let bundle: Awaited<ReturnType<typeof builtBundle>> | undefined;

beforeAll(async () => {
  const other = process.env.HARDENING_BUNDLE;
  if (!other) bundle = await builtBundle();
  stack = await LocalStack.start({ bundlePath: other ?? bundle!.path, maxAttempts: 1, env: { STYTCH_MAX_ATTEMPTS: '2' } });
});

afterAll(async () => {
  await stack?.close();
  bundle?.dispose();
});

/** A secret holding exactly `text` for a new client of `kind`, with rotation on (not rotated yet). */
async function secretWithText(kind: 'connected_app' | 'm2m', text: (client: { client_id: string; client_secret: string }) => string) {
  const created = kind === 'm2m' ? stack.stytch.createM2MClient(stack.project.projectId) : stack.stytch.createConnectedApp(stack.project.projectId, { clientType: 'first_party' });
  const client = { client_id: created.client_id, client_secret: created.client_secret! };
  const name = `hardening/${randomUUID()}`;
  const { ARN } = (await stack.sm.handle('CreateSecret', { Name: name, ClientRequestToken: randomUUID(), SecretString: text(client) })) as { ARN: string };
  return { name, arn: ARN, client };
}

async function enableAndRotate(arn: string) {
  await stack.sm.handle('RotateSecret', { SecretId: arn, RotationLambdaARN: LOCAL_LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' } });
  return stack.sm.rotationHistory(arn).at(-1)!;
}

const currentText = (arn: string) => Object.values(stack.sm.inspect(arn).versions).find((v) => v.stages.includes('AWSCURRENT'))!.secretString!;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('No secret leaves through a redirect', () => {
  it('an M2M token request answered with a 307 to another host is not followed: that host gets nothing, the rotation is cancelled', async () => {
    // Prepare: a base URL in front of Stytch that sends the token request (which carries the pending client_secret) elsewhere.
    const received: string[] = [];
    const thief = createServer((req, res) => {
      req.on('data', (chunk: Buffer) => received.push(chunk.toString()));
      req.on('end', () => res.end('{}'));
    });
    const thiefUrl = await listen(thief);
    const front = createServer((req, res) => {
      void (async () => {
        if (req.url?.includes('/oauth2/token')) {
          res.writeHead(307, { Location: `${thiefUrl}/steal?from=front` });
          res.end();
          return;
        }
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const answer = await fetch(`${stack.stytchUrl}${req.url}`, {
          method: req.method,
          headers: { authorization: String(req.headers.authorization ?? ''), 'content-type': String(req.headers['content-type'] ?? 'application/json') },
          ...(req.method === 'GET' ? {} : { body: Buffer.concat(chunks) }),
        });
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(await answer.text());
      })();
    });
    const frontUrl = await listen(front);
    const credentials = `stytch/front-${randomUUID()}`;
    await stack.sm.handle('CreateSecret', {
      Name: credentials,
      ClientRequestToken: randomUUID(),
      SecretString: JSON.stringify({ project_id: stack.project.projectId, secret: stack.project.secret, base_url: frontUrl }),
    });
    const seeded = await secretWithText('m2m', (c) => JSON.stringify({ ...c, stytch_credentials_secret_id: credentials }));
    try {
      // Act
      const record = await enableAndRotate(seeded.arn);
      // Assess
      expect(received).toEqual([]);
      expect(record.outcome).toBe('failed');
      const testStep = record.attempts[0]!.steps.find((s) => s.step === 'testSecret')!;
      expect(testStep.error).toMatch(/307 redirect_refused .*answered 307 with a redirect to 127\.0\.0\.1:\d+; redirects are never followed/);
      expect(testStep.error).not.toContain('steal');
      expect(stack.stytch.isAccepted(seeded.client.client_id, seeded.client.client_secret)).toBe(true);
      expect(stack.stytch.clientState(seeded.client.client_id).nextClientSecretLast4).toBeNull();
      await expectNoLeaks(stack);
    } finally {
      thief.close();
      front.close();
    }
  });
});

describe('Every field but client_secret is preserved exactly', () => {
  it('copies the other fields byte for byte: big and odd numbers, -0, 1e400, a __proto__ key, order and spacing', async () => {
    const seeded = await secretWithText(
      'connected_app',
      (c) =>
        `{\n  "owner": "billing",\n  "big": 12345678901234567890,\n  "tiny": 1e400,\n  "neg": -0,\n  "__proto__": {"x": 1},\n` +
        `  "client_id": "${c.client_id}",  "client_secret": "${c.client_secret}",\n  "nested": {"a": [1.0, 2.50, "\\u00e9"]}\n}\n`,
    );
    const before = currentText(seeded.arn);
    const record = await enableAndRotate(seeded.arn);
    expect(record.outcome).toBe('succeeded');
    const after = currentText(seeded.arn);
    const secretAfter = (JSON.parse(after) as { client_secret: string }).client_secret;
    expect(secretAfter).not.toBe(seeded.client.client_secret);
    expect(after).toBe(before.replace(JSON.stringify(seeded.client.client_secret), JSON.stringify(secretAfter)));
    expect(stack.stytch.isAccepted(seeded.client.client_id, secretAfter)).toBe(true);
  });

  it('refuses a value that gives a key twice, before any Stytch call, naming the key', async () => {
    const seeded = await secretWithText('connected_app', (c) => `{"client_id": "${c.client_id}", "client_secret": "${c.client_secret}", "team": "a", "team": "b"}`);
    const before = stack.stytch.requests.length;
    const record = await enableAndRotate(seeded.arn);
    expect(record.outcome).not.toBe('succeeded');
    expect(record.attempts[0]!.steps[0]!.error).toMatch(/gives the key "team" twice, so its meaning depends on the reader; keep one/);
    expect(stack.stytch.requests.slice(before).filter((r) => r.clientId === seeded.client.client_id)).toEqual([]);
  });
});

describe('Limits and failures said plainly', () => {
  it('refuses, before rotate/start, a value whose new version could not fit in 65,536 bytes', async () => {
    const seeded = await secretWithText('connected_app', (c) => JSON.stringify({ ...c, padding: 'p'.repeat(65_200) }));
    await stack.sm.handle('RotateSecret', { SecretId: seeded.arn, RotationLambdaARN: LOCAL_LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' }, RotateImmediately: false });
    const before = stack.stytch.requests.length;
    await stack.sm.handle('RotateSecret', { SecretId: seeded.arn });
    const record = stack.sm.rotationHistory(seeded.arn).at(-1)!;
    expect(record.outcome).toBe('failed');
    expect(record.attempts[0]!.steps[0]!.error).toMatch(/would be about \d+ bytes .* over Secrets Manager's limit of 65536 bytes\. Nothing was changed/);
    expect(stack.stytch.requests.slice(before).filter((r) => r.operation.endsWith('rotate_start'))).toEqual([]);
  });

  it('logs at error level, with a metric, when PutSecretValue fails and reading the version back fails too', async () => {
    const seeded = await secretWithText('connected_app', (c) => JSON.stringify(c));
    await stack.sm.handle('RotateSecret', { SecretId: seeded.arn, RotationLambdaARN: LOCAL_LAMBDA_ARN, RotationRules: { ScheduleExpression: 'rate(30 days)' }, RotateImmediately: false });
    let putFailed = false;
    stack.interceptor = ({ service, operation, phase, target }) => {
      if (service !== 'secretsmanager' || phase !== 'before' || (target !== seeded.arn && target !== seeded.name)) return;
      if (operation === 'PutSecretValue') {
        putFailed = true;
        return 'fail';
      }
      if (operation === 'GetSecretValue' && putFailed) return 'fail';
    };
    const metricsBefore = metricCount(stack, 'PutOutcomeUnknown');
    try {
      await stack.sm.handle('RotateSecret', { SecretId: seeded.arn });
    } finally {
      stack.interceptor = undefined;
    }
    expect(metricCount(stack, 'PutOutcomeUnknown') - metricsBefore).toBe(1);
    expect(stack.logs.some((l) => l.includes('"level":"ERROR"') && l.includes('reading the version back failed too'))).toBe(true);
    await expectNoLeaks(stack);
  });

  it('never echoes a secret pasted as stytch_credentials_secret_id, in the error or the log', async () => {
    const pasted = `secret-test-${randomUUID().replace(/-/g, '')}`;
    const seeded = await secretWithText('connected_app', (c) => JSON.stringify({ ...c, stytch_credentials_secret_id: pasted }));
    const logsBefore = stack.logs.length;
    const record = await enableAndRotate(seeded.arn);
    expect(record.outcome).not.toBe('succeeded');
    const error = record.attempts[0]!.steps[0]!.error!;
    expect(error).toMatch(/stytch_credentials_secret_id must be the name or ARN of a Secrets Manager secret/);
    expect(error).not.toContain(pasted);
    expect(stack.logs.slice(logsBefore).some((l) => l.includes(pasted))).toBe(false);
  });
});

describe('The M2M token endpoint\'s OAuth errors', () => {
  it.each([400, 401])('a %i invalid_client at the token endpoint means the pending secret does not authenticate: cancelled, logged with its error and request id', async (status) => {
    const seeded = await secretWithText('m2m', (c) => JSON.stringify(c));
    stack.stytch.addFault({ operation: 'm2m.token', mode: 'before', status, errorType: 'invalid_client', times: 4 });
    const logsBefore = stack.logs.length;
    try {
      const record = await enableAndRotate(seeded.arn);
      expect(record.outcome).toBe('failed');
      const testStep = record.attempts[0]!.steps.find((s) => s.step === 'testSecret')!;
      expect(testStep.error).toMatch(new RegExp(`does not authenticate at Stytch's token endpoint \\(${status} invalid_client, request_id \\S+\\)`));
      const failed = stack.logs.slice(logsBefore).find((l) => l.includes('"message":"Step failed"') && l.includes('"step":"testSecret"'))!;
      expect(JSON.parse(failed)).toMatchObject({ error: { errorType: 'invalid_client', statusCode: status, requestId: expect.any(String) } });
      expect(stack.stytch.clientState(seeded.client.client_id).nextClientSecretLast4).toBeNull();
      expect(stack.stytch.isAccepted(seeded.client.client_id, seeded.client.client_secret)).toBe(true);
    } finally {
      stack.stytch.clearFaults();
    }
  });
});
