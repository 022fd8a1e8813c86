import { randomUUID } from 'node:crypto';
import type { V1LabelSelector, V1NamedRuleWithOperations } from '@kubernetes/client-node';
import { admissionVariables, CelExpressionError, compileCel, type CompiledCel } from '../cel.js';
import { duplicate, forbidden, invalid, notSupported, required, type FieldError } from './fieldError.js';
import { isQualifiedName } from './nameSyntax.js';
import type { ResourceType, StoredObject } from './resources.js';
import type { UserInfo } from './serviceAccountTokens.js';
import { admissionForbidden, ApiError } from './status.js';
import { ruleMatches, selectorMatches, type AdmissionRequestTarget } from './webhookMatching.js';

/*
 * kube-apiserver's ValidatingAdmissionPolicy admission plugin
 * (k8s.io/apiserver/pkg/admission/plugin/policy/validating), for the objects the emulator
 * serves: policies and bindings are stored like other objects (their CEL compiled when they
 * are written), and every CREATE, UPDATE (PUT and PATCH, after the patch is applied) and
 * DELETE is checked against them after the object's own validation, dry runs included.
 *
 * What is modelled: matchConstraints (resourceRules with resourceNames, excludeResourceRules,
 * namespaceSelector, objectSelector on the object or the old object) and a binding's
 * matchResources; matchConditions (one false skips the policy, an error falls to the
 * failurePolicy); variables (evaluated lazily, when an expression names them); validations
 * with message, messageExpression and reason; failurePolicy; the binding's validationActions
 * Deny (the apiserver's Status: `<resource> "<name>" is forbidden: ValidatingAdmissionPolicy
 * '<policy>' with binding '<binding>' denied request: <message>`, 422 Invalid unless the
 * validation names another reason, 403 for Forbidden) and Warn (a Warning header); the
 * variables object, oldObject, request (with userInfo), namespaceObject.
 *
 * What is not: params (paramKind and paramRef are refused when written), the authorizer
 * (an expression using it fails when evaluated), audit annotations and the Audit action
 * (nothing observable through the API), type checking against the resource's schema and
 * CEL cost limits (test/support/cel.ts says what its evaluator checks), the policy status
 * (typeChecking).
 *
 * Exempt, as in kube-apiserver: no policy applies to a write of the admission policies
 * themselves (policyExemptResources below), whatever its rules say. Webhook
 * configurations are NOT exempt: kube-apiserver does not call admission webhooks for
 * MutatingWebhookConfiguration and ValidatingWebhookConfiguration
 * (IsExemptAdmissionConfigurationResource, webhook dispatch only), but policies do apply to
 * them (the DIFF note on admissionExemptResources in kubernetes'
 * test/integration/apiserver/cel/admission_test_util.go).
 */

interface Rule extends V1NamedRuleWithOperations {
  resourceNames?: string[];
}

interface MatchResources {
  namespaceSelector?: V1LabelSelector;
  objectSelector?: V1LabelSelector;
  resourceRules?: Rule[];
  excludeResourceRules?: Rule[];
  matchPolicy?: string;
}

interface Validation {
  expression?: string;
  message?: string;
  messageExpression?: string;
  reason?: string;
}

interface NamedExpression {
  name?: string;
  expression?: string;
}

interface PolicySpec {
  failurePolicy?: string;
  matchConstraints?: MatchResources;
  matchConditions?: NamedExpression[];
  variables?: NamedExpression[];
  validations?: Validation[];
  auditAnnotations?: unknown[];
  paramKind?: unknown;
}

interface BindingSpec {
  policyName?: string;
  validationActions?: string[];
  matchResources?: MatchResources;
  paramRef?: unknown;
}

