/**
 * Warm Lambda containers shared by all trials. A container runs one
 * invocation at a time, as in Lambda; overlapping invocations therefore run in
 * separate containers, each its own copy of the bundle (own SDK clients and
 * caches), made by stack.createContainer. Containers are created on demand up
 * to `max` and reused: each copy costs CPU and a few MB that ESM never frees.
 * Past `max`, an invocation waits for a free container.
 *
 * The copies are imported from a copy of the bundle under a node_modules
 * directory: vitest then leaves the import to Node (~50 ms a copy) instead of
 * running its module transform over the 450 KB bundle for each (~600 ms, in
 * vitest's main process). The code imported is byte for byte the built bundle.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DEFAULT_BUNDLE, type Container, type LocalStack } from '../../../infra/local/stack.js';

export class ContainerPool {
  /** Idle containers and the key of the trial each served last. */
  private readonly idle: Array<{ container: Container; key: string | undefined }> = [];
  private readonly waiting: Array<(container: Container) => void> = [];
  private created = 0;
  private readonly dir: string;
  private readonly bundle: string;

  constructor(
    private readonly stack: LocalStack,
    private readonly max: number,
    bundlePath: string | undefined,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'fuzz-containers-'));
    const home = join(this.dir, 'node_modules', 'rotate-stytch-secret');
    mkdirSync(home, { recursive: true });
    this.bundle = join(home, 'index.mjs');
    copyFileSync(resolve(bundlePath ?? DEFAULT_BUNDLE), this.bundle);
  }

  /** Removes the copy (the modules already imported stay in memory). */
  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  get size(): number {
    return this.created;
  }

  /**
   * Runs one invocation in an idle container, preferring one that last served `key` (the same
   * secret): its caches are warm, as Lambda's warm containers for a busy function would be.
   */
  async run(event: Parameters<Container>[0], key?: string): Promise<void> {
    const container = await this.take(key);
    try {
      await container(event);
    } finally {
      this.give(container, key);
    }
  }

  private async take(key: string | undefined): Promise<Container> {
    let index = this.idle.length - 1;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      if (this.idle[i]!.key === key) {
        index = i;
        break;
      }
    }
    if (index >= 0) return this.idle.splice(index, 1)[0]!.container;
    if (this.created < this.max) {
      this.created++;
      return await this.stack.createContainer(this.bundle);
    }
    return await new Promise<Container>((resolve) => this.waiting.push(resolve));
  }

  private give(container: Container, key: string | undefined): void {
    const next = this.waiting.shift();
    if (next) next(container);
    else this.idle.push({ container, key });
  }
}
