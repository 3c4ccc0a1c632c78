/**
 * `/health` runs database and Docker calls. Anyone who can reach the metrics port could otherwise
 * turn a flood of requests into a flood of those calls: answers come from a result at most maxAgeMs
 * old, and at most one probe runs at a time (requests during a probe share its result).
 */
export function cachedProbe<T>(
  probe: () => Promise<T>,
  maxAgeMs = 1_000,
  now: () => number = () => performance.now(),
): () => Promise<T> {
  let last: { value: T; at: number } | undefined;
  let running: Promise<T> | undefined;
  return () => {
    if (last && now() - last.at <= maxAgeMs) return Promise.resolve(last.value);
    running ??= probe()
      .then((value) => {
        last = { value, at: now() };
        return value;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
}
