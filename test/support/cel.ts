import { celEnv, isCelError, isCelList, isCelMap, isCelUint, parse, plan, type CelInput, type CelValue } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';

/**
 * CEL as kube-apiserver evaluates it for admission (MutatingWebhook matchConditions,
 * ValidatingAdmissionPolicy validations and matchConditions), on @bufbuild/cel (a
 * conformance-tested evaluator) with its strings extension.
 *
 * What follows Kubernetes:
 * - variables are bound as the apiserver binds them: objects as JSON (maps, lists, strings,
 *   bools, null), JSON integers as CEL `int`, other numbers as `double`;
 * - reading a key a map does not have is an error, `no such key: x` (test with `has()` or `in`);
 * - an expression that names an undeclared variable or an unknown function does not
 *   compile (`undeclared reference to 'x'`), nor one that does not parse;
 * - with `returnType: 'bool'`, an expression that can only evaluate to another type does not
 *   compile (`must evaluate to bool but got string`).
 *
 * Where it cannot: kube-apiserver type-checks every expression and also refuses one of
 * static type `dyn` (`object.spec.hostNetwork` alone); there is no public type checker in
 * @bufbuild/cel, so such an expression compiles here and its result is checked when it is
 * evaluated (a non-bool is then an evaluation error). Kubernetes' own CEL libraries
 * (lists, regex find, url, ip, cidr, quantity, semver, authorizer) and optional syntax
 * (`a.?b`) are not available: using them fails to compile, naming what is missing.
 */

/** The variables kube-apiserver declares for admission expressions (webhook matchConditions, ValidatingAdmissionPolicy). */
export const admissionVariables: readonly string[] = ['object', 'oldObject', 'request', 'namespaceObject', 'authorizer', 'params', 'variables'];

export interface CelCompileOptions {
  /** The variables an expression may name (default: `admissionVariables`). */
  variables?: readonly string[];
  /** `bool`: the expression must evaluate to a bool, checked when it compiles as far as can be told, and on every evaluation. */
  returnType?: 'bool';
}

export interface CompiledCel {
  readonly expression: string;
  /** The declared variables the expression names. */
  readonly references: ReadonlySet<string>;
  /**
   * Evaluates with the variables bound to plain JSON-like values (objects, arrays,
   * strings, numbers, booleans, null; `undefined` members are absent). Returns the result
   * as a plain value: bool, string, number (an int beyond 2^53 stays a bigint), null,
   * array, object. Throws a CelExpressionError on an evaluation error, when a variable the
   * expression names is not bound, or when a `returnType: 'bool'` expression returns another type.
   */
  evaluate(bindings: Record<string, unknown>): unknown;
}

/** A compile or evaluation failure, naming the expression. `detail` is the apiserver's wording of the cause. */
export class CelExpressionError extends Error {
  constructor(
    readonly expression: string,
    readonly phase: 'compile' | 'evaluate',
    readonly detail: string,
  ) {
    // The evaluation wording is the apiserver's (k8s.io/apiserver/pkg/admission/plugin/cel/filter.go).
    super(phase === 'compile' ? `CEL expression '${expression}': ${detail}` : `expression '${expression}' resulted in error: ${detail}`);
    this.name = 'CelExpressionError';
  }
}

const env = celEnv({ funcs: strings });

type Expr = ReturnType<typeof parse>['expr'];
type SourceInfo = ReturnType<typeof parse>['sourceInfo'];

/** Operators the evaluator implements itself rather than as functions. */
const builtInOperators = new Set(['_[_]', '_[?_]', '_?._', '_?_:_', '_&&_', '_||_', '@not_strictly_false', '__not_strictly_false__']);
/**
 * Kubernetes' authorizer library (k8s.io/apiserver/pkg/cel/library/authz.go): expressions
 * using it compile, as in the apiserver, but no authorizer is bound here, so evaluating
 * them fails (`no such attribute: authorizer`).
 */
const authorizerFunctions = new Set(['path', 'group', 'serviceAccount', 'resource', 'subresource', 'namespace', 'name', 'check', 'allowed', 'reason', 'errored', 'error', 'fieldSelector', 'labelSelector']);
/** Type names, which CEL resolves as identifiers (`type(x) == int`). */
const typeIdentifiers = new Set(['bool', 'int', 'uint', 'double', 'string', 'bytes', 'list', 'map', 'null_type', 'type']);
/** Calls that always yield a bool, whatever their operands. */
const boolOperators = new Set(['_&&_', '_||_', '!_', '@not_strictly_false', '__not_strictly_false__']);

