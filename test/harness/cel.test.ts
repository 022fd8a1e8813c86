import { describe, expect, it } from '@jest/globals';
import { admissionVariables, CelExpressionError, compileCel } from '../support/cel.js';

/** The error a call throws, for assertions on its fields. */
function thrown(f: () => unknown): CelExpressionError {
  try {
    f();
  } catch (err) {
    if (err instanceof CelExpressionError) return err;
    throw err;
  }
  throw new Error('expected a CelExpressionError');
}

const pod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'orders-0', namespace: 'shop', labels: { app: 'orders', tier: 'gold' }, annotations: undefined },
  spec: {
    containers: [
      { name: 'app', image: 'busybox:1.36', ports: [{ containerPort: 8080 }] },
      { name: 'proxy', image: 'envoy:1.30' },
    ],
    terminationGracePeriodSeconds: 30,
  },
};
const request = { operation: 'CREATE', namespace: 'shop', kind: { group: '', version: 'v1', kind: 'Pod' }, userInfo: { username: 'alice', groups: ['dev', 'system:authenticated'] } };
const bindings = { object: pod, oldObject: null, request };

describe('compileCel', () => {
  it('refuses an expression that does not parse, naming the expression and where', () => {
    const err = thrown(() => compileCel("object.metadata.name == 'x' &&"));
    expect(err.phase).toBe('compile');
    expect(err.expression).toBe("object.metadata.name == 'x' &&");
    expect(err.detail).toMatch(/^compilation failed: ERROR: <input>:1:\d+: /);
    expect(err.message).toContain("CEL expression 'object.metadata.name == 'x' &&'");
  });

  it('refuses undeclared variables and unknown functions, as the apiserver\'s type checker does', () => {
    expect(thrown(() => compileCel("obj.metadata.name == 'x'")).detail).toBe("compilation failed: ERROR: <input>:1:1: undeclared reference to 'obj' (in container '')");
    expect(thrown(() => compileCel("object.metadata.name.startswith('x')")).detail).toMatch(/undeclared reference to 'startswith'/);
    // Comprehension variables are declared inside their macro only.
    expect(thrown(() => compileCel('object.spec.containers.all(c, c.name != "") && c.name == "x"')).detail).toMatch(/undeclared reference to 'c'/);
    // The declared variables can be narrowed (a webhook's matchConditions have no params).
    expect(() => compileCel('params.max > 1')).not.toThrow();
    expect(thrown(() => compileCel('params.max > 1', { variables: ['object', 'request'] })).detail).toMatch(/undeclared reference to 'params'/);
    expect(admissionVariables).toEqual(expect.arrayContaining(['object', 'oldObject', 'request']));
  });

  it('with returnType bool, refuses what can only be another type, and checks the rest when evaluated', () => {
    expect(thrown(() => compileCel("'yes'", { returnType: 'bool' })).detail).toBe('must evaluate to bool but got string');
    expect(thrown(() => compileCel('size(object.spec.containers)', { returnType: 'bool' })).detail).toBe('must evaluate to bool but got int');
    expect(thrown(() => compileCel('object.spec.containers.map(c, c.name)', { returnType: 'bool' })).detail).toBe('must evaluate to bool but got list');
    // Of type dyn until evaluated: the result decides.
    const name = compileCel('object.metadata.name', { returnType: 'bool' });
    const err = thrown(() => name.evaluate(bindings));
    expect(err.phase).toBe('evaluate');
    expect(err.message).toBe("expression 'object.metadata.name' resulted in error: must evaluate to bool but got string");
    expect(compileCel('request.operation == "CREATE" ? true : false', { returnType: 'bool' }).evaluate(bindings)).toBe(true);
  });

  it('lists the variables an expression reads', () => {
    expect([...compileCel('object.spec.containers.exists(c, c.name == request.userInfo.username)').references].sort()).toEqual(['object', 'request']);
  });
});

