/**
 * Which sessions use which image (by pull reference): what the image manager's per-image memory is
 * pruned by. A session uses one image at a time; moving to another, or being released, can leave an
 * image with no user, which is returned so that its caches can be forgotten.
 */
export class ImageUsers {
  private readonly users = new Map<string, Set<string>>();
  private readonly imageOf = new Map<string, string>();

  /** `session` uses `ref` now; returns the image it used before when no session uses that any more. */
  use(session: string, ref: string): string | undefined {
    const before = this.imageOf.get(session);
    if (before === ref) return undefined;
    const orphaned = this.release(session);
    this.imageOf.set(session, ref);
    const users = this.users.get(ref) ?? new Set<string>();
    users.add(session);
    this.users.set(ref, users);
    return orphaned;
  }

  /** `session` uses no image; returns the image it used when no session uses that any more. */
  release(session: string): string | undefined {
    const ref = this.imageOf.get(session);
    if (ref === undefined) return undefined;
    this.imageOf.delete(session);
    const users = this.users.get(ref);
    users?.delete(session);
    if (users && users.size > 0) return undefined;
    this.users.delete(ref);
    return ref;
  }

  inUse(ref: string): boolean {
    return this.users.has(ref);
  }

  images(): string[] {
    return [...this.users.keys()];
  }
}
