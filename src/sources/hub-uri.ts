/**
 * `hf://datasets/OWNER/NAME[@REVISION]/PATH`: a file of a Hugging Face Hub dataset, named
 * as huggingface_hub's HfFileSystem names it, read as the Hub's resolve URL
 * `{endpoint}/datasets/OWNER/NAME/resolve/REVISION/PATH` (the URL `hf_hub_url` builds).
 * That URL answers with a redirect to a signed CDN URL, which URL inputs follow
 * (http-input.ts), so the file is read in place, by ranges for Parquet.
 *
 * The grammar follows huggingface_hub's `parse_hf_uri` (utils/_hf_uris.py) for datasets:
 * an `@` right after OWNER/NAME starts the revision; `refs/pr/N` and `refs/convert/NAME`
 * are taken whole (they hold slashes), any other revision ends at the next `/` and is
 * URL-decoded (a branch with a `/` is written `%2F`). The revision goes into the URL
 * encoded whole (`quote(revision, safe="")`), the path with its slashes kept
 * (`quote(path)`). The endpoint is `HF_ENDPOINT` when set, as huggingface_hub reads it
 * (constants.py), else https://huggingface.co: a mirror, or a test server.
 *
 * Only dataset repositories: their files are what a pipeline reads rows from. Private and
 * gated datasets need a token, which is not sent: download those and pass the file.
 */
import { UsageError } from '../errors.js';

export const HUB_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';

/** Revisions that hold slashes, matched before the path is split off. */
const SPECIAL_REVISION = /^refs\/(?:convert\/[\w.-]+|pr\/\d+)/;

export function isHubUri(input: string): boolean {
  return /^hf:\/\//i.test(input);
}

/** What an `hf://` input names. */
export interface HubFile {
  readonly repo: string;
  readonly revision: string;
  readonly path: string;
}

/** The endpoint huggingface_hub would use: HF_ENDPOINT, trailing slashes dropped, or the Hub's. */
export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  const endpoint = env.HF_ENDPOINT?.trim();
  return endpoint ? endpoint.replace(/\/+$/, '') : HUB_ENDPOINT;
}

/** Parses `hf://datasets/OWNER/NAME[@REVISION]/PATH`; anything else is a UsageError saying the form. */
export function parseHubUri(uri: string): HubFile {
  const wrong = (why: string) => new UsageError(`--input ${uri}: ${why}; a Hub dataset file is hf://datasets/OWNER/NAME/PATH or hf://datasets/OWNER/NAME@REVISION/PATH`);
  const body = uri.replace(/^hf:\/\//i, '');
  const [type, ...rest] = body.split('/');
  if (type !== 'datasets') {
    if (type === 'dataset') throw wrong('the repository type is plural, "datasets"');
    throw wrong(type === 'models' || type === 'spaces' || type === 'buckets' ? `only dataset repositories are read, not ${type}` : 'not a dataset repository');
  }
  const location = rest.join('/');
  const at = location.indexOf('@');
  let repo: string;
  let revision = DEFAULT_REVISION;
  let path: string;
  // An `@` further along (after a second slash) is part of a file name.
  if (at === -1 || location.slice(0, at).split('/').length > 2) {
    const parts = location.split('/');
    repo = parts.slice(0, 2).join('/');
    path = parts.slice(2).join('/');
  } else {
    repo = location.slice(0, at);
    const revisionAndPath = location.slice(at + 1);
    const special = SPECIAL_REVISION.exec(revisionAndPath)?.[0];
    const end = special?.length ?? (revisionAndPath.includes('/') ? revisionAndPath.indexOf('/') : revisionAndPath.length);
    try {
      revision = decodeURIComponent(revisionAndPath.slice(0, end));
    } catch {
      throw wrong(`the revision ${JSON.stringify(revisionAndPath.slice(0, end))} is not valid URL encoding`);
    }
    path = revisionAndPath.slice(end).replace(/^\//, '');
    if (revision === '') throw wrong('the revision after "@" is empty');
  }
  if (!/^[^/]+\/[^/]+$/.test(repo)) throw wrong('the repository must be OWNER/NAME');
  if (path === '' || path.endsWith('/')) throw wrong('it names no file in the repository');
  return { repo, revision, path };
}

/** The Hub's resolve URL for an `hf://` input. */
export function hubResolveUrl(uri: string, endpoint: string = hubEndpoint()): string {
  const { repo, revision, path } = parseHubUri(uri);
  return `${endpoint}/datasets/${repo}/resolve/${quote(revision)}/${path.split('/').map(quote).join('/')}`;
}

/**
 * Python's `urllib.parse.quote(text, safe="")`: everything but letters, digits and `_.-~`
 * percent-encoded as UTF-8 (encodeURIComponent also spares `!'()*`).
 */
function quote(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}
