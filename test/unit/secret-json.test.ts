import { describe, expect, it } from 'vitest';
import { clientSecretSpan, withClientSecret } from '../../functions/lib/secret-json.js';

/** The new version is the old text with only client_secret's value replaced (DESIGN.md §2). */
describe('withClientSecret', () => {
  const replace = (text: string) => withClientSecret(text, 'NEW"secret\\', 'The value', 'Fix it.');

  it('replaces only the top-level client_secret, whatever surrounds it', () => {
    const text = '{"a":{"client_secret":"nested"},"s":"x\\"client_secret\\":\\"y","client_secret" : "old\\u0041\\"", "z":[1e400,-0,12345678901234567890]}';
    expect(replace(text)).toBe('{"a":{"client_secret":"nested"},"s":"x\\"client_secret\\":\\"y","client_secret" : "NEW\\"secret\\\\", "z":[1e400,-0,12345678901234567890]}');
  });

  it('keeps whitespace, key order, a __proto__ key and unusual numbers byte for byte', () => {
    const text = '\n{ "__proto__" : {"x": 1.50},\n\t"client_secret":"old",\n "n": 1E+2 }\n';
    expect(replace(text)).toBe('\n{ "__proto__" : {"x": 1.50},\n\t"client_secret":"NEW\\"secret\\\\",\n "n": 1E+2 }\n');
  });

  it.each([
    ['{"client_secret":"a","client_secret":"b"}', 'client_secret'],
    ['{"client_secret":"a","x":{"k":1,"k":2}}', 'x.k'],
    ['{"client_secret":"a","x":[{"k":1},{"j":1,"j":2}]}', 'x[1].j'],
    ['{"client_secret":"a","\\u0074":1,"t":2}', 't'],
  ])('refuses %s, naming the key given twice (%s)', (text, key) => {
    expect(() => clientSecretSpan(text, 'The value', 'Fix it.')).toThrow(`gives the key "${key}" twice`);
  });

  it('refuses a value without a top-level client_secret', () => {
    expect(() => clientSecretSpan('{"a":{"client_secret":"x"}}', 'The value', 'Fix it.')).toThrow('The value has no client_secret field. Fix it.');
  });
});
