import { expect } from 'chai';
import { createLogger, silentLogger, wantsPretty } from '../../lib/log.js';

/** A destination that keeps each JSON line pino writes. */
function capture(): { lines: Array<Record<string, unknown>>; write(msg: string): void } {
  const lines: Array<Record<string, unknown>> = [];
  return {
    lines,
    write(msg: string) {
      for (const line of msg.split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  };
}

describe('createLogger', () => {
  it('writes one JSON object per line with the message and bound fields', () => {
    const out = capture();
    const log = createLogger({ destination: out }).child({ host: 'example.org', module: 'roster' });
    log.info({ session: 's1' }, 'roster pushed');
    expect(out.lines).to.have.length(1);
    expect(out.lines[0]).to.include({ msg: 'roster pushed', host: 'example.org', module: 'roster', session: 's1', level: 30 });
  });

  it('redacts a password at the top level and one level down', () => {
    const out = capture();
    const log = createLogger({ destination: out });
    log.info({ password: 'hunter2', user: 'juliet' }, 'login');
    log.info({ account: { user: 'juliet', password: 'hunter2' } }, 'created');
    expect(out.lines[0]).to.include({ password: '[redacted]', user: 'juliet' });
    expect(out.lines[1]!.account).to.deep.equal({ user: 'juliet', password: '[redacted]' });
    expect(JSON.stringify(out.lines)).not.to.include('hunter2');
  });

  it('redacts a message body at the top level and one level down', () => {
    const out = capture();
    const log = createLogger({ destination: out });
    log.warn({ body: 'wherefore art thou' }, 'undeliverable');
    log.warn({ stanza: { to: 'romeo@example.net', body: 'wherefore art thou' } }, 'bounced');
    expect(out.lines[0]).to.include({ body: '[redacted]' });
    expect(out.lines[1]!.stanza).to.deep.equal({ to: 'romeo@example.net', body: '[redacted]' });
    expect(JSON.stringify(out.lines)).not.to.include('wherefore');
  });

  it('redacts a token at the top level and one level down', () => {
    const out = capture();
    const log = createLogger({ destination: out });
    log.info({ token: 'fast-secret', fast: { token: 'fast-secret' } }, 'fast token issued');
    expect(out.lines[0]).to.include({ token: '[redacted]' });
    expect(JSON.stringify(out.lines)).not.to.include('fast-secret');
  });

  it('logs at info and above by default', () => {
    const out = capture();
    const log = createLogger({ destination: out });
    log.debug('hidden');
    log.info('shown');
    expect(out.lines.map((l) => l.msg)).to.deep.equal(['shown']);
  });

  it('honours a configured level', () => {
    const out = capture();
    const log = createLogger({ destination: out, level: 'warn' });
    log.info('hidden');
    log.warn('shown');
    expect(out.lines.map((l) => l.msg)).to.deep.equal(['shown']);
  });
});

describe('wantsPretty', () => {
  it('pretty-prints on a terminal unless turned off', () => {
    expect(wantsPretty(undefined, true)).to.equal(true);
    expect(wantsPretty(true, true)).to.equal(true);
    expect(wantsPretty(false, true)).to.equal(false);
  });

  it('writes JSON when stdout is not a terminal, even if pretty is asked for', () => {
    expect(wantsPretty(undefined, false)).to.equal(false);
    expect(wantsPretty(true, false)).to.equal(false);
  });
});

describe('silentLogger', () => {
  it('enables no level', () => {
    const log = silentLogger();
    expect(log.isLevelEnabled('fatal')).to.equal(false);
    expect(log.level).to.equal('silent');
  });
});