/**
 * Parses and checks a CEL expression; throws a CelExpressionError (phase `compile`) when it
 * does not parse, names an undeclared variable or unknown function, or (with
 * `returnType: 'bool'`) can only evaluate to another type.
 *
 * @example
 * const cond = compileCel("has(object.metadata.labels) && 'app' in object.metadata.labels", { returnType: 'bool' });
 * cond.evaluate({ object: pod, oldObject: null, request }); // true or false
 */
export function compileCel(expression: string, options: CelCompileOptions = {}): CompiledCel {
  const declared = new Set(options.variables ?? admissionVariables);
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(expression);
  } catch (err) {
    throw new CelExpressionError(expression, 'compile', `compilation failed: ERROR: ${(err as Error).message}`);
  }
  const references = new Set<string>();
  const undeclared = (name: string, id: bigint): never => {
    throw new CelExpressionError(expression, 'compile', `compilation failed: ERROR: ${location(expression, parsed.sourceInfo, id)}: undeclared reference to '${name}' (in container '')`);
  };
  walk(parsed.expr, new Set(), {
    ident(name, id) {
      if (typeIdentifiers.has(name) && !declared.has(name)) return;
      if (!declared.has(name)) undeclared(name, id);
      references.add(name);
    },
    call(name, id) {
      if (!builtInOperators.has(name) && env.funcs.find(name) === undefined) undeclared(name, id);
    },
  });
  if (options.returnType === 'bool') {
    const type = staticType(parsed.expr);
    if (type !== 'bool' && type !== 'dyn') throw new CelExpressionError(expression, 'compile', `must evaluate to bool but got ${type}`);
  }
  const program = plan(env, parsed);
  return {
    expression,
    references,
    evaluate(bindings) {
      const activation: Record<string, CelInput> = {};
      for (const name of references) {
        const value = bindings[name];
        if (value === undefined) throw new CelExpressionError(expression, 'evaluate', `no such attribute: ${name} (not bound for this evaluation)`);
        activation[name] = toCel(value);
      }
      const result = program(activation);
      if (isCelError(result)) throw new CelExpressionError(expression, 'evaluate', kubernetesWording(result.message));
      const value = fromCel(result);
      if (options.returnType === 'bool' && typeof value !== 'boolean') {
        throw new CelExpressionError(expression, 'evaluate', `must evaluate to bool but got ${runtimeTypeName(result)}`);
      }
      return value;
    },
  };
}

/** cel-go's words for the same errors, as Kubernetes users see them. */
function kubernetesWording(message: string): string {
  return message.replace(/^field not found: /, 'no such key: ');
}

interface Visitor {
  ident(name: string, id: bigint): void;
  call(name: string, id: bigint): void;
}

/** Visits free identifiers (not comprehension variables) and function names. */
function walk(e: Expr | undefined, bound: ReadonlySet<string>, visit: Visitor): void {
  if (!e) return;
  const kind = e.exprKind;
  switch (kind.case) {
    case 'identExpr':
      if (!bound.has(kind.value.name)) visit.ident(kind.value.name, e.id);
      return;
    case 'selectExpr':
      walk(kind.value.operand, bound, visit);
      return;
    case 'callExpr': {
      const qualified = qualifiedName(kind.value.target);
      // `ns.fn(x)` may be a namespaced function rather than a method of a variable `ns`.
      if (qualified !== undefined && !bound.has(qualified.split('.')[0] ?? '') && env.funcs.find(`${qualified}.${kind.value.function}`) !== undefined) {
        for (const arg of kind.value.args) walk(arg, bound, visit);
        return;
      }
      if (!(authorizerFunctions.has(kind.value.function) && rootIdentifier(kind.value.target) === 'authorizer')) visit.call(kind.value.function, e.id);
      walk(kind.value.target, bound, visit);
      for (const arg of kind.value.args) walk(arg, bound, visit);
      return;
    }
    case 'listExpr':
      for (const el of kind.value.elements) walk(el, bound, visit);
      return;
    case 'structExpr':
      for (const entry of kind.value.entries) {
        if (entry.keyKind.case === 'mapKey') walk(entry.keyKind.value, bound, visit);
        walk(entry.value, bound, visit);
      }
      return;
    case 'comprehensionExpr': {
      const c = kind.value;
      walk(c.iterRange, bound, visit);
      walk(c.accuInit, bound, visit);
      const inLoop = new Set([...bound, c.iterVar, c.accuVar, ...(c.iterVar2 ? [c.iterVar2] : [])]);
      walk(c.loopCondition, inLoop, visit);
      walk(c.loopStep, inLoop, visit);
      walk(c.result, new Set([...bound, c.accuVar]), visit);
      return;
    }
    default:
      return;
  }
}

