/**
 * Readers for operation inputs. The service checks the API model's
 * constraints (required members, lengths, patterns) before any business rule
 * and answers `ValidationException`; values are never echoed back, so no
 * secret or token ends up in an error message (invariant V).
 */
import { SecretsManagerServiceError, validation } from './errors.js';

export type Input = Record<string, unknown>;

export function asInput(input: unknown): Input {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new SecretsManagerServiceError('SerializationException', 'The request body must be a JSON object.');
  }
  return input as Input;
}

/** Member names appear in lower camel case in the service's validation messages. */
const wireName = (key: string): string => key.charAt(0).toLowerCase() + key.slice(1);

const wrongType = (key: string, expected: string): SecretsManagerServiceError =>
  new SecretsManagerServiceError('SerializationException', `${key} must be ${expected}.`);

interface StringRule {
  required?: boolean;
  min?: number;
  max?: number;
  pattern?: RegExp;
}

export function readString(input: Input, key: string, rule: StringRule & { required: true }): string;
export function readString(input: Input, key: string, rule?: StringRule): string | undefined;
export function readString(input: Input, key: string, rule: StringRule = {}): string | undefined {
  const value = input[key];
  if (value === undefined || value === null) {
    if (rule.required) throw validation(`Value null at '${wireName(key)}' failed to satisfy constraint: Member must not be null`);
    return undefined;
  }
  if (typeof value !== 'string') throw wrongType(key, 'a string');
  checkString(value, wireName(key), rule);
  return value;
}

function checkString(value: string, where: string, rule: StringRule): void {
  if (rule.min !== undefined && value.length < rule.min) {
    throw validation(`Value at '${where}' failed to satisfy constraint: Member must have length greater than or equal to ${rule.min}`);
  }
  if (rule.max !== undefined && value.length > rule.max) {
    throw validation(`Value at '${where}' failed to satisfy constraint: Member must have length less than or equal to ${rule.max}`);
  }
  if (rule.pattern && !rule.pattern.test(value)) {
    throw validation(`Value at '${where}' failed to satisfy constraint: Member must satisfy regular expression pattern: ${rule.pattern.source}`);
  }
}

export function readBoolean(input: Input, key: string): boolean | undefined {
  const value = input[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw wrongType(key, 'a boolean');
  return value;
}

export function readInteger(input: Input, key: string, rule: { min?: number; max?: number } = {}): number | undefined {
  const value = input[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw wrongType(key, 'an integer');
  if (rule.min !== undefined && value < rule.min) {
    throw validation(`Value at '${wireName(key)}' failed to satisfy constraint: Member must have value greater than or equal to ${rule.min}`);
  }
  if (rule.max !== undefined && value > rule.max) {
    throw validation(`Value at '${wireName(key)}' failed to satisfy constraint: Member must have value less than or equal to ${rule.max}`);
  }
  return value;
}

export function readStringList(
  input: Input,
  key: string,
  rule: StringRule & { maxItems?: number } = {},
): string[] | undefined {
  const value = input[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw wrongType(key, 'a list of strings');
  if (rule.maxItems !== undefined && value.length > rule.maxItems) {
    throw validation(`Value at '${wireName(key)}' failed to satisfy constraint: Member must have length less than or equal to ${rule.maxItems}`);
  }
  return value.map((item, i) => {
    if (typeof item !== 'string') throw wrongType(key, 'a list of strings');
    checkString(item, `${wireName(key)}.${i + 1}.member`, rule);
    return item;
  });
}

export function readObject(input: Input, key: string): Input | undefined {
  const value = input[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw wrongType(key, 'an object');
  return value as Input;
}

export interface Tag {
  Key: string;
  Value: string;
}

export function readTags(input: Input, key = 'Tags'): Tag[] | undefined {
  const value = input[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw wrongType(key, 'a list of tags');
  return value.map((raw) => {
    const tag = asInput(raw);
    return {
      Key: readString(tag, 'Key', { required: true, min: 1, max: 128 }),
      Value: readString(tag, 'Value', { max: 256 }) ?? '',
    };
  });
}

// Constraints from the service model (botocore secretsmanager/2017-10-17).
export const SECRET_ID = { required: true, min: 1, max: 2048 } as const;
export const VERSION_ID = { min: 32, max: 64 } as const;
export const CLIENT_REQUEST_TOKEN = { min: 32, max: 64 } as const;
export const VERSION_STAGE = { min: 1, max: 256 } as const;
export const SECRET_STRING = { max: 65536 } as const;
export const ROTATION_TOKEN = { min: 36, max: 256, pattern: /^[a-zA-Z0-9-]+$/ } as const;
export const LAMBDA_ARN = { max: 2048 } as const;
