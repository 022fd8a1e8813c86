import { badRequest } from './status.js';

/** One requirement of a label selector string (k8s.io/apimachinery/pkg/labels). */
export type Requirement =
  | { key: string; op: 'eq' | 'neq'; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists' };

export type Labels = Readonly<Record<string, string>>;

/**
 * Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k` (also `==`); commas outside
 * parentheses separate requirements that must all hold. Throws a 400 Status on bad syntax.
 */
export function parseLabelSelector(selector: string): Requirement[] {
  const requirements: Requirement[] = [];
  for (const part of splitTopLevel(selector)) {
    const text = part.trim();
    if (text === '') continue;
    requirements.push(parseRequirement(text, selector));
  }
  return requirements;
}

export function matchesLabels(requirements: readonly Requirement[], labels: Labels | undefined): boolean {
  const l = labels ?? {};
  return requirements.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const value = l[r.key];
    switch (r.op) {
      case 'eq':
        return has && value === r.value;
      case 'neq':
        return !has || value !== r.value;
      case 'in':
        return has && r.values.includes(value ?? '');
      case 'notin':
        return !has || !r.values.includes(value ?? '');
      case 'exists':
        return has;
      case 'notexists':
        return !has;
    }
  });
}

function splitTopLevel(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const ch = selector[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(selector.slice(start));
  return parts;
}

const keyPattern = '[A-Za-z0-9][-A-Za-z0-9_./]*';
const valuePattern = '[-A-Za-z0-9_.]*';
const setForm = new RegExp(`^(${keyPattern})\\s+(in|notin)\\s*\\(([^()]*)\\)$`);
const equalityForm = new RegExp(`^(${keyPattern})\\s*(==|=|!=)\\s*(${valuePattern})$`);
const existsForm = new RegExp(`^(!?)\\s*(${keyPattern})$`);

function parseRequirement(text: string, selector: string): Requirement {
  const set = setForm.exec(text);
  if (set) {
    if ((set[3] ?? '').trim() === '') throw badRequest(`for 'in', 'notin' operators, values set can't be empty (in label selector "${selector}")`);
    const values = (set[3] ?? '').split(',').map((v) => v.trim());
    if (values.some((v) => !new RegExp(`^${valuePattern}$`).test(v))) throw badSelector(selector, text);
    return { key: set[1] ?? '', op: set[2] === 'in' ? 'in' : 'notin', values };
  }
  const eq = equalityForm.exec(text);
  if (eq) return { key: eq[1] ?? '', op: eq[2] === '!=' ? 'neq' : 'eq', value: eq[3] ?? '' };
  const exists = existsForm.exec(text);
  if (exists) return { key: exists[2] ?? '', op: exists[1] === '!' ? 'notexists' : 'exists' };
  throw badSelector(selector, text);
}

function badSelector(selector: string, part: string): Error {
  return badRequest(`unable to parse requirement: found '${part}' in label selector "${selector}", expected: key, !key, key=value, key!=value, key in (v1,v2), key notin (v1,v2)`);
}

/** `fieldSelector` support for the fields every object has: metadata.name and metadata.namespace. */
export function parseFieldSelector(selector: string): Array<{ field: 'metadata.name' | 'metadata.namespace'; op: 'eq' | 'neq'; value: string }> {
  return splitTopLevel(selector)
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((p) => {
      const m = /^(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*)$/.exec(p);
      if (!m) throw badRequest(`"${p}" is not a known field selector: only "metadata.name", "metadata.namespace"`);
      return { field: m[1] === 'metadata.name' ? 'metadata.name' : 'metadata.namespace', op: m[2] === '!=' ? 'neq' : 'eq', value: m[3] ?? '' };
    });
}
