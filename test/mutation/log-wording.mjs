// A Stryker ignorer: the wording of a log message, and nothing else. Mutating
// the text a log line says ("Rotation complete" → "") changes no behaviour a
// user or an invariant depends on, and tests that pin every log sentence would
// only make the wording hard to improve. What a log line must or must not
// carry is still tested: its level, its structured fields (last fours, Stytch
// ids), the metrics beside it, and that it holds no secret (V).
//
// Only the first argument of logger.debug/info/warn/error is ignored, and only
// when it is a string or a template literal. Error messages (thrown errors, what
// an operator reads and acts on) are never ignored here.
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

function isLoggerCall(call) {
  if (call.type !== 'CallExpression' || call.callee.type !== 'MemberExpression') return false;
  const { object, property } = call.callee;
  if (property.type !== 'Identifier' || !LEVELS.has(property.name)) return false;
  // deps.logger.info(...), r.deps.logger.warn(...), logger.error(...), this.options.logger?.warn(...)
  const owner = object.type === 'Identifier' ? object.name : object.type === 'MemberExpression' && object.property.type === 'Identifier' ? object.property.name : '';
  return owner === 'logger';
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'log-wording', {
    shouldIgnore(path) {
      if (path.node.type !== 'StringLiteral' && path.node.type !== 'TemplateLiteral') return undefined;
      const parent = path.parentPath;
      if (!parent) return undefined;
      const call = parent.node.type === 'OptionalCallExpression' ? { ...parent.node, type: 'CallExpression' } : parent.node;
      const callee = call.callee?.type === 'OptionalMemberExpression' ? { ...call.callee, type: 'MemberExpression' } : call.callee;
      if (path.listKey === 'arguments' && path.key === 0 && isLoggerCall({ ...call, callee })) {
        return 'Log wording: a log message\'s text changes no behaviour (see test/mutation/log-wording.mjs).';
      }
      return undefined;
    },
  }),
];
