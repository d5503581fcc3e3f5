import { resolveBaseUrl } from '../config.js';
import { InvalidInputError } from '../errors.js';
import { parseSecretJson, shownSecretId, stytchCredentialsSchema } from '../schemas.js';
import type { CredentialsSource, StytchCredentials } from './http.js';

/** Reads a secret's AWSCURRENT SecretString (undefined for a binary secret). */
export type ReadSecret = (secretId: string) => Promise<string | undefined>;

interface Entry {
  value: Promise<StytchCredentials>;
  expiresAt: number;
}

/**
 * Stytch project credentials, cached per container for a bounded time
 * (DESIGN.md §2) so a warm container reads the credentials secret once, and
 * re-read on demand after a 401. A failed read is never cached.
 */
export class CredentialsCache {
  private readonly entries = new Map<string, Entry>();
  /** How many times the credentials secret was read (benchmarks report it). */
  reads = 0;

  constructor(
    private readonly readSecret: ReadSecret,
    private readonly options: { ttlMs: number; envBaseUrl: string | undefined; now?: () => number },
  ) {}

  source(secretId: string | undefined): CredentialsSource {
    if (!secretId) {
      throw new InvalidInputError(
        'No Stytch credentials secret is configured: set STYTCH_CREDENTIALS_SECRET_ID on the function, or stytch_credentials_secret_id in the rotated secret.',
      );
    }
    return {
      get: () => this.get(secretId, false),
      refresh: () => this.get(secretId, true),
    };
  }

  /** Forgets what was read from these secret ids (a credentials secret this container just rotated). */
  invalidate(ids: readonly string[]): void {
    for (const id of ids) this.entries.delete(id);
  }

  private get(secretId: string, force: boolean): Promise<StytchCredentials> {
    const now = (this.options.now ?? Date.now)();
    const cached = this.entries.get(secretId);
    if (cached && !force && cached.expiresAt > now) return cached.value;
    const value = this.load(secretId);
    this.entries.set(secretId, { value, expiresAt: now + this.options.ttlMs });
    value.catch(() => {
      if (this.entries.get(secretId)?.value === value) this.entries.delete(secretId);
    });
    return value;
  }

  private async load(secretId: string): Promise<StytchCredentials> {
    this.reads++;
    const text = await this.readSecret(secretId);
    const parsed = parseSecretJson(
      stytchCredentialsSchema,
      text,
      `The Stytch credentials secret ${shownSecretId(secretId)}`,
      'It must be JSON {"project_id": "project-test-...", "secret": "...", "base_url"?: "https://..."}; fix it with aws secretsmanager put-secret-value.',
    );
    return {
      projectId: parsed.project_id,
      secret: parsed.secret,
      baseUrl: resolveBaseUrl(parsed.project_id, parsed.base_url, this.options.envBaseUrl),
    };
  }
}
