import { access } from 'node:fs/promises';

/** Whether a file or folder is there (and visible to this process). */
export function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