/** The identifier a chain of selects and method calls starts from (`authorizer` in `authorizer.group('').check('get')`). */
function rootIdentifier(e: Expr | undefined): string | undefined {
  if (!e) return undefined;
  switch (e.exprKind.case) {
    case 'identExpr':
      return e.exprKind.value.name;
    case 'selectExpr':
      return rootIdentifier(e.exprKind.value.operand);
    case 'callExpr':
      return rootIdentifier(e.exprKind.value.target);
    default:
      return undefined;
  }
}

/** `a.b.c` for a chain of selects on an identifier; undefined for anything else. */
function qualifiedName(e: Expr | undefined): string | undefined {
  if (!e) return undefined;
  if (e.exprKind.case === 'identExpr') return e.exprKind.value.name;
  if (e.exprKind.case === 'selectExpr' && !e.exprKind.value.testOnly) {
    const operand = qualifiedName(e.exprKind.value.operand);
    return operand === undefined ? undefined : `${operand}.${e.exprKind.value.field}`;
  }
  return undefined;
}

/**
 * The type an expression evaluates to, as far as it can be told without declared types:
 * `dyn` when it depends on the variables. Conservative: never a concrete type the
 * expression might not have.
 */
function staticType(e: Expr | undefined): string {
  if (!e) return 'dyn';
  const kind = e.exprKind;
  switch (kind.case) {
    case 'constExpr':
      switch (kind.value.constantKind.case) {
        case 'boolValue':
          return 'bool';
        case 'int64Value':
          return 'int';
        case 'uint64Value':
          return 'uint';
        case 'doubleValue':
          return 'double';
        case 'stringValue':
          return 'string';
        case 'bytesValue':
          return 'bytes';
        case 'nullValue':
          return 'null_type';
        default:
          return 'dyn';
      }
    case 'listExpr':
      return 'list';
    case 'structExpr':
      return kind.value.messageName || 'map';
    case 'selectExpr':
      return kind.value.testOnly ? 'bool' : 'dyn';
    case 'comprehensionExpr': {
      const c = kind.value;
      const result = c.result;
      return result?.exprKind.case === 'identExpr' && result.exprKind.value.name === c.accuVar ? staticType(c.accuInit) : staticType(result);
    }
    case 'callExpr': {
      const name = kind.value.function;
      if (boolOperators.has(name)) return 'bool';
      if (name === '_?_:_') {
        const [, then, otherwise] = kind.value.args;
        const a = staticType(then);
        return a === staticType(otherwise) ? a : 'dyn';
      }
      const group = env.funcs.find(name);
      if (!group) return 'dyn';
      const results = new Set([...group].map((f) => f.result.toString()));
      const [only] = results;
      return results.size === 1 && only !== undefined && /^(bool|int|uint|double|string|bytes|null_type)$/.test(only) ? only : 'dyn';
    }
    default:
      return 'dyn';
  }
}

/** `<input>:LINE:COLUMN` of an expression node, as cel-go reports positions. */
function location(expression: string, sourceInfo: SourceInfo, id: bigint): string {
  const offset = sourceInfo?.positions[id.toString()];
  if (offset === undefined) return '<input>';
  const before = expression.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return `<input>:${line}:${column}`;
}

/** A JSON-like value as the apiserver hands it to CEL: integers as int, maps for objects, absent members left out. */
function toCel(value: unknown): CelInput {
  if (value === null || typeof value === 'boolean' || typeof value === 'string' || typeof value === 'bigint') return value;
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map((v) => toCel(v === undefined ? null : v));
  if (value instanceof Uint8Array) return value;
  if (value instanceof Map) return new Map([...value].filter(([, v]) => v !== undefined).map(([k, v]) => [String(k), toCel(v)]));
  if (value instanceof Date) return value.toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (typeof value === 'object') {
    return new Map(Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).map(([k, v]) => [k, toCel(v)]));
  }
  throw new Error(`a ${typeof value} cannot be bound to a CEL variable`);
}

/** A CEL result as a plain value. */
function fromCel(value: CelValue): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value;
  if (isCelUint(value)) return Number.isSafeInteger(Number(value.value)) ? Number(value.value) : value.value;
  if (isCelList(value)) return [...value].map(fromCel);
  if (isCelMap(value)) return Object.fromEntries([...value].map(([k, v]) => [String(isCelUint(k) ? k.value : k), fromCel(v)]));
  return value;
}

function runtimeTypeName(value: CelValue): string {
  if (value === null) return 'null_type';
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'number') return 'double';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'bool';
  if (value instanceof Uint8Array) return 'bytes';
  if (isCelUint(value)) return 'uint';
  if (isCelList(value)) return 'list';
  if (isCelMap(value)) return 'map';
  return 'dyn';
}
