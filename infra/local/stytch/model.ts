/**
 * The emulator's state: projects, clients and the secret-rotation state
 * machine, plus the JSON shapes Stytch puts on the wire for them. No HTTP
 * here; `emulator.ts` routes requests to these methods.
 *
 * Secrets are kept in plain text in memory (Stytch keeps hashes). Nothing in
 * this file ever puts a secret into an error message.
 */
import { randomBytes as cryptoRandomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

export type ConnectedAppClientType = 'first_party' | 'third_party' | 'first_party_public' | 'third_party_public';
export type ClientKind = 'connected_app' | 'm2m';

export const CONNECTED_APP_CLIENT_TYPES: readonly ConnectedAppClientType[] = [
  'first_party',
  'third_party',
  'first_party_public',
  'third_party_public',
];

/** A Stytch API error: what the wire layer turns into `{status_code, error_type, ...}`. */
export class EmulatedApiError extends Error {
  readonly status: number;
  readonly errorType: string;
  constructor(status: number, errorType: string, message: string) {
    super(message);
    this.name = 'EmulatedApiError';
    this.status = status;
    this.errorType = errorType;
  }
}

/** One of a project environment's API secrets; any of them authenticates project-API requests. */
export interface ProjectSecretRecord {
  /** `secret-test-<uuid>` / `secret-live-<uuid>`: the id the management API lists it by. */
  secretId: string;
  secret: string;
  /** Epoch milliseconds, on the model's clock. */
  createdAt: number;
  /** When it last authenticated a project-API request; null until then. */
  usedAt: number | null;
}

/** One Stytch project environment: a project id, its slugs for the management API, and its secrets. */
interface Project {
  projectId: string;
  projectSlug: string;
  environmentSlug: string;
  secrets: ProjectSecretRecord[];
}

export interface CreatedProject {
  projectId: string;
  /** The project's one secret at creation. */
  secret: string;
  secretId: string;
  projectSlug: string;
  environmentSlug: string;
}

export interface CreateProjectOptions {
  projectId?: string;
  secret?: string;
  projectSlug?: string;
  environmentSlug?: string;
}

export interface WorkspaceKey {
  workspaceKeyId: string;
  workspaceKeySecret: string;
}

export interface StytchModelOptions {
  /** Source for ids and secrets, like Math.random (default node:crypto). */
  random?: () => number;
  /** Clock for created_at / used_at, in epoch milliseconds (default Date.now). */
  now?: () => number;
}

/** Stytch's limit on API secrets per project environment (stytch.com/docs, management API). */
export const MAX_PROJECT_SECRETS = 50;

/** Lowercase letters, digits and inner dashes, as Stytch's slugs. */
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

export interface ClientRecord {
  kind: ClientKind;
  projectId: string;
  clientId: string;
  clientName: string;
  clientDescription: string;
  /** Connected Apps only. */
  clientType?: ConnectedAppClientType;
  /** M2M only. */
  scopes: string[];
  /** null for public Connected Apps, which have no secret. */
  secret: string | null;
  /** Set between rotate/start and rotate or rotate/cancel. */
  nextSecret: string | null;
}

/** Error types differ per client kind; the statuses do not. */
const ERROR_TYPES = {
  connected_app: {
    notFound: 'idp_client_not_found',
    alreadyRotating: 'idp_client_already_rotating_secret',
    notRotating: 'idp_client_not_rotating_secret',
  },
  m2m: {
    notFound: 'm2m_client_not_found',
    alreadyRotating: 'm2m_client_already_rotating_secret',
    notRotating: 'm2m_client_not_rotating_secret',
  },
} as const;

const KIND_LABEL: Record<ClientKind, string> = { connected_app: 'Connected App client', m2m: 'M2M client' };

export function lastFour(secret: string | null): string | null {
  return secret === null ? null : secret.slice(-4);
}

export function isPublicClientType(type: ConnectedAppClientType | undefined): boolean {
  return type === 'first_party_public' || type === 'third_party_public';
}

/** Constant-time string comparison, so the emulator does not teach timing-unsafe habits. */
export function secretEquals(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export class StytchModel {
  readonly #projects = new Map<string, Project>();
  readonly #clients = new Map<string, ClientRecord>();
  readonly #workspaceKeys = new Map<string, string>();
  readonly #random: (() => number) | undefined;
  readonly #now: () => number;

  constructor(options: StytchModelOptions = {}) {
    this.#random = options.random;
    this.#now = options.now ?? Date.now;
  }

  now(): number {
    return this.#now();
  }

  // ---- ids and secrets ------------------------------------------------------

  randomBytes(size: number): Buffer {
    if (!this.#random) return cryptoRandomBytes(size);
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = Math.floor(this.#random() * 256) & 0xff;
    return bytes;
  }

  uuid(): string {
    if (!this.#random) return randomUUID();
    // RFC 4122 v4 layout from the injected source, so seeded runs are reproducible.
    const b = this.randomBytes(16);
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const hex = b.toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  /** Same shape as Stytch's documented example secrets: 44 URL-safe characters. */
  newClientSecret(): string {
    return this.randomBytes(33).toString('base64url');
  }

  // ---- projects ----------------------------------------------------------

  createProject(opts: CreateProjectOptions = {}): CreatedProject {
    const projectId = opts.projectId ?? `project-test-${this.uuid()}`;
    if (this.#projects.has(projectId)) throw new Error(`Project ${projectId} already exists`);
    const projectSlug = opts.projectSlug ?? defaultProjectSlug(projectId);
    const environmentSlug = opts.environmentSlug ?? (isLive(projectId) ? 'production' : 'test');
    for (const [name, slug] of [['projectSlug', projectSlug], ['environmentSlug', environmentSlug]] as const) {
      if (!SLUG.test(slug)) throw new Error(`${name} ${JSON.stringify(slug)} is not a slug: use lowercase letters, digits and dashes`);
    }
    if (this.#findEnvironment(projectSlug, environmentSlug)) {
      throw new Error(`Project ${projectSlug} already has an environment ${environmentSlug}`);
    }
    const first = this.#newSecretRecord(projectId, opts.secret);
    this.#projects.set(projectId, { projectId, projectSlug, environmentSlug, secrets: [first] });
    return { projectId, secret: first.secret, secretId: first.secretId, projectSlug, environmentSlug };
  }

  /** Replaces all of the project's secrets with one new one: every earlier secret gets 401 from now on. */
  rotateProjectSecret(projectId: string): { secret: string; secretId: string } {
    const project = this.#requireProject(projectId);
    const record = this.#newSecretRecord(projectId);
    project.secrets = [record];
    return { secret: record.secret, secretId: record.secretId };
  }

  /**
   * Basic-auth check for the project API: any of the project's secrets
   * authenticates, and the one that did records the time (Stytch's `used_at`).
   */
  authenticateProject(projectId: string, secret: string): boolean {
    const record = this.#matchingSecret(projectId, secret);
    if (record === undefined) return false;
    record.usedAt = this.#now();
    return true;
  }

  /** Whether `secret` would authenticate for the project now, without counting as a use. */
  isProjectSecretAccepted(projectId: string, secret: string): boolean {
    return this.#matchingSecret(projectId, secret) !== undefined;
  }

  hasProject(projectId: string): boolean {
    return this.#projects.has(projectId);
  }

  /** The project's secrets, oldest first (records are live: callers must not change them). */
  projectSecrets(projectId: string): readonly ProjectSecretRecord[] {
    return this.#requireProject(projectId).secrets;
  }

  #matchingSecret(projectId: string, secret: string): ProjectSecretRecord | undefined {
    const project = this.#projects.get(projectId);
    return project?.secrets.find((record) => secretEquals(record.secret, secret));
  }

  #newSecretRecord(projectId: string, secret?: string): ProjectSecretRecord {
    const env = isLive(projectId) ? 'live' : 'test';
    return {
      secretId: `secret-${env}-${this.uuid()}`,
      secret: secret ?? `secret-${env}-${this.randomBytes(27).toString('base64url')}`,
      createdAt: this.#now(),
      usedAt: null,
    };
  }

  #requireProject(projectId: string): Project {
    const project = this.#projects.get(projectId);
    if (!project) throw new Error(`No project ${projectId}: call createProject first`);
    return project;
  }

  #findEnvironment(projectSlug: string, environmentSlug: string): Project | undefined {
    for (const project of this.#projects.values()) {
      if (project.projectSlug === projectSlug && project.environmentSlug === environmentSlug) return project;
    }
    return undefined;
  }

  // ---- the management API: workspace keys and project secrets ---------------

  /** A workspace management key: it manages every project of this emulator, and cannot call the project API. */
  createWorkspaceKey(): WorkspaceKey {
    const workspaceKeyId = `workspace-key-test-${this.uuid()}`;
    const workspaceKeySecret = this.randomBytes(33).toString('base64url');
    this.#workspaceKeys.set(workspaceKeyId, workspaceKeySecret);
    return { workspaceKeyId, workspaceKeySecret };
  }

  authenticateWorkspaceKey(keyId: string, keySecret: string): boolean {
    const held = this.#workspaceKeys.get(keyId);
    return held !== undefined && secretEquals(held, keySecret);
  }

  /** The project environment a management path names, or the API's 404. */
  environmentBySlugs(projectSlug: string, environmentSlug: string): Project {
    const project = this.#findEnvironment(projectSlug, environmentSlug);
    if (project) return project;
    const projectExists = [...this.#projects.values()].some((p) => p.projectSlug === projectSlug);
    if (!projectExists) throw new EmulatedApiError(404, 'project_not_found', `Project ${projectSlug} was not found in this workspace.`);
    throw new EmulatedApiError(404, 'environment_not_found', `Environment ${environmentSlug} was not found in project ${projectSlug}.`);
  }

  /** A new secret for the environment, refused beyond MAX_PROJECT_SECRETS. */
  createProjectSecret(projectId: string): ProjectSecretRecord {
    const project = this.#requireProject(projectId);
    if (project.secrets.length >= MAX_PROJECT_SECRETS) {
      throw new EmulatedApiError(
        400,
        'too_many_secrets',
        `Environment ${project.environmentSlug} of project ${project.projectSlug} already has ${MAX_PROJECT_SECRETS} secrets, the most allowed. Delete one before creating another.`,
      );
    }
    const record = this.#newSecretRecord(projectId);
    project.secrets.push(record);
    return record;
  }

  requireProjectSecret(projectId: string, secretId: string): ProjectSecretRecord {
    const record = this.#requireProject(projectId).secrets.find((s) => s.secretId === secretId);
    if (!record) throw new EmulatedApiError(404, 'secret_not_found', `Secret ${secretId} was not found in this environment.`);
    return record;
  }

  /** Deletes at once: the secret gets 401 from the next request on. */
  deleteProjectSecret(projectId: string, secretId: string): void {
    const record = this.requireProjectSecret(projectId, secretId);
    const project = this.#requireProject(projectId);
    project.secrets = project.secrets.filter((s) => s !== record);
  }

  // ---- clients --------------------------------------------------------------

  createConnectedApp(
    projectId: string,
    opts: { clientType?: ConnectedAppClientType; clientName?: string; clientId?: string } = {},
  ): { client_id: string; client_secret: string | null } {
    this.#requireProject(projectId);
    const clientType = opts.clientType ?? 'first_party';
    if (!CONNECTED_APP_CLIENT_TYPES.includes(clientType)) throw new Error(`Unknown client type ${String(clientType)}`);
    const client = this.#addClient({
      kind: 'connected_app',
      projectId,
      clientId: opts.clientId ?? `connected-app-test-${this.uuid()}`,
      clientName: opts.clientName ?? 'Emulated Connected App',
      clientDescription: 'Created by the local Stytch emulator.',
      clientType,
      scopes: [],
      secret: isPublicClientType(clientType) ? null : this.newClientSecret(),
      nextSecret: null,
    });
    return { client_id: client.clientId, client_secret: client.secret };
  }

  createM2MClient(
    projectId: string,
    opts: { clientName?: string; scopes?: string[]; clientId?: string } = {},
  ): { client_id: string; client_secret: string } {
    this.#requireProject(projectId);
    const secret = this.newClientSecret();
    const client = this.#addClient({
      kind: 'm2m',
      projectId,
      clientId: opts.clientId ?? `m2m-client-test-${this.uuid()}`,
      clientName: opts.clientName ?? 'Emulated M2M client',
      clientDescription: 'Created by the local Stytch emulator.',
      scopes: [...(opts.scopes ?? [])],
      secret,
      nextSecret: null,
    });
    return { client_id: client.clientId, client_secret: secret };
  }

  #addClient(client: ClientRecord): ClientRecord {
    if (this.#clients.has(client.clientId)) throw new Error(`Client ${client.clientId} already exists`);
    this.#clients.set(client.clientId, client);
    return client;
  }

  /** Any client by id, ignoring projects (admin and test helpers). */
  requireClient(clientId: string): ClientRecord {
    const client = this.#clients.get(clientId);
    if (!client) throw new Error(`No client ${clientId}`);
    return client;
  }

  findClient(clientId: string): ClientRecord | undefined {
    return this.#clients.get(clientId);
  }

  /**
   * The client as an API caller of `projectId` sees it: a client of another
   * project, or of the other kind, does not exist for them.
   */
  lookup(kind: ClientKind, projectId: string, clientId: string): ClientRecord {
    const client = this.#clients.get(clientId);
    if (!client || client.kind !== kind || client.projectId !== projectId) {
      const message = `${KIND_LABEL[kind]} ${clientId} was not found in this project.`;
      throw new EmulatedApiError(404, ERROR_TYPES[kind].notFound, message);
    }
    return client;
  }

  isAccepted(clientId: string, secret: string): boolean {
    const client = this.#clients.get(clientId);
    if (!client) return false;
    return [client.secret, client.nextSecret].some((held) => held !== null && secretEquals(held, secret));
  }

  // ---- the rotation state machine (shared by the API and admin actions) -----

  rotateStart(client: ClientRecord): string {
    this.#requireConfidential(client);
    if (client.nextSecret !== null) {
      throw new EmulatedApiError(
        400,
        ERROR_TYPES[client.kind].alreadyRotating,
        `${KIND_LABEL[client.kind]} ${client.clientId} is already rotating its secret. ` +
          'Complete or cancel that rotation before starting a new one.',
      );
    }
    client.nextSecret = this.newClientSecret();
    return client.nextSecret;
  }

  rotate(client: ClientRecord): void {
    this.#requireConfidential(client);
    this.#requireRotating(client);
    client.secret = client.nextSecret;
    client.nextSecret = null;
  }

  rotateCancel(client: ClientRecord): void {
    this.#requireConfidential(client);
    this.#requireRotating(client);
    client.nextSecret = null;
  }

  #requireConfidential(client: ClientRecord): void {
    if (client.kind === 'connected_app' && isPublicClientType(client.clientType)) {
      throw new EmulatedApiError(
        400,
        'invalid_idp_client_type',
        `Client ${client.clientId} is a ${client.clientType} client: public clients have no client secret to rotate.`,
      );
    }
  }

  #requireRotating(client: ClientRecord): void {
    if (client.nextSecret === null) {
      throw new EmulatedApiError(
        400,
        ERROR_TYPES[client.kind].notRotating,
        `${KIND_LABEL[client.kind]} ${client.clientId} is not rotating its secret. Start a rotation first.`,
      );
    }
  }
}

