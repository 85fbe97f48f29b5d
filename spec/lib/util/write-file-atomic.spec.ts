// The pid file of `parley start --nodes N`: N processes write it at once. Concurrent writers of
// one file must all succeed (a shared temporary name made all but one fail with ENOENT), leave
// one writer's whole text, and no temporary file behind.
import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../lib/util/write-file-atomic.js';

describe('lib/util/writeFileAtomic', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-atomic-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lets concurrent writers of one file all succeed, leaving one whole text and no temporary file', async () => {
    const file = join(dir, 'parley.pid');
    const texts = Array.from({ length: 16 }, (_, i) => `${1000 + i}\n`);
    const outcomes = await Promise.allSettled(texts.map((t) => writeFileAtomic(file, t)));
    expect(outcomes.filter((o) => o.status === 'rejected')).to.deep.equal([]);
    expect(texts).to.include(readFileSync(file, 'utf8'));
    expect(readdirSync(dir)).to.deep.equal(['parley.pid']);
  });

  it('reports a failed write and removes its temporary file', async () => {
    const missing = join(dir, 'no-such-dir', 'parley.pid');
    let failure: unknown;
    await writeFileAtomic(missing, 'x').catch((err: unknown) => (failure = err));
    expect((failure as NodeJS.ErrnoException).code).to.equal('ENOENT');
    expect(readdirSync(dir)).to.deep.equal([]);
  });
});
