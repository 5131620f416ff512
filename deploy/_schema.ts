/**
 * A small JSON-schema checker for the subset deploy_key.schema.json uses
 * (type, enum, properties, required, additionalProperties: false, items), so
 * deno.json's `deploy` key is checked offline with no package.
 *
 * @module
 */

/** The schema subset. */
export interface Schema {
  type?: "object" | "string" | "array" | "boolean";
  enum?: unknown[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean;
  items?: Schema;
}

const typeOf = (v: unknown) => Array.isArray(v) ? "array" : v === null ? "null" : typeof v;

/**
 * What is wrong with `value` under `schema`, one line per problem with its JSON path; empty
 * when it conforms.
 *
 * @example
 * ```ts
 * validate({ project: "x" }, schema, "deploy"); // ["deploy: \"project\" is not allowed", ...]
 * ```
 */
export function validate(value: unknown, schema: Schema, path: string): string[] {
  const errors: string[] = [];
  if (schema.type && typeOf(value) !== schema.type) {
    return [`${path}: expected ${schema.type}, found ${typeOf(value)}`];
  }
  if (schema.enum && !schema.enum.includes(value)) {
    errors.push(`${path}: expected one of ${schema.enum.join(", ")}`);
  }
  if (schema.type === "object") {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (!(key in obj)) errors.push(`${path}: "${key}" is required`);
    }
    for (const [key, v] of Object.entries(obj)) {
      const sub = schema.properties?.[key];
      if (sub) errors.push(...validate(v, sub, `${path}.${key}`));
      else if (schema.additionalProperties === false) {
        errors.push(`${path}: "${key}" is not allowed`);
      }
    }
  }
  if (schema.type === "array" && schema.items) {
    (value as unknown[]).forEach((v, i) => {
      errors.push(...validate(v, schema.items!, `${path}[${i}]`));
    });
  }
  return errors;
}
