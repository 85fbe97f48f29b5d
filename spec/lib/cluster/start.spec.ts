// Starting a cluster node without its Redis: one line that says what is wrong and what to do.
import { expect } from 'chai';
import { createServer } from 'node:net';
import { startTestServer } from '../../helpers/server.js';

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

describe('cluster: starting without Redis', function () {
  this.timeout(20_000);

  it('fails with PARLEY_ERR_REDIS naming the address and redis-server', async () => {
    const port = await closedPort();
    let error: (Error & { code?: string; hint?: string }) | undefined;
    try {
      const srv = await startTestServer({ cluster: { redis: `redis://127.0.0.1:${port}`, node: 'lonely' } });
      await srv.stop();
    } catch (err) {
      error = err as Error & { code?: string; hint?: string };
    }
    expect(error, 'start must fail').to.not.equal(undefined);
    expect(error!.code).to.equal('PARLEY_ERR_REDIS');
    expect(error!.message).to.contain(`127.0.0.1:${port}`);
    expect(`${error!.message} ${error!.hint ?? ''}`).to.contain('redis-server');
  });
});