/** One request as the validating admission stage sees it. */
export interface ValidationRequest {
  operation: 'CREATE' | 'UPDATE' | 'DELETE';
  type: ResourceType;
  /** '' for the object itself, else the subresource (`status`). */
  subresource: string;
  namespace: string | undefined;
  name: string;
  /** null on DELETE. */
  object: StoredObject | null;
  /** null on CREATE. */
  oldObject: StoredObject | null;
  userInfo: UserInfo;
  dryRun: boolean;
  /** The options kind the request carried: CreateOptions, UpdateOptions (PUT), PatchOptions (PATCH), DeleteOptions. */
  optionsKind: 'CreateOptions' | 'UpdateOptions' | 'PatchOptions' | 'DeleteOptions';
  /** Where Warn decisions go (the apiserver's `Warning` headers). */
  warnings: string[];
}

/** Checks a request against the stored policies; throws the denial as an ApiError. */
export type ValidatingAdmission = (request: ValidationRequest) => void;

/** What the plugin reads from the store on every request. */
export interface PolicySource {
  policies(): StoredObject[];
  bindings(): StoredObject[];
  namespace(name: string): StoredObject | undefined;
}

/**
 * The group/resources no policy applies to, in any version and for any subresource: the
 * admission policy resources (admissionResources of the apiserver's generic policy plugin,
 * k8s.io/apiserver/pkg/admission/plugin/policy/generic/plugin.go; only the two validating
 * ones before MutatingAdmissionPolicy existed). kube-apiserver also exempts the
 * non-persisted review resources (tokenreviews, subjectaccessreviews and the like:
 * pkg/kubeapiserver/admission/exclusion/resources.go, kubernetes#123543), which the
 * emulator does not serve. The Kubernetes documentation lists both under "API kinds exempt
 * from admission validation" (Validating Admission Policy page).
 */
export const policyExemptResources: readonly { readonly group: string; readonly resource: string }[] = [
  { group: 'admissionregistration.k8s.io', resource: 'validatingadmissionpolicies' },
  { group: 'admissionregistration.k8s.io', resource: 'validatingadmissionpolicybindings' },
  { group: 'admissionregistration.k8s.io', resource: 'mutatingadmissionpolicies' },
  { group: 'admissionregistration.k8s.io', resource: 'mutatingadmissionpolicybindings' },
];

/** Whether kube-apiserver skips every policy for writes of this group and resource. */
export function isPolicyExempt(group: string, resource: string): boolean {
  return policyExemptResources.some((r) => r.group === group && r.resource === resource);
}

const validationActions = ['Deny', 'Warn', 'Audit'];
const reasons = ['Unauthorized', 'Forbidden', 'Invalid', 'RequestEntityTooLarge'];
/** celconfig.MaxEvaluatedMessageExpressionSizeBytes */
const maxMessageBytes = 5 * 1024;
const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

// ---------------------------------------------------------------------------------------
// Compiling (when a policy is written, and cached for evaluation)

type ExpressionRole = 'matchCondition' | 'validation' | 'messageExpression' | 'variable';

/** matchConditions cannot name `variables` (they run before them); everything else can. */
function variablesOf(role: ExpressionRole): readonly string[] {
  return role === 'matchCondition' ? admissionVariables.filter((v) => v !== 'variables') : admissionVariables;
}

const compiled = new Map<string, CompiledCel | CelExpressionError>();

/** The compiled expression; throws the CelExpressionError (phase `compile`). */
function compile(role: ExpressionRole, expression: string): CompiledCel {
  const key = `${role}\u0000${expression}`;
  let entry = compiled.get(key);
  if (entry === undefined) {
    try {
      entry = compileCel(expression, { variables: variablesOf(role), ...(role === 'matchCondition' || role === 'validation' ? { returnType: 'bool' as const } : {}) });
    } catch (err) {
      if (!(err instanceof CelExpressionError)) throw err;
      entry = err;
    }
    compiled.set(key, entry);
  }
  if (entry instanceof CelExpressionError) throw entry;
  return entry;
}

/** The names an expression reads as `variables.<name>`, in order of appearance. */
function variableReferences(expression: string): string[] {
  return [...new Set([...expression.matchAll(/\bvariables\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] ?? ''))];
}

