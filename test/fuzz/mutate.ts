import fc from 'fast-check';

/** Every path to a value inside a JSON-like value (objects and arrays), the root excluded. */
export function pathsOf(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (value === null || typeof value !== 'object') return [];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])]);
}

/** A deep copy of `value` with the thing at `at` replaced by `by` (undefined deletes it). */
export function setAt(value: unknown, at: ReadonlyArray<string | number>, by: unknown): unknown {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node = copy;
  for (const k of at.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = at[at.length - 1];
  if (last === undefined) return copy;
  if (by === undefined) delete node[last];
  else node[last] = by;
  return copy;
}

/** Values a hostile writer puts where a name, a path, a count or a list belongs. */
export const hostileValue = fc.oneof(
  fc.constantFrom(
    '../../etc/passwd',
    '/etc/shadow',
    '..',
    '.',
    '',
    'a/../../b',
    'x\ny',
    'x\0y',
    '\x1b[31m',
    'a'.repeat(70),
    'a'.repeat(5000),
    -1,
    1.5,
    1e308,
    0,
    true,
    null,
    [],
    {},
    undefined,
  ),
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

/** `base` with one to three of its values replaced by hostile ones. */
export function mutated<T>(base: T): fc.Arbitrary<unknown> {
  const paths = pathsOf(base);
  return fc.array(fc.tuple(fc.nat({ max: paths.length - 1 }), hostileValue), { minLength: 1, maxLength: 3 }).map((changes) => {
    let v: unknown = base;
    for (const [i, by] of changes) {
      const at = pathsOf(v)[i % Math.max(1, pathsOf(v).length)];
      if (at) v = setAt(v, at, by);
    }
    return v;
  });
}
