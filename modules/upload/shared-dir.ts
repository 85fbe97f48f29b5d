// In a cluster, a slot requested on one node may be PUT to another and fetched from a third:
// every node must keep files in one shared directory (a network mount). Each node proves it at
// start: the first writes a random token into the directory and into the shared database; the
// others must find the same token in their directory, or refuse to start.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeyValStore } from '../../lib/module-api.js';

export const MARKER = '.parley-cluster';

export class UploadDirNotShared extends Error {}

export async function checkSharedDir(dir: string, host: string, keyval: KeyValStore): Promise<void> {
  const file = join(dir, MARKER);
  await mkdir(dir, { recursive: true });
  try {
    await writeFile(file, randomBytes(16).toString('hex'), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const here = (await readFile(file, 'utf8')).trim();
  let shared = await keyval.get(host, '', 'shared-dir');
  if (shared === undefined) {
    await keyval.set(host, '', 'shared-dir', here);
    // Read back: another node may have written its own first.
    shared = await keyval.get(host, '', 'shared-dir');
  }
  if (shared !== here) {
    throw new UploadDirNotShared(
      `upload: ${dir} is not the directory the other cluster nodes keep uploads in (its ${MARKER} differs); ` +
        'mount one shared directory at modules.upload.path on every node (or copy that file along when moving the files)',
    );
  }
}