/** Compile errors of one expression, as field errors at `path`; `declared` are the variables it may name. */
function expressionErrors(role: ExpressionRole, expression: string | undefined, path: string, declared: readonly string[]): FieldError[] {
  const text = (expression ?? '').trim();
  if (text === '') return [required(path)];
  try {
    compile(role, text);
  } catch (err) {
    return [invalid(path, text, (err as CelExpressionError).detail)];
  }
  if (role === 'matchCondition') return [];
  return variableReferences(text)
    .filter((name) => !declared.includes(name))
    .map((name) => invalid(path, text, `compilation failed: ERROR: <input>: undefined field '${name}'`));
}

function matchResourcesErrors(match: MatchResources | undefined, path: string, rulesRequired: boolean): FieldError[] {
  const errs: FieldError[] = [];
  if (match === undefined) return rulesRequired ? [required(path)] : [];
  if (rulesRequired && !(match.resourceRules?.length)) errs.push(required(`${path}.resourceRules`));
  if (match.matchPolicy !== undefined && match.matchPolicy !== 'Exact' && match.matchPolicy !== 'Equivalent') errs.push(notSupported(`${path}.matchPolicy`, match.matchPolicy, ['Exact', 'Equivalent']));
  return errs;
}

/** The apiserver's validation of a ValidatingAdmissionPolicy's spec (beyond its OpenAPI schema). */
export function validatePolicySpec(obj: object): FieldError[] {
  const spec: PolicySpec = (obj as { spec?: PolicySpec }).spec ?? {};
  const errs: FieldError[] = [];
  if (spec.paramKind !== undefined) errs.push(forbidden('spec.paramKind', 'the API emulator does not support policy parameters'));
  if (spec.failurePolicy !== undefined && spec.failurePolicy !== 'Fail' && spec.failurePolicy !== 'Ignore') errs.push(notSupported('spec.failurePolicy', spec.failurePolicy, ['Fail', 'Ignore']));
  errs.push(...matchResourcesErrors(spec.matchConstraints, 'spec.matchConstraints', true));
  if (!spec.validations?.length && !spec.auditAnnotations?.length) errs.push(required('spec.validations', 'validations or auditAnnotations must contain at least one item'));

  const declared: string[] = [];
  (spec.variables ?? []).forEach((variable, i) => {
    const at = `spec.variables[${i}]`;
    const name = variable.name ?? '';
    if (name === '') errs.push(required(`${at}.name`));
    else if (!identifier.test(name)) errs.push(invalid(`${at}.name`, name, 'name is not a valid CEL identifier'));
    else if (declared.includes(name)) errs.push(duplicate(`${at}.name`, name));
    // A variable may name only the variables before it.
    errs.push(...expressionErrors('variable', variable.expression, `${at}.expression`, declared));
    if (name !== '') declared.push(name);
  });

  const conditionNames = new Set<string>();
  (spec.matchConditions ?? []).forEach((condition, i) => {
    const at = `spec.matchConditions[${i}]`;
    const name = condition.name ?? '';
    if (name === '') errs.push(required(`${at}.name`));
    else for (const msg of isQualifiedName(name)) errs.push(invalid(`${at}.name`, name, msg));
    if (conditionNames.has(name)) errs.push(duplicate(`${at}.name`, name));
    conditionNames.add(name);
    errs.push(...expressionErrors('matchCondition', condition.expression, `${at}.expression`, []));
  });

  (spec.validations ?? []).forEach((validation, i) => {
    const at = `spec.validations[${i}]`;
    errs.push(...expressionErrors('validation', validation.expression, `${at}.expression`, declared));
    if (validation.messageExpression !== undefined) errs.push(...expressionErrors('messageExpression', validation.messageExpression, `${at}.messageExpression`, declared));
    if (validation.message !== undefined && /[\r\n]/.test(validation.message)) errs.push(invalid(`${at}.message`, validation.message, 'message must not contain line breaks'));
    if (validation.reason !== undefined && !reasons.includes(validation.reason)) errs.push(notSupported(`${at}.reason`, validation.reason, reasons));
  });
  return errs;
}

