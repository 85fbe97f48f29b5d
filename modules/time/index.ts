// XEP-0202 Entity Time: the server's clock, as UTC and the local offset (XEP-0082 formats).
import { defineModule, NS, xml, z } from '../../lib/module-api.js';

/** XEP-0082 §3.2 DateTime in UTC, without fractional seconds: 2006-12-19T17:58:35Z. */
export function utcDateTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** XEP-0082 TZD of the process's time zone at `date`: +HH:MM or -HH:MM (never Z, XEP-0202 §4). */
export function timezoneOffset(date: Date): string {
  const minutes = -date.getTimezoneOffset();
  const abs = Math.abs(minutes);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${minutes < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export default defineModule({
  name: 'time',
  xeps: [{ xep: 202, version: '2.0', status: 'complete' }],
  features: { host: [NS.time] },
  defaultEnabled: true,
  config: z.strictObject({}),
  setup(ctx) {
    ctx.iq.get({ ns: NS.time, name: 'time', to: ['host'] }, () => {
      const now = new Date();
      return xml('time', { xmlns: NS.time }, xml('tzo', {}, timezoneOffset(now)), xml('utc', {}, utcDateTime(now)));
    });
  },
});
