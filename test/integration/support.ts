/**
 * Shared by the integration tests: the built bundle, the local stack, child
 * processes (the demo) and the leak scan.
 */
import { type ChildProcess, execSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { expect } from 'vitest';
import type { KnownSecret, LocalStack } from '../../infra/local/stack.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BUNDLE = join(ROOT, 'dist/rotate-stytch-secret/index.mjs');

/**
 * The built function, building it when missing (`npm test` builds first).
 * Returns a private copy: `npm run build` empties dist/ first, so a build run
 * by someone else meanwhile must not pull the bundle away mid-suite.
 */
export async function builtBundle(): Promise<{ path: string; dispose(): void }> {
  if (!existsSync(BUNDLE)) execSync('npm run build', { cwd: ROOT, stdio: 'pipe' });
  // Lower-case hex only, so the path never looks like a secret to secretLikeRuns.
  const dir = join(tmpdir(), `stytch-rotation-it-${randomUUID()}`);
  mkdirSync(dir);
  const path = join(dir, 'index.mjs');
  for (let tries = 0; ; tries++) {
    try {
      copyFileSync(BUNDLE, path);
      // The source map too: vitest's loader reads it, and stack traces point into functions/.
      if (existsSync(`${BUNDLE}.map`)) copyFileSync(`${BUNDLE}.map`, `${path}.map`);
      break;
    } catch (error) {
      // A concurrent build is rewriting dist/: it takes about a second.
      if (tries >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return { path, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface SecretJson {
  client_id: string;
  client_secret: string;
  [field: string]: unknown;
}

export async function valueAt(client: SecretsManagerClient, secretId: string, stage: string): Promise<{ versionId: string; json: SecretJson; text: string }> {
  const out = await client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage }));
  return { versionId: out.VersionId!, json: JSON.parse(out.SecretString!) as SecretJson, text: out.SecretString! };
}

/** Requests the function made to Stytch for one client, by operation suffix (e.g. 'rotate_start'), and how many were answered 200. */
export function stytchCalls(stack: LocalStack, clientId: string, operation: string): { all: number; ok: number } {
  const matching = stack.stytch.requests.filter((r) => r.clientId === clientId && r.operation.endsWith(`.${operation}`));
  return { all: matching.length, ok: matching.filter((r) => r.status === 200).length };
}

/** Invariant V: no known secret in anything the function printed or threw. */
export async function expectNoLeaks(stack: LocalStack, extra: KnownSecret[] = []): Promise<void> {
  const scan = await stack.scanForSecrets(extra);
  expect(scan.lines, 'the function printed nothing: the leak scan would prove nothing').toBeGreaterThan(0);
  expect(scan.leaked).toEqual([]);
}

/** Lines the function logged (JSON) that carry `metric` in an EMF record. */
export function metricCount(stack: LocalStack, metric: string): number {
  let total = 0;
  for (const line of stack.logs.join('').split('\n')) {
    if (!line.startsWith('{"_aws"')) continue;
    const value = (JSON.parse(line) as Record<string, unknown>)[metric];
    if (typeof value === 'number') total += value;
  }
  return total;
}

// ---------------------------------------------------------------- child processes

export interface Child {
  process: ChildProcess;
  /** Everything printed so far (stdout and stderr interleaved as received). */
  output(): string;
  /** Standard output alone. */
  stdout(): string;
  /** Resolves with the output once `pattern` appears; rejects on exit or timeout, showing what was printed. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startChild(command: string, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Child {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  let stdout = '';
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    for (const listener of listeners) listener();
  };
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    append(chunk);
  });
  child.stderr!.on('data', append);
  // 'close', not 'exit': only then has all the output arrived.
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      done = true;
      resolve({ code, signal });
      for (const listener of listeners) listener();
    });
  });
  return {
    process: child,
    output: () => text,
    stdout: () => stdout,
    exited,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = text.match(pattern);
          if (match) {
            cleanup();
            resolve(match);
          } else if (done) {
            cleanup();
            reject(new Error(`The process exited before printing ${pattern}. It printed:\n${text}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${pattern}. The process printed:\n${text}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Stops a child we started, by its own pid, if it is still running. */
export function stopChild(child: Child | undefined): void {
  if (child && child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
}

/**
 * A run of 20+ URL-safe characters mixing upper and lower case: what a whole
 * Stytch secret (44 or 36 random base64url characters) looks like. Ids
 * (lower-case hex), words and last fours never match.
 */
export function secretLikeRuns(text: string): string[] {
  return (text.match(/[A-Za-z0-9_-]{20,}/g) ?? []).filter((run) => /[A-Z]/.test(run) && /[a-z]/.test(run));
}
