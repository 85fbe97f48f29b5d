// Writes a file whole, then renames it into place, so that a reader never sees half of it. The
// temporary name is unique per call: `parley start --nodes N` starts N processes that write the
// same pid file at once, and a shared `<file>.tmp` made the second rename fail (ENOENT), which
// ended that node at start and, through it, the whole `--nodes` start.
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';

export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
