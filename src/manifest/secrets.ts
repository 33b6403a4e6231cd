/**
 * Whether a build arg or environment variable name looks like it carries a secret. Names are
 * matched by their words, not by substrings, so `TOKENIZER_MODEL` or `MAX_TOKENS` pass while
 * `GITHUB_TOKEN`, `dbPassword` and `OPENAI_API_KEY` do not. A name that ends in a word naming a
 * reference to a secret (`DB_PASSWORD_SECRET_ARN`, `API_KEY_PARAMETER`) passes: that is what
 * the fix asks for.
 */
export function looksLikeSecret(name: string): boolean {
  const words = nameWords(name);
  if (words.length === 0) return false;
  if (REFERENCE_WORDS.has(words[words.length - 1]!)) return false;
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
