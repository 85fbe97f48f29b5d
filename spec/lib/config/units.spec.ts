import { expect } from 'chai';
import { parseDuration, parseSize, UnitError } from '../../../lib/config/units.js';

describe('config units', () => {
  describe('parseDuration', () => {
    it('reads seconds, minutes, hours, days and weeks as milliseconds', () => {
      expect(parseDuration('30s')).to.equal(30_000);
      expect(parseDuration('5m')).to.equal(300_000);
      expect(parseDuration('2h')).to.equal(7_200_000);
      expect(parseDuration('7d')).to.equal(604_800_000);
      expect(parseDuration('1w')).to.equal(604_800_000);
      expect(parseDuration('250ms')).to.equal(250);
    });

    it('accepts a space and a fraction between the number and the unit', () => {
      expect(parseDuration('1.5 h')).to.equal(5_400_000);
    });

    it('takes a plain number as milliseconds', () => {
      expect(parseDuration(1500)).to.equal(1500);
    });

    it('rejects a number-like string without a unit and suggests one', () => {
      expect(() => parseDuration('30')).to.throw(UnitError, /no unit.*"30ms" or "30s"/);
    });

    it('rejects unknown units, negative numbers and non-scalars', () => {
      expect(() => parseDuration('5 fortnights')).to.throw(UnitError, /not a duration/);
      expect(() => parseDuration(-1)).to.throw(UnitError, /non-negative/);
      expect(() => parseDuration({})).to.throw(UnitError, /got a mapping/);
    });
  });

  describe('parseSize', () => {
    it('reads binary units as powers of 1024', () => {
      expect(parseSize('256 KiB')).to.equal(262_144);
      expect(parseSize('10 MiB')).to.equal(10_485_760);
      expect(parseSize('1GiB')).to.equal(1_073_741_824);
    });

    it('reads decimal units as powers of 1000, case-insensitively', () => {
      expect(parseSize('1MB')).to.equal(1_000_000);
      expect(parseSize('2 kb')).to.equal(2000);
    });

    it('takes bytes from a plain number, a bare numeric string or the B unit', () => {
      expect(parseSize(4096)).to.equal(4096);
      expect(parseSize('512')).to.equal(512);
      expect(parseSize('512 B')).to.equal(512);
    });

    it('rounds fractional results down to whole bytes', () => {
      expect(parseSize('1.5 KiB')).to.equal(1536);
      expect(parseSize('0.3 KB')).to.equal(300);
    });

    it('rejects unknown units and negative numbers', () => {
      expect(() => parseSize('3 parsecs')).to.throw(UnitError, /not a size/);
      expect(() => parseSize(-5)).to.throw(UnitError, /non-negative/);
      expect(() => parseSize(true)).to.throw(UnitError, /got boolean/);
    });
  });
});
