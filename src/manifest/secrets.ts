/**
 * Secrets are told by their values: a value that is a credential is an error in both front ends
 * (it would sit in plain text in the synthesized configuration and the Terraform state), while a
 * name that merely sounds like one (`GITHUB_TOKEN`) is at most a warning, and none at all for a
 * Terraform reference or token, whose value is not in the configuration.
 */

/** Why a value looks like a secret, or undefined when it does not. */
export function secretValueReason(value: string): string | undefined {
  // A token of the user's code or a Terraform reference: its value is not in the configuration.
  if (isReference(value)) return undefined;
  const url = /\b[a-z][a-z0-9+.-]*:\/\/([^/\s:@]*):([^/\s@]+)@/i.exec(value);
  if (url && url[2] !== "" && !/^\$\{?[A-Za-z_]/.test(url[2]!)) return "holds a password in a URL (user:password@host)";
  if (/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(value)) return "holds a private key";
  if (/\b(AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/.test(value)) return "holds an AWS access key id";
  for (const [pattern, what] of TOKEN_FORMATS) if (pattern.test(value)) return `holds ${what}`;
  if (value.split(/[\s,;"']+/).some(isHighEntropy)) return "holds a long random-looking string, like a key or token";
  return undefined;
}

/** Tokens of well-known services, by their documented prefixes. */
const TOKEN_FORMATS: readonly [RegExp, string][] = [
  [/\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{40,}/, "a GitHub token"],
  [/\bglpat-[A-Za-z0-9_-]{20}\b/, "a GitLab token"],
  [/\bxox[abprs]-[A-Za-z0-9-]{10,}/, "a Slack token"],
  [/\bsk-(proj-|ant-)?[A-Za-z0-9_-]{20,}/, "an API secret key (sk-…)"],
  [/\bAIza[0-9A-Za-z_-]{35}\b/, "a Google API key"],
  [/\b(sk|rk)_live_[0-9A-Za-z]{16,}/, "a Stripe secret key"],
];

/**
 * A value the configuration does not hold: a cdktf token (`${TfToken[…]}`), a Terraform
 * interpolation (`${aws_s3_bucket.b.id}`), or a Secrets Manager / SSM reference by ARN.
 */
export function isReference(value: string): boolean {
  return value.includes("${") || /^arn:aws[a-z-]*:(secretsmanager|ssm):/.test(value);
}

/**
 * At least 32 characters of a key alphabet (base64, base64url, base62), letters and digits
 * mixed, with at least 4.3 bits of Shannon entropy per character: random keys have about 4.5 to
 * 5; identifiers, UUIDs, hex digests and words stay below.
 */
function isHighEntropy(token: string): boolean {
  if (token.length < 32 || !/^[A-Za-z0-9+/=_-]+$/.test(token)) return false;
  if (!/[0-9]/.test(token) || !/[A-Z]/.test(token) || !/[a-z]/.test(token)) return false;
  const counts = new Map<string, number>();
  for (const c of token) counts.set(c, (counts.get(c) ?? 0) + 1);
  let entropy = 0;
  for (const n of counts.values()) entropy -= (n / token.length) * Math.log2(n / token.length);
  return entropy >= 4.3;
}

/**
 * Whether a build arg or environment variable name looks like it carries a secret (a warning
 * only: see secretValueReason for what is an error). Names are
 * matched by their words, not by substrings, so `TOKENIZER_MODEL` or `MAX_TOKENS` pass while
 * `GITHUB_TOKEN`, `dbPassword` and `OPENAI_API_KEY` do not. A name that ends in a word naming a
 * reference to a secret (`DB_PASSWORD_SECRET_ARN`, `API_KEY_PARAMETER`) passes: that is what
 * the fix asks for.
 */
export function looksLikeSecret(name: string): boolean {
  const words = nameWords(name);
  if (words.length === 0) return false;
  if (REFERENCE_WORDS.has(words[words.length - 1]!)) return false;
  if (words.some((w) => SETTING_WORDS.has(w))) return false;
  if (words.some((w) => SECRET_WORDS.has(w))) return true;
  return words.some((w, i) => i + 1 < words.length && SECRET_PAIRS.has(`${w}_${words[i + 1]}`));
}

/** Upper-case words of a name: split on `_`, `-`, `.`, digits and camelCase boundaries. */
export function nameWords(name: string): string[] {
  return name
    .replace(/([a-z])([A-Z])/g, "$1_$2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2")
    .split(/[^A-Za-z]+/)
    .filter((w) => w !== "")
    .map((w) => w.toUpperCase());
}

/** Words that on their own name a secret. `TOKENS` is left out: `MAX_TOKENS` is a model setting. */
const SECRET_WORDS = new Set([
  "SECRET",
  "SECRETS",
  "TOKEN",
  "PASSWORD",
  "PASSWORDS",
  "PASSWD",
  "PASSPHRASE",
  "CREDENTIAL",
  "CREDENTIALS",
  "APIKEY",
  "PRIVATEKEY",
]);

/** Two-word secrets: `API_KEY`, `apiKey`, `PRIVATE_KEY`, `ACCESS_KEY` (`AWS_ACCESS_KEY_ID` included). */
const SECRET_PAIRS = new Set(["API_KEY", "PRIVATE_KEY", "ACCESS_KEY", "SECRET_KEY", "SIGNING_KEY", "CLIENT_SECRET", "AUTH_KEY"]);

/**
 * Last words that make the name a pointer to a secret rather than the secret itself: a Secrets
 * Manager ARN, name or id, an SSM parameter, a mounted file. `ID` also lets `AWS_ACCESS_KEY_ID`
 * pass: an access key id is not secret on its own (its secret access key is).
 */
const REFERENCE_WORDS = new Set(["ARN", "NAME", "ID", "PARAMETER", "PARAM", "PATH", "FILE", "URL", "ENDPOINT"]);

/**
 * Words that make a name a setting about secrets rather than a secret: `MAX_TOKEN_LENGTH`,
 * `TOKEN_TTL_SECONDS`, `PASSWORD_MIN_LENGTH`, `SECRETS_MANAGER_REGION`.
 */
const SETTING_WORDS = new Set([
  "MAX", "MIN", "LENGTH", "LEN", "TTL", "SECONDS", "SECS", "MINUTES", "HOURS", "DAYS", "MS", "TIMEOUT", "COUNT", "LIMIT",
  "SIZE", "REGION", "MANAGER", "ENABLED", "DISABLED", "ROTATION", "EXPIRY", "LIFETIME", "VERSION", "TYPE", "HEADER", "ALGORITHM",
]);
