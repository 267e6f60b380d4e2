/**
 * Readers for the few fields ferry takes from runtime answers (`unknown` in, typed out).
 * Hand-written rather than zod: these shapes are tiny and zod's import costs ~100 ms of start-up.
 */

export type Fields = Readonly<Record<string, unknown>>;

export function asFields(value: unknown): Fields | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Fields)
    : undefined;
}

export function stringField(value: Fields | undefined, key: string): string | undefined {
  const field = value?.[key];
  return typeof field === "string" ? field : undefined;
}

export function stringsField(value: Fields | undefined, key: string): string[] {
  const field = value?.[key];
  return Array.isArray(field)
    ? field.filter((item): item is string => typeof item === "string")
    : [];
}

export function booleanField(value: Fields | undefined, key: string): boolean {
  return value?.[key] === true;
}

/** JSON text → value, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
