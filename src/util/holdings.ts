/**
 * What an opened thing holds (a connection pool, a reader, a stream), released once: at
 * the end of its use or at an early close, whichever comes first, in the reverse order of
 * acquisition. Releasing again does nothing, so the two paths never race into a double
 * free.
 */
export class Holdings {
  #releases: Array<() => unknown> = [];

  /** Remembers how to release something; returns it for chaining. */
  hold<T>(thing: T, release: (thing: T) => unknown): T {
    this.#releases.push(() => release(thing));
    return thing;
  }

  /** Releases everything held, newest first; a release that fails does not stop the others. */
  async releaseAll(): Promise<void> {
    const releases = this.#releases.reverse();
    this.#releases = [];
    for (const release of releases) {
      try {
        await release();
      } catch {
        // Releasing is best effort: the thing is being abandoned either way.
      }
    }
  }
}
