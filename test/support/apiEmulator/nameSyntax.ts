/**
 * Kubernetes name syntax (k8s.io/apimachinery/pkg/util/validation): each check
 * returns the apiserver's own wording of what is wrong, [] when the value is valid.
 */

const dns1123LabelFmt = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const dns1123SubdomainFmt = `${dns1123LabelFmt}(\\.${dns1123LabelFmt})*`;
const qualifiedNameFmt = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const labelValueFmt = `(${qualifiedNameFmt})?`;
const envVarNameFmt = '[-._a-zA-Z][-._a-zA-Z0-9]*';

const dns1123Label = new RegExp(`^${dns1123LabelFmt}$`);
const dns1123Subdomain = new RegExp(`^${dns1123SubdomainFmt}$`);
const qualifiedName = new RegExp(`^${qualifiedNameFmt}$`);
const labelValue = new RegExp(`^${labelValueFmt}$`);
const envVarName = new RegExp(`^${envVarNameFmt}$`);

function maxLen(max: number): string {
  return `must be no more than ${max} characters`;
}

/** The length limit and the pattern are reported separately, as the apiserver does. */
function checkLengthAndPattern(value: string, max: number, pattern: RegExp, detail: string): string[] {
  const errs: string[] = [];
  if (value.length > max) errs.push(maxLen(max));
  if (!pattern.test(value)) errs.push(detail);
  return errs;
}

export function isDns1123Label(value: string): string[] {
  return checkLengthAndPattern(
    value,
    63,
    dns1123Label,
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character " +
      `(e.g. 'my-name',  or '123-abc', regex used for validation is '${dns1123LabelFmt}')`,
  );
}

export function isDns1123Subdomain(value: string): string[] {
  return checkLengthAndPattern(
    value,
    253,
    dns1123Subdomain,
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character " +
      `(e.g. 'example.com', regex used for validation is '${dns1123SubdomainFmt}')`,
  );
}

const qualifiedNameDetail =
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character " +
  `(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '${qualifiedNameFmt}')`;

/** A label or annotation key: `[prefix/]name`, the prefix a DNS-1123 subdomain. */
export function isQualifiedName(value: string): string[] {
  const parts = value.split('/');
  let name: string;
  const errs: string[] = [];
  if (parts.length === 1) {
    name = parts[0] ?? '';
  } else if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    name = parts[1] ?? '';
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else errs.push(...isDns1123Subdomain(prefix).map((msg) => `prefix part ${msg}`));
  } else {
    return [`a qualified name ${qualifiedNameDetail} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push(`name part ${maxLen(63)}`);
  if (name.length > 0 && !qualifiedName.test(name)) errs.push(`name part ${qualifiedNameDetail}`);
  return errs;
}

export function isValidLabelValue(value: string): string[] {
  return checkLengthAndPattern(
    value,
    63,
    labelValue,
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character " +
      `(e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '${labelValueFmt}')`,
  );
}

export function isEnvVarName(value: string): string[] {
  if (envVarName.test(value)) return [];
  return [
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit " +
      `(e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '${envVarNameFmt}')`,
  ];
}

/** The generateName suffix alphabet of the apiserver (no vowels, no look-alike digits). */
const nameSuffixAlphabet = 'bcdfghjklmnpqrstvwxz2456789';

/** Five characters of names.SimpleNameGenerator, as appended to a generateName. */
export function randomNameSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += nameSuffixAlphabet[Math.floor(Math.random() * nameSuffixAlphabet.length)];
  return s;
}
