// A CloudFormation template as the tests read it, a small evaluator of the intrinsic
// functions the project's templates use (CloudFormation's view of a template for one
// set of parameter values), and the tools the template tests share.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
export interface Resource {
  Type: string;
  Condition?: string;
  DependsOn?: string | string[];
  Properties: JsonObject;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}
export interface Template {
  Parameters: Record<
    string,
    { Type: string; Default?: string | number; AllowedValues?: Json[]; AllowedPattern?: string; MinValue?: number; MaxValue?: number }
  >;
  Conditions: Record<string, Json>;
  Resources: Record<string, Resource>;
  Outputs: Record<string, { Value: Json; Condition?: string }>;
}

export const NO_VALUE = Symbol('AWS::NoValue');
export type Resolved = Json | string[] | typeof NO_VALUE;

export const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * What a test says the stack's own resources and the pseudo parameters resolve to
 * (the physical ids CloudFormation would give them).
 */
export interface World {
  refs: Record<string, string>;
  getAtts: Record<string, string>;
  pseudo: Record<string, string>;
}

/** Evaluates a template for one set of parameter values, as CloudFormation would. */
export class Evaluation {
  private readonly parameters: Record<string, string | string[]> = {};

  constructor(
    readonly template: Template,
    overrides: Record<string, string> = {},
    private readonly world: World,
  ) {
    for (const [name, spec] of Object.entries(template.Parameters)) {
      const raw = overrides[name] ?? (spec.Default === undefined ? undefined : String(spec.Default));
      if (raw === undefined) throw new Error(`parameter ${name} has no value`);
      if (spec.AllowedValues && !spec.AllowedValues.map(String).includes(raw)) {
        throw new Error(`parameter ${name}: ${raw} is not an allowed value`);
      }
      if (spec.AllowedPattern && !new RegExp(spec.AllowedPattern).test(raw)) {
        throw new Error(`parameter ${name}: ${raw} does not match ${spec.AllowedPattern}`);
      }
      if (spec.Type === 'Number') {
        const value = Number(raw);
        if (raw.trim() === '' || Number.isNaN(value)) throw new Error(`parameter ${name}: ${raw} is not a number`);
        if (spec.MinValue !== undefined && value < spec.MinValue) throw new Error(`parameter ${name}: ${raw} is below ${spec.MinValue}`);
        if (spec.MaxValue !== undefined && value > spec.MaxValue) throw new Error(`parameter ${name}: ${raw} is above ${spec.MaxValue}`);
      }
      this.parameters[name] = spec.Type === 'CommaDelimitedList' ? raw.split(',') : raw;
    }
  }

  condition(name: string): boolean {
    const definition = this.template.Conditions[name];
    if (definition === undefined) throw new Error(`no condition ${name}`);
    return this.test(definition);
  }

  /** Whether the stack has this resource for these parameters. */
  creates(logicalId: string): boolean {
    const resource = this.template.Resources[logicalId];
    if (!resource) throw new Error(`no resource ${logicalId}`);
    return resource.Condition === undefined || this.condition(resource.Condition);
  }

  resolve(node: Json): Resolved {
    if (Array.isArray(node)) {
      return node.map((item) => this.resolve(item)).filter((item) => item !== NO_VALUE) as Json[];
    }
    if (!isObject(node)) return node;
    const keys = Object.keys(node);
    const [key] = keys;
    if (keys.length === 1 && key !== undefined && (key === 'Ref' || key.startsWith('Fn::'))) {
      return this.intrinsic(key, node[key] ?? null);
    }
    const out: JsonObject = {};
    for (const [name, value] of Object.entries(node)) {
      const resolved = this.resolve(value);
      if (resolved !== NO_VALUE) out[name] = resolved as Json;
    }
    return out;
  }

  private test(node: Json): boolean {
    if (!isObject(node)) throw new Error(`not a condition: ${JSON.stringify(node)}`);
    if ('Condition' in node) return this.condition(String(node.Condition));
    const [[fn, args] = []] = Object.entries(node);
    if (!Array.isArray(args)) throw new Error(`bad condition ${JSON.stringify(node)}`);
    switch (fn) {
      case 'Fn::Equals':
        return JSON.stringify(this.resolve(args[0] ?? null)) === JSON.stringify(this.resolve(args[1] ?? null));
      case 'Fn::Not':
        return !this.test(args[0] ?? null);
      case 'Fn::And':
        return args.every((arg) => this.test(arg));
      case 'Fn::Or':
        return args.some((arg) => this.test(arg));
      default:
        throw new Error(`unsupported condition function ${fn}`);
    }
  }