/** The apiserver's validation of a ValidatingAdmissionPolicyBinding's spec. */
export function validateBindingSpec(obj: object): FieldError[] {
  const spec: BindingSpec = (obj as { spec?: BindingSpec }).spec ?? {};
  const errs: FieldError[] = [];
  if (!spec.policyName) errs.push(required('spec.policyName'));
  if (spec.paramRef !== undefined) errs.push(forbidden('spec.paramRef', 'the API emulator does not support policy parameters'));
  const actions = spec.validationActions ?? [];
  if (actions.length === 0) errs.push(required('spec.validationActions'));
  const seen = new Set<string>();
  actions.forEach((action, i) => {
    if (!validationActions.includes(action)) errs.push(notSupported(`spec.validationActions[${i}]`, action, validationActions));
    if (seen.has(action)) errs.push(duplicate(`spec.validationActions[${i}]`, action));
    seen.add(action);
  });
  if (seen.has('Deny') && seen.has('Warn')) errs.push(invalid('spec.validationActions', actions, 'must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)'));
  errs.push(...matchResourcesErrors(spec.matchResources, 'spec.matchResources', false));
  return errs;
}

/** The defaults the apiserver stores (failurePolicy Fail, matchPolicy Equivalent, match-all selectors, scope `*`). */
export function applyPolicyDefaults(obj: StoredObject): void {
  const spec = obj.spec as PolicySpec | undefined;
  if (typeof spec !== 'object' || spec === null) return;
  spec.failurePolicy ??= 'Fail';
  if (spec.matchConstraints) defaultMatchResources(spec.matchConstraints);
}

export function applyBindingDefaults(obj: StoredObject): void {
  const spec = obj.spec as BindingSpec | undefined;
  if (typeof spec === 'object' && spec !== null && spec.matchResources) defaultMatchResources(spec.matchResources);
}

function defaultMatchResources(match: MatchResources): void {
  match.matchPolicy ??= 'Equivalent';
  match.namespaceSelector ??= {};
  match.objectSelector ??= {};
  for (const rule of [...(match.resourceRules ?? []), ...(match.excludeResourceRules ?? [])]) rule.scope ??= '*';
}

// ---------------------------------------------------------------------------------------
// Matching

function labelsOf(obj: StoredObject | null): Record<string, string> {
  return obj?.metadata.labels ?? {};
}

function namedRuleMatches(rule: Rule, target: AdmissionRequestTarget, name: string): boolean {
  if (!ruleMatches(rule, target)) return false;
  return !rule.resourceNames?.length || rule.resourceNames.includes(name);
}

/**
 * matching.Matcher: the namespace and object selectors (the object selector matches when the
 * object or the old object matches), then the exclude rules, then the rules (a binding's
 * matchResources without rules constrains no resource).
 */
function matchesResources(match: MatchResources, request: ValidationRequest, target: AdmissionRequestTarget, rulesRequired: boolean): boolean {
  if (request.namespace !== undefined || request.type.resource === 'namespaces') {
    // A namespace is matched by its own labels.
    const labels = request.type.resource === 'namespaces' ? labelsOf(request.object ?? request.oldObject) : target.namespaceLabels;
    if (!selectorMatches(match.namespaceSelector, labels)) return false;
  }
  if (!selectorMatches(match.objectSelector, labelsOf(request.object)) && !selectorMatches(match.objectSelector, labelsOf(request.oldObject))) return false;
  if ((match.excludeResourceRules ?? []).some((rule) => namedRuleMatches(rule, target, request.name))) return false;
  const rules = match.resourceRules ?? [];
  if (rules.length === 0) return !rulesRequired;
  return rules.some((rule) => namedRuleMatches(rule, target, request.name));
}

// ---------------------------------------------------------------------------------------
// Evaluating

interface Decision {
  action: 'deny' | 'admit';
  message: string;
  reason: string;
}

/**
 * The bindings one policy's expressions see, with `variables` composed lazily (as the
 * apiserver composes them): a variable is evaluated once, when an expression first names it,
 * and an expression naming one that failed fails with that error. Values pass between
 * expressions as plain JSON-like values (a double with an integral value comes back as an int).
 */
class PolicyScope {
  private readonly values = new Map<string, { value: unknown } | { error: string }>();
  private readonly declared: Map<string, string>;

