import { InvalidInputError } from './errors.js';

/**
 * The rotated secret's text, handled so that every field but `client_secret`
 * is preserved exactly (DESIGN.md §2): the new version is the old text with
 * only the `client_secret` value replaced, byte for byte elsewhere (numbers
 * with all their digits, `-0`, `1e400`, a `__proto__` key, key order,
 * spacing). A value that could not be preserved that way, or that means
 * different things to different JSON readers (a key given twice), is refused
 * before any Stytch call. Messages name keys, never values (V).
 */

/** Secrets Manager's limit on a secret value (SecretString), in bytes. */
export const SECRET_VALUE_LIMIT_BYTES = 65_536;

interface Span {
  start: number;
  end: number;
}

/** Where the top-level `client_secret` value sits in the text; refuses duplicate keys anywhere. */
export function clientSecretSpan(text: string, what: string, fix: string): Span {
  const scanner = new Scanner(text, what, fix);
  const span = scanner.topLevelValue('client_secret');
  if (!span) throw new InvalidInputError(`${what} has no client_secret field. ${fix}`);
  return span;
}

/** The same text with the top-level `client_secret` replaced by `secret`; nothing else changes. */
export function withClientSecret(text: string, secret: string, what: string, fix: string): string {
  const { start, end } = clientSecretSpan(text, what, fix);
  return text.slice(0, start) + JSON.stringify(secret) + text.slice(end);
}

/**
 * The same text with the named top-level fields replaced (a project secret's `secret` and `secret_id`);
 * nothing else changes. Each field must be there already: a new version never gains or loses a key.
 */
export function withFields(text: string, values: Record<string, string>, what: string, fix: string): string {
  const spans = new Scanner(text, what, fix).topLevelValues();
  const edits = Object.entries(values).map(([key, value]) => {
    const span = spans.get(key);
    if (!span) throw new InvalidInputError(`${what} has no ${safeKey(key)} field. ${fix}`);
    return { ...span, value: JSON.stringify(value) };
  });
  // From the end, so earlier positions stay valid.
  edits.sort((a, b) => b.start - a.start);
  let out = text;
  for (const edit of edits) out = out.slice(0, edit.start) + edit.value + out.slice(edit.end);
  return out;
}

/** Refuses a value that could not be copied exactly (a key given twice anywhere, not an object). */
export function assertPreservable(text: string, what: string, fix: string): void {
  new Scanner(text, what, fix).topLevelValues();
}

/**
 * A strict JSON scanner that records positions: only what JSON.parse accepts
 * gets here (the text was parsed first), so it checks structure, not syntax
 * errors, and reports keys given twice in any object.
 */
class Scanner {
  private i = 0;

  constructor(
    private readonly text: string,
    private readonly what: string,
    private readonly fix: string,
  ) {}

  topLevelValue(key: string): Span | undefined {
    return this.topLevelValues().get(key);
  }

  topLevelValues(): Map<string, Span> {
    this.space();
    if (this.text[this.i] !== '{') throw new InvalidInputError(`${this.what} must be a JSON object. ${this.fix}`);
    const spans = this.object('');
    this.space();
    return spans;
  }

  private value(path: string): void {
    this.space();
    const c = this.text[this.i];
    if (c === '{') this.object(path);
    else if (c === '[') this.array(path);
    else if (c === '"') this.string();
    else this.scalar();
  }

  private object(path: string): Map<string, Span> {
    const spans = new Map<string, Span>();
    this.i++; // {
    this.space();
    if (this.text[this.i] === '}') {
      this.i++;
      return spans;
    }
    for (;;) {
      this.space();
      const keyStart = this.i;
      this.string();
      const key = JSON.parse(this.text.slice(keyStart, this.i)) as string;
      const field = path ? `${path}.${key}` : key;
      if (spans.has(key)) {
        // JSON readers disagree on which one wins: a copy could not mean the same to every reader.
        throw new InvalidInputError(`${this.what} gives the key "${safeKey(field)}" twice, so its meaning depends on the reader; keep one. ${this.fix}`);
      }
      this.space();
      this.i++; // :
      this.space();
      const start = this.i;
      this.value(field);
      spans.set(key, { start, end: this.i });
      this.space();
      if (this.text[this.i++] === '}') return spans;
    }
  }

  private array(path: string): void {
    this.i++; // [
    this.space();
    if (this.text[this.i] === ']') {
      this.i++;
      return;
    }
    for (let n = 0; ; n++) {
      this.value(`${path}[${n}]`);
      this.space();
      if (this.text[this.i++] === ']') return;
    }
  }

  private string(): void {
    this.i++; // opening quote
    for (;;) {
      const c = this.text[this.i++];
      if (c === '\\') this.i++;
      else if (c === '"') return;
      else if (c === undefined) return;
    }
  }

  private scalar(): void {
    while (this.i < this.text.length && !',}] \t\n\r'.includes(this.text[this.i]!)) this.i++;
  }

  private space(): void {
    while (this.i < this.text.length && ' \t\n\r'.includes(this.text[this.i]!)) this.i++;
  }
}

/** A key path for a message: field names are not secrets, but an odd one is cut short. */
function safeKey(key: string): string {
  return key.length > 80 ? `${key.slice(0, 77)}...` : key;
}
