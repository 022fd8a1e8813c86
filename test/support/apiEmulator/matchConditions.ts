import type { V1MatchCondition } from '@kubernetes/client-node';
import { CelExpressionError, compileCel, type CompiledCel } from '../cel.js';
import { duplicate, invalid, required, tooMany, type FieldError } from './fieldError.js';
import { isQualifiedName } from './nameSyntax.js';

/**
 * The variables kube-apiserver declares for a webhook's matchConditions
 * (k8s.io/apiserver/pkg/admission/plugin/cel/compile.go): no `params`, since webhooks have
 * no paramKind. `authorizer` compiles but is not bound by the emulator: a condition that
 * uses it fails when evaluated.
 */
const matchConditionVariables = ['object', 'oldObject', 'request', 'namespaceObject', 'authorizer'];
const maxMatchConditions = 64;

const cache = new Map<string, CompiledCel | CelExpressionError>();

/** A condition's expression compiled once; throws the CelExpressionError when it does not compile. */
function compiledCondition(expression: string): CompiledCel {
  let entry = cache.get(expression);
  if (entry === undefined) {
    try {
      entry = compileCel(expression, { variables: matchConditionVariables, returnType: 'bool' });
    } catch (err) {
      if (!(err instanceof CelExpressionError)) throw err;
      entry = err;
    }
    cache.set(expression, entry);
  }
  if (entry instanceof CelExpressionError) throw entry;
  return entry;
}

/**
 * The checks of a webhook's matchConditions when its configuration is created or updated
 * (k8s.io/kubernetes pkg/apis/admissionregistration/validation: validateMatchConditions):
 * at most 64, names required, qualified and unique, expressions required and compiling to a bool.
 */
export function validateMatchConditions(conditions: readonly Partial<V1MatchCondition>[] | undefined, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!conditions) return errs;
  if (conditions.length > maxMatchConditions) errs.push(tooMany(path, conditions.length, maxMatchConditions));
  const names = new Set<string>();
  conditions.forEach((condition, i) => {
    const at = `${path}[${i}]`;
    const expression = (condition.expression ?? '').trim();
    if (expression === '') {
      errs.push(required(`${at}.expression`));
    } else {
      try {
        compiledCondition(expression);
      } catch (err) {
        errs.push(invalid(`${at}.expression`, expression, (err as CelExpressionError).detail));
      }
    }
    const name = condition.name ?? '';
    if (name === '') errs.push(required(`${at}.name`));
    else for (const msg of isQualifiedName(name)) errs.push(invalid(`${at}.name`, name, msg));
    if (name !== '') {
      if (names.has(name)) errs.push(duplicate(`${at}.name`, name));
      names.add(name);
    }
  });
  return errs;
}

/** What the conditions decide: call the webhook, skip it, or refuse the request (failurePolicy Fail and an error). */
export type MatchResult = { matches: true } | { matches: false; failedCondition?: string } | { error: string };

/**
 * k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions/matcher.go: every condition
 * is evaluated; one that is false skips the webhook whatever the others did; otherwise an
 * error (an evaluation error, or a result that is not a bool) refuses the request under
 * failurePolicy Fail and skips the webhook under Ignore. The error is the apiserver's:
 * `expression '…' resulted in error: …`, several joined as `[a, b]`.
 */
export function evaluateMatchConditions(conditions: readonly V1MatchCondition[], failurePolicy: string | undefined, bindings: Record<string, unknown>): MatchResult {
  const errors: string[] = [];
  for (const condition of conditions) {
    let result: unknown;
    try {
      result = compiledCondition(condition.expression.trim()).evaluate(bindings);
    } catch (err) {
      if (!(err instanceof CelExpressionError)) throw err;
      errors.push(err.phase === 'compile' ? `compilation error: ${err.detail}` : err.message);
      continue;
    }
    if (result === false) return { matches: false, failedCondition: condition.name };
  }
  if (errors.length === 0) return { matches: true };
  if ((failurePolicy ?? 'Fail') === 'Ignore') return { matches: false };
  // utilerrors.NewAggregate: one message alone, several in brackets, duplicates once.
  const unique = [...new Set(errors)];
  return { error: unique.length === 1 ? (unique[0] ?? '') : `[${unique.join(', ')}]` };
}
