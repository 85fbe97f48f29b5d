import { expect } from 'chai';
import { didYouMean, didYouMeanHint, editDistance } from '../../../lib/config/did-you-mean.js';

describe('did-you-mean', () => {
  it('counts insertions, deletions and substitutions', () => {
    expect(editDistance('kitten', 'sitting')).to.equal(3);
    expect(editDistance('', 'abc')).to.equal(3);
    expect(editDistance('same', 'same')).to.equal(0);
  });

  it('counts a swap of adjacent letters as one edit', () => {
    expect(editDistance('defualt', 'default')).to.equal(1);
  });

  it('suggests the closest candidate', () => {
    expect(didYouMean('hots', ['hosts', 'log', 'tls'])).to.equal('hosts');
    expect(didYouMean('probeIdleClent', ['probeIdleClients', 'interval'])).to.equal('probeIdleClients');
  });

  it('ignores case when comparing', () => {
    expect(didYouMean('Hosts', ['hosts'])).to.equal('hosts');
  });

  it('suggests nothing when no candidate is close', () => {
    expect(didYouMean('storage', ['hosts', 'log'])).to.equal(undefined);
    expect(didYouMeanHint('xyz', ['abcdef'])).to.equal(undefined);
  });

  it('phrases the hint as a question with the name quoted', () => {
    expect(didYouMeanHint('lgo', ['log'])).to.equal('did you mean "log"?');
  });
});
