/**
 * Whether an id can become a file name (and a tar or shard key) as it is.
 *
 * Ids come from untrusted input and end up as `{output}/{id}.{ext}`. Anything that could
 * name another folder, a hidden file, or confuse a tool reading the dataset is refused
 * for that row rather than rewritten: a rewritten id could collide with a real one.
 */
const MAX_ID_BYTES = 200; // leaves room for the extension and a temporary suffix in 255

export function unsafeIdReason(id: string): string | undefined {
  if (id.length === 0) return 'it is empty';
  if (id.includes('/') || id.includes('\\')) return 'it contains a path separator';
  if (id.includes('..')) return 'it contains ".."';
  if (id.startsWith('.')) return 'it starts with "." (a hidden file)';
  // C0 controls (including NUL and newlines), DEL and C1 controls.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(id)) return 'it contains a control character';
  if (Buffer.byteLength(id) > MAX_ID_BYTES) return `it is longer than ${MAX_ID_BYTES} bytes`;
  return undefined;
}
