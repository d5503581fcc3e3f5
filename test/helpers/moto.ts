/**
 * Finds the Python tools the fidelity tests compare against (moto_server, the
 * aws CLI) and runs moto_server on a free port.
 *
 * The tools often live in pyenv's shims directory, which is not always on
 * PATH, so that is searched too. A shim can exist for a tool the active
 * Python version lacks, so a tool counts as available only when it runs.
 *
 * Missing tools skip the tests that need them on a developer machine; with
 * `CI` set they fail instead (CI always has them): see `toolGate`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Directories searched after PATH. */
export function toolDirectories(): string[] {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  const pyenvRoots = [process.env.PYENV_ROOT, join(homedir(), '.pyenv')].filter((d): d is string => !!d);
  for (const root of pyenvRoots) dirs.push(join(root, 'shims'));
  return [...new Set(dirs)];
}

/** The first executable file called `name`, without running it. */
export function locateTool(name: string): string | undefined {
  for (const dir of toolDirectories()) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The tool's path if it exists and `name ...probeArgs` exits 0. */
export async function findWorkingTool(name: string, probeArgs: string[]): Promise<string | undefined> {
  const path = locateTool(name);
  if (!path) return undefined;
  const works = await new Promise<boolean>((resolve) => {
    execFile(path, probeArgs, { timeout: 30_000 }, (error) => resolve(!error));
  });
  return works ? path : undefined;
}

export const findMotoServer = (): Promise<string | undefined> => findWorkingTool('moto_server', ['--help']);
export const findAwsCli = (): Promise<string | undefined> => findWorkingTool('aws', ['--version']);

/**
 * Whether tests needing a tool run, and why not. Use as
 * `describe.skipIf(gate.skip)(gate.title(...), ...)` and call `gate.assert()`
 * in beforeAll so CI fails loudly instead of skipping.
 */
export function toolGate(tool: string, path: string | undefined) {
  const inCi = !!process.env.CI;
  const skip = !path && !inCi;
  if (skip) {
    console.warn(`[fidelity] ${tool} not found on PATH or in pyenv shims: skipping the tests that need it (they run on CI).`);
  }
  return {
    skip,
    title: (subject: string): string => (path ? subject : `${subject} (${tool} not found${inCi ? ': required on CI' : ': skipped'})`),
    assert(): string {
      if (!path) throw new Error(`${tool} is required when CI is set, but it was not found on PATH or in pyenv shims.`);
      return path;
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface MotoServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Starts `moto_server -H 127.0.0.1 -p <free port>` and waits until it answers HTTP. */
export async function startMotoServer(path: string, timeoutMs = 30_000): Promise<MotoServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Own process group, so stop() also ends anything the pyenv shim started.
  const child = spawn(path, ['-H', '127.0.0.1', '-p', String(port)], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${url}/moto-api/data.json`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) {
        stopGroup(child);
        throw new Error(`moto_server did not answer on ${url} within ${timeoutMs} ms: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  return {
    url,
    port,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopGroup(child);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    },
  };
}

function stopGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
}
