/**
 * A string Terraform must take as it is. Terraform reads `${…}` and `%{…}` in every string of a
 * configuration as interpolation and directives; shell text such as a buildspec's
 * `${REPOSITORY_URI%%/*}` or a user's environment value must be written `$${…}` and `%%{…}`.
 */
export function terraformLiteral(text: string): string {
  return text.replace(/([$%])\{/g, "$1$1{");
}