  private ref(name: string): string | string[] | typeof NO_VALUE {
    if (name === 'AWS::NoValue') return NO_VALUE;
    const pseudo = this.world.pseudo[name];
    if (pseudo !== undefined) return pseudo;
    const parameter = this.parameters[name];
    if (parameter !== undefined) return parameter;
    if (!this.creates(name)) throw new Error(`Ref to ${name}, which these parameters do not create`);
    const value = this.world.refs[name];
    if (value === undefined) throw new Error(`no physical id for Ref ${name} in the test`);
    return value;
  }

  private getAtt(logicalId: string, attribute: string): string {
    if (!this.creates(logicalId)) throw new Error(`GetAtt on ${logicalId}, which these parameters do not create`);
    const value = this.world.getAtts[`${logicalId}.${attribute}`];
    if (value === undefined) throw new Error(`no value for GetAtt ${logicalId}.${attribute} in the test`);
    return value;
  }

  private string(node: Json): string {
    const value = this.resolve(node);
    if (typeof value !== 'string') throw new Error(`expected a string, got ${JSON.stringify(value)}`);
    return value;
  }

  private list(node: Json): string[] {
    const value = this.resolve(node);
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
      throw new Error(`expected a list of strings, got ${JSON.stringify(value)}`);
    }
    return value as string[];
  }

  private intrinsic(fn: string, args: Json): Resolved {
    const list = Array.isArray(args) ? args : [];
    switch (fn) {
      case 'Ref':
        return this.ref(String(args));
      case 'Fn::GetAtt':
        return this.getAtt(String(list[0]), String(list[1]));
      case 'Fn::If':
        return this.resolve((this.condition(String(list[0])) ? list[1] : list[2]) ?? null);
      case 'Fn::Join':
        return this.list(list[1] ?? null).join(String(list[0]));
      case 'Fn::Split':
        return this.string(list[1] ?? null).split(String(list[0]));
      case 'Fn::Sub': {
        const text = typeof args === 'string' ? args : String(list[0]);
        return text.replace(/\$\{([^}!][^}]*)\}/g, (_match, name: string) => {
          const dot = name.indexOf('.');
          const value = dot > 0 ? this.getAtt(name.slice(0, dot), name.slice(dot + 1)) : this.ref(name);
          if (typeof value !== 'string') throw new Error(`Fn::Sub variable ${name} is not a string`);
          return value;
        });
      }
      default:
        throw new Error(`unsupported intrinsic ${fn}`);
    }
  }
}

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: Json;
  Action: string | string[];
  Resource: string | string[];
  Condition?: JsonObject;
}

export const asList = (value: string | string[]): string[] => (Array.isArray(value) ? value : [value]);

/** Every policy document in a resolved template: role policies, trust policies, resource policies. */
export function policyStatements(node: Resolved, found: Statement[] = []): Statement[] {
  if (Array.isArray(node)) for (const item of node) policyStatements(item, found);
  else if (isObject(node)) {
    for (const [key, value] of Object.entries(node)) {
      if ((key === 'PolicyDocument' || key === 'AssumeRolePolicyDocument') && isObject(value)) {
        found.push(...(value.Statement as unknown as Statement[]));
      } else policyStatements(value, found);
    }
  }
  return found;
}

/** File names in a zip archive, read from its central directory. */
export function zipEntries(path: string): string[] {
  const zip = readFileSync(path);
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = zip.readUInt16LE(end + 10);
  let offset = zip.readUInt32LE(end + 16);
  const names: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const nameLength = zip.readUInt16LE(offset + 28);
    const extraLength = zip.readUInt16LE(offset + 30);
    const commentLength = zip.readUInt16LE(offset + 32);
    names.push(zip.toString('utf8', offset + 46, offset + 46 + nameLength));
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return names;
}


export async function findCfnLint(): Promise<string | undefined> {
  const candidates = (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'cfn-lint'));
  try {
    const { stdout } = await run('pyenv', ['root']);
    candidates.push(join(stdout.trim(), 'shims', 'cfn-lint'));
  } catch {
    // pyenv is not on PATH: try its default location.
  }
  candidates.push(join(process.env.HOME ?? '/root', '.pyenv', 'shims', 'cfn-lint'));
  for (const candidate of candidates) {
    if (!existsSync(candidate)) continue;
    try {
      await run(candidate, ['--version']);
      return candidate;
    } catch {
      // A pyenv shim for a Python version without cfn-lint: keep looking.
    }
  }
  return undefined;
}