  constructor(
    variables: readonly NamedExpression[],
    private readonly base: Record<string, unknown>,
  ) {
    this.declared = new Map(variables.map((v) => [v.name ?? '', (v.expression ?? '').trim()]));
  }

  /** Evaluates an expression of `role`; throws a CelExpressionError on an evaluation error. */
  evaluate(role: ExpressionRole, expression: string): unknown {
    const program = compile(role, expression);
    const bindings: Record<string, unknown> = { ...this.base };
    if (program.references.has('variables')) {
      const resolved: Record<string, unknown> = {};
      for (const name of variableReferences(expression)) {
        const entry = this.variable(name);
        if ('error' in entry) throw new CelExpressionError(expression, 'evaluate', `composited variable "${name}" fails to evaluate: ${entry.error}`);
        resolved[name] = entry.value;
      }
      bindings.variables = resolved;
    }
    return program.evaluate(bindings);
  }

  private variable(name: string): { value: unknown } | { error: string } {
    const known = this.values.get(name);
    if (known) return known;
    const expression = this.declared.get(name);
    let entry: { value: unknown } | { error: string };
    if (expression === undefined) {
      entry = { error: `undefined field '${name}'` };
    } else {
      try {
        entry = { value: this.evaluate('variable', expression) };
      } catch (err) {
        if (!(err instanceof CelExpressionError)) throw err;
        entry = { error: err.detail };
      }
    }
    this.values.set(name, entry);
    return entry;
  }
}

function errorAction(failurePolicy: string | undefined): Decision['action'] {
  return (failurePolicy ?? 'Fail') === 'Ignore' ? 'admit' : 'deny';
}

/** validating/validator.go: matchConditions, then every validation with its message. */
function evaluatePolicy(spec: PolicySpec, scope: PolicyScope): Decision[] {
  const failure = errorAction(spec.failurePolicy);
  const conditionErrors: string[] = [];
  for (const condition of spec.matchConditions ?? []) {
    try {
      if (scope.evaluate('matchCondition', (condition.expression ?? '').trim()) === false) return [];
    } catch (err) {
      if (!(err instanceof CelExpressionError)) throw err;
      conditionErrors.push(err.message);
    }
  }
  if (conditionErrors.length > 0) {
    // utilerrors.NewAggregate: one message alone, several in brackets.
    const unique = [...new Set(conditionErrors)];
    return [{ action: failure, reason: '', message: unique.length === 1 ? (unique[0] ?? '') : `[${unique.join(', ')}]` }];
  }
  return (spec.validations ?? []).map((validation): Decision => {
    const expression = (validation.expression ?? '').trim();
    let result: unknown;
    try {
      result = scope.evaluate('validation', expression);
    } catch (err) {
      if (!(err instanceof CelExpressionError)) throw err;
      return { action: failure, reason: '', message: err.message };
    }
    if (result === true) return { action: 'admit', reason: '', message: '' };
    return { action: 'deny', reason: validation.reason ?? 'Invalid', message: failureMessage(validation, expression, scope) };
  });
}

/** The messageExpression's string when it yields a usable one, else the message, else `failed expression: …`. */
function failureMessage(validation: Validation, expression: string, scope: PolicyScope): string {
  if (validation.messageExpression !== undefined) {
    try {
      const value = scope.evaluate('messageExpression', validation.messageExpression.trim());
      if (typeof value === 'string') {
        const message = value.trim();
        if (message !== '' && !message.includes('\n') && Buffer.byteLength(message) <= maxMessageBytes) return message;
      }
    } catch (err) {
      // The apiserver logs it and falls back to the message.
      if (!(err instanceof CelExpressionError)) throw err;
    }
  }
  const message = (validation.message ?? '').trim();
  return message !== '' ? message : `failed expression: ${expression}`;
}

/** reasonToCode of the validating dispatcher. */
function codeOf(reason: string): number {
  switch (reason) {
    case 'Forbidden':
      return 403;
    case 'Unauthorized':
      return 401;
    case 'RequestEntityTooLarge':
      return 413;
    default:
      return 422;
  }
}

