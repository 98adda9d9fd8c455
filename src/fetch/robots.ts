/**
 * The X-Robots-Tag opt-out. A site may say `X-Robots-Tag: noai` (or `noimageai`) to keep
 * its images out of AI training sets, or `noindex` / `noimageindex` to keep them out of
 * indexes, for every crawler or for one by name (`X-Robots-Tag: photo-concept-pipeline:
 * noai`). Checked on the response headers, before the body is read, as img2dataset does.
 * Which directives mean "no" is the user's choice (`--disallowed-robots-tags`).
 *
 * The default is img2dataset's own four (rom1504/img2dataset at 95523bc, main.py:114-115:
 * `["noai", "noimageai", "noindex", "noimageindex"]`): the same rows are refused as by the
 * tool people compare this one with, and a site owner who keeps an image out of indexes
 * is not second-guessed about a dataset, which is an index of images too.
 * `--disallowed-robots-tags noai,noimageai` is the narrower reading (training only).
 */
export const DEFAULT_DISALLOWED_ROBOTS_TAGS: readonly string[] = ['noai', 'noimageai', 'noindex', 'noimageindex'];

/**
 * The directive that opts this response out, or undefined. `agentTokens` are the names
 * this tool answers to (lower case): a directive scoped to another agent does not apply.
 */
export function robotsDenial(headerValues: readonly string[], agentTokens: readonly string[], denying: readonly string[]): string | undefined {
  for (const value of headerValues) {
    // One header line may hold several comma-separated directives; an agent prefix
    // ("name: a, b") scopes the directives after it on that line.
    let scoped = true;
    for (const rawPart of value.split(',')) {
      let part = rawPart.trim().toLowerCase();
      const colon = part.indexOf(':');
      if (colon >= 0) {
        const agent = part.slice(0, colon).trim();
        part = part.slice(colon + 1).trim();
        scoped = agent === '*' || agentTokens.includes(agent);
      }
      if (scoped && denying.includes(part)) return part;
    }
  }
  return undefined;
}

/** The product token of a User-Agent ("photo-concept-pipeline/0.1.0 (+url)" -> "photo-concept-pipeline"). */
export function agentToken(userAgent: string): string {
  return (userAgent.trim().split(/[\s/]/)[0] ?? '').toLowerCase();
}