describe('evaluate', () => {
  it('binds objects as JSON: map access, has(), in, macros, string functions', () => {
    const cases: Array<[string, unknown]> = [
      ['has(object.metadata.labels)', true],
      ['has(object.metadata.annotations)', false],
      ["'tier' in object.metadata.labels && object.metadata.labels['tier'] == 'gold'", true],
      ["'zkleader.io/inject' in object.metadata.labels", false],
      ["object.spec.containers.all(c, c.image.contains(':'))", true],
      ["object.spec.containers.exists(c, c.name.startsWith('pro'))", true],
      ["object.spec.containers.exists_one(c, c.name.endsWith('p'))", true],
      ['object.spec.containers.map(c, c.name)', ['app', 'proxy']],
      ['object.spec.containers.filter(c, has(c.ports)).size()', 1],
      ["object.spec.containers[0].ports[0].containerPort == 8080 && object.spec.terminationGracePeriodSeconds > 10", true],
      ["request.userInfo.groups.exists(g, g == 'dev') && !(request.userInfo.username in ['bob'])", true],
      ["object.metadata.name.matches('^orders-[0-9]+$') && object.metadata.name.lowerAscii() == 'orders-0'", true],
      ['oldObject == null', true],
      ['{"n": size(object.spec.containers), "ok": true}', { n: 2, ok: true }],
      ['1.5 + 1.0', 2.5],
    ];
    for (const [expression, expected] of cases) expect([expression, compileCel(expression).evaluate(bindings)]).toEqual([expression, expected]);
  });

  it('compares whole maps and lists, as a ValidatingAdmissionPolicy comparing object and oldObject does', () => {
    const webhook = { name: 'inject.zkleader.io', rules: [{ operations: ['CREATE'], resources: ['pods'] }], clientConfig: { caBundle: 'QQ==' } };
    const unchanged = compileCel(
      'object.webhooks.size() == oldObject.webhooks.size() && object.webhooks.all(w, oldObject.webhooks.exists_one(o, o.name == w.name && w.rules == o.rules && has(w.objectSelector) == has(o.objectSelector)))',
      { returnType: 'bool' },
    );
    const old = { webhooks: [webhook] };
    expect(unchanged.evaluate({ object: { webhooks: [{ ...webhook, clientConfig: { caBundle: 'Qg==' } }] }, oldObject: old })).toBe(true);
    expect(unchanged.evaluate({ object: { webhooks: [{ ...webhook, rules: [{ operations: ['*'], resources: ['pods'] }] }] }, oldObject: old })).toBe(false);
  });

  it('reading an absent key is an error that names the expression (no such key)', () => {
    const expression = "object.metadata.annotations['zkleader.io/inject'] == 'true'";
    const err = thrown(() => compileCel(expression).evaluate(bindings));
    expect(err.phase).toBe('evaluate');
    expect(err.detail).toBe('no such key: annotations');
    expect(err.message).toBe(`expression '${expression}' resulted in error: no such key: annotations`);
    expect(thrown(() => compileCel("object.metadata.labels['team'] == 'x'").evaluate(bindings)).detail).toBe('no such key: team');
  });

  it('is an error to evaluate without a variable the expression reads; others need not be bound', () => {
    const err = thrown(() => compileCel("authorizer.group('').resource('pods').check('create').allowed()").evaluate(bindings));
    expect(err.detail).toMatch(/^no such attribute: authorizer/);
    expect(compileCel('object.kind == "Pod"').evaluate({ object: pod })).toBe(true);
  });

  it('keeps JSON integers as CEL ints and other numbers as doubles', () => {
    expect(compileCel('type(object.spec.terminationGracePeriodSeconds) == int').evaluate(bindings)).toBe(true);
    expect(compileCel('type(object.ratio) == double && object.ratio * 2.0 == 1.0').evaluate({ object: { ratio: 0.5 } })).toBe(true);
    expect(compileCel('9007199254740993 + 0').evaluate({})).toBe(9007199254740993n);
  });
});