function isLive(projectId: string): boolean {
  return projectId.startsWith('project-live-');
}

/** `project-test-3f0c…` → `3f0c…`: unique like the id, and a valid slug. */
function defaultProjectSlug(projectId: string): string {
  const slug = projectId
    .replace(/^project-(test|live)-/, '')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '');
  return slug === '' ? 'project' : slug;
}

// ---- wire shapes (field names and order as in the SDK's types) ---------------

/** Epoch milliseconds as the management API's ISO-8601 timestamps. */
export function isoTimestamp(ms: number): string {
  return new Date(ms).toISOString();
}

/** `MaskedSecret` (stytch-management-node lib/secrets.ts): `used_at` is left out until the secret is used. */
export function maskedSecretJson(record: ProjectSecretRecord): Record<string, unknown> {
  return {
    secret_id: record.secretId,
    last_four: record.secret.slice(-4),
    created_at: isoTimestamp(record.createdAt),
    ...(record.usedAt === null ? {} : { used_at: isoTimestamp(record.usedAt) }),
  };
}

/** `Secret`, the create response's only view of the value. */
export function createdSecretJson(record: ProjectSecretRecord): Record<string, unknown> {
  return { secret_id: record.secretId, secret: record.secret, created_at: isoTimestamp(record.createdAt) };
}