/** The CEL `request`: the AdmissionRequest as the apiserver builds it for CEL (cel.CreateAdmissionRequest). */
function admissionRequest(request: ValidationRequest): Record<string, unknown> {
  const { type } = request;
  const kind = { group: type.group, version: type.version, kind: type.kind };
  const resource = { group: type.group, version: type.version, resource: type.resource };
  return {
    uid: randomUUID(),
    kind,
    resource,
    ...(request.subresource ? { subResource: request.subresource } : {}),
    requestKind: kind,
    requestResource: resource,
    ...(request.subresource ? { requestSubResource: request.subresource } : {}),
    name: request.name,
    ...(request.namespace !== undefined ? { namespace: request.namespace } : {}),
    operation: request.operation,
    userInfo: request.userInfo,
    dryRun: request.dryRun,
    options: { apiVersion: 'meta.k8s.io/v1', kind: request.optionsKind },
  };
}

function byName(a: StoredObject, b: StoredObject): number {
  return a.metadata.name.localeCompare(b.metadata.name);
}

/**
 * The plugin over the stored policies and bindings. Policies in name order, each with its
 * bindings in name order; every denial is collected and the first one is returned, as the
 * dispatcher does.
 */
export function validatingAdmissionPolicies(source: PolicySource): ValidatingAdmission {
  return (request) => {
    // Before any matching: the exemption holds whatever a policy's rules say.
    if (isPolicyExempt(request.type.group, request.type.resource)) return;
    const bindings = source.bindings().sort(byName);
    if (bindings.length === 0) return;
    const namespaceObject = request.namespace === undefined ? undefined : source.namespace(request.namespace);
    const target: AdmissionRequestTarget = {
      operation: request.operation,
      group: request.type.group,
      version: request.type.version,
      resource: request.type.resource,
      subresource: request.subresource,
      namespaced: request.namespace !== undefined,
      namespaceLabels: namespaceObject?.metadata.labels ?? (request.namespace !== undefined ? { 'kubernetes.io/metadata.name': request.namespace } : {}),
      objectLabels: labelsOf(request.object ?? request.oldObject),
    };
    const base = {
      object: request.object,
      oldObject: request.oldObject,
      request: admissionRequest(request),
      namespaceObject: namespaceObject ?? null,
    };
    let denied: { policy: string; binding: string; decision: Decision } | undefined;
    for (const policy of source.policies().sort(byName)) {
      const spec = policy.spec as PolicySpec;
      if (!spec.matchConstraints || !matchesResources(spec.matchConstraints, request, target, true)) continue;
      for (const binding of bindings) {
        const bindingSpec = binding.spec as BindingSpec;
        if (bindingSpec.policyName !== policy.metadata.name) continue;
        if (bindingSpec.matchResources && !matchesResources(bindingSpec.matchResources, request, target, false)) continue;
        const actions = bindingSpec.validationActions ?? [];
        for (const decision of evaluatePolicy(spec, new PolicyScope(spec.variables ?? [], base))) {
          if (decision.action !== 'deny') continue;
          if (actions.includes('Deny')) denied ??= { policy: policy.metadata.name, binding: binding.metadata.name, decision };
          if (actions.includes('Warn')) request.warnings.push(`Validation failed for ValidatingAdmissionPolicy '${policy.metadata.name}' with binding '${binding.metadata.name}': ${decision.message}`);
        }
      }
    }
    if (denied) throw denial(request, denied.policy, denied.binding, denied.decision);
  };
}

/** admission.NewForbidden with the reason and code of the decision, and the message as its one cause. */
function denial(request: ValidationRequest, policy: string, binding: string, decision: Decision): ApiError {
  const message = `ValidatingAdmissionPolicy '${policy}' with binding '${binding}' denied request: ${decision.message}`;
  const error = admissionForbidden({ resource: request.type.resource, group: request.type.group, name: request.name }, message);
  const reason = decision.reason || 'Invalid';
  const status = { ...error.status, reason, code: codeOf(reason), details: { ...error.status.details, causes: [{ message }] } };
  return new ApiError(status);
}
