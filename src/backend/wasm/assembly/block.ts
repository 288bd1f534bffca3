// The host's geometry block (../geometry.ts) as the kernels read it. Each kernel copies the fields
// it needs into locals first: a field read inside a loop that stores to memory cannot be hoisted.

/** Field `field` of the geometry block at byte offset g. */
@inline export function geo(g: usize, field: i32): i32 {
  return load<i32>(g + ((<usize>field) << 2));
}