/** `ConnectedApp`, or `ConnectedAppWithNextClientSecret` when `nextClientSecret` is given. */
export function connectedAppJson(client: ClientRecord, nextClientSecret?: string): Record<string, unknown> {
  const common = {
    client_id: client.clientId,
    client_name: client.clientName,
    client_description: client.clientDescription,
    status: 'active',
    full_access_allowed: false,
    client_type: client.clientType,
    redirect_urls: [],
    access_token_expiry_minutes: 60,
    access_token_template_content: '',
    post_logout_redirect_urls: [],
    bypass_consent_for_offline_access: false,
  };
  const tail = {
    id_token_template_content: '',
    client_secret_last_four: lastFour(client.secret),
    next_client_secret_last_four: lastFour(client.nextSecret),
    access_token_custom_audience: '',
    logo_url: '',
    client_id_metadata_url: '',
  };
  // The start response has no creation_method (ConnectedAppWithNextClientSecret).
  return nextClientSecret === undefined
    ? { ...common, creation_method: 'api', ...tail }
    : { ...common, next_client_secret: nextClientSecret, ...tail };
}

/** `M2MClient`, or `M2MClientWithNextClientSecret` when `nextClientSecret` is given. */
export function m2mClientJson(client: ClientRecord, nextClientSecret?: string): Record<string, unknown> {
  return {
    client_id: client.clientId,
    ...(nextClientSecret === undefined ? {} : { next_client_secret: nextClientSecret }),
    client_name: client.clientName,
    client_description: client.clientDescription,
    status: 'active',
    scopes: [...client.scopes],
    client_secret_last_four: lastFour(client.secret),
    next_client_secret_last_four: lastFour(client.nextSecret),
    trusted_metadata: {},
  };
}
