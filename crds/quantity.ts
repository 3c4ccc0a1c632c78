/**
 * Resource quantities as users write them: memory like `256Mi`, `1g`, `512m`, `1073741824`
 * and cpus like `"0.5"` or `2`. Parsed into the units the Docker API takes.
 */

const BINARY_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  ki: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mi: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gi: 1024 ** 3,
  gb: 1024 ** 3,
  t: 1024 ** 4,
  ti: 1024 ** 4,
  tb: 1024 ** 4,
};

const MEMORY_PATTERN = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]{0,2})$/;

/** Docker refuses memory limits under 6 MiB at create time; reject them at validation instead. */
export const MIN_MEMORY_BYTES = 6 * 1024 ** 2;

/**
 * Memory in bytes, or undefined when the text is not a quantity. Units are binary whatever
 * their case (`1g` = `1Gi` = 1 GiB), as `docker run --memory` reads them.
 */
export function parseMemoryBytes(text: string): number | undefined {
  const match = MEMORY_PATTERN.exec(text.trim());
  if (!match) return undefined;
  const multiplier = BINARY_UNITS[match[2].toLowerCase()];
  if (multiplier === undefined) return undefined;
  const bytes = Math.floor(Number(match[1]) * multiplier);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const CPU_PATTERN = /^(\d+(?:\.\d{1,9})?|\.\d{1,9})$|^(\d+)m$/;

/** CPUs in nano-CPUs (Docker's `NanoCpus`); `"500m"` is accepted as Kubernetes writes it. */
export function parseNanoCpus(value: string | number): number | undefined {
  const text = String(value).trim();
  const match = CPU_PATTERN.exec(text);
  if (!match) return undefined;
  const nano = match[2] !== undefined ? Number(match[2]) * 1e6 : Math.round(Number(match[1]) * 1e9);
  return Number.isSafeInteger(nano) ? nano : undefined;
}
