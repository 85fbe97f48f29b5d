// Parses a XEP-0313 §4 archive query: the XEP-0004 filter form and the XEP-0059 paging request.
// Bad input throws StanzaError (bad-request; feature-not-implemented for what is not supported).
import { buildForm, Jid, NS, readForm, StanzaError, xml } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';

export const NS_MAM_EXTENDED = `${NS.mam}#extended`;
const NS_XDATA_VALIDATE = 'http://jabber.org/protocol/xdata-validate';

/** Ids a query may name at once (the `ids` field): bounds the lookups one query makes. */
export const MAX_QUERY_IDS = 1000;

export interface MamQuery {
  queryId: string | undefined;
  with: Jid | undefined;
  /** Milliseconds since the epoch, inclusive (XEP-0313 §4.1.2). */
  start: number | undefined;
  end: number | undefined;
  /** #extended: exclusive bounds of the result set, by archive id. */
  afterId: string | undefined;
  beforeId: string | undefined;
  ids: string[] | undefined;
  /** XEP-0059: page size asked for; undefined when the client left it to the server. */
  max: number | undefined;
  /** XEP-0059 §2.2: the page after this id. */
  after: string | undefined;
  /** XEP-0059 §2.3/§2.5: the page before this id; '' asks for the last page. */
  before: string | undefined;
  /** #extended §4.3.4: send the page newest first. */
  flip: boolean;
}

const FIELDS = new Set(['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);

/** XEP-0082 DateTime: CCYY-MM-DDThh:mm:ss[.sss]TZD. */
const DATETIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Milliseconds of a XEP-0082 DateTime. Fractions finer than a millisecond round towards the
 * inside of the range (`start` up, `end` down) so that the bounds stay inclusive and exact.
 */
export function parseDateTime(text: string, round: 'up' | 'down'): number | undefined {
  const m = DATETIME.exec(text.trim());
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  if (!Number.isFinite(seconds)) return undefined;
  // Date.parse accepts 2023-02-30; a real date round-trips through its own ISO form.
  const [date, time] = m[1]!.split('T') as [string, string];
  const check = new Date(Date.parse(`${m[1]}Z`)).toISOString();
  if (!check.startsWith(`${date}T${time}`)) return undefined;
  const fraction = m[2] === undefined ? 0 : Number(`0${m[2]}`) * 1000;
  return seconds + (round === 'up' ? Math.ceil(fraction) : Math.floor(fraction));
}

/** XEP-0082 DateTime with milliseconds, as archive results and metadata carry it. */
export function formatDateTime(ms: number): string {
  return new Date(ms).toISOString();
}

function single(fields: ReadonlyMap<string, readonly string[]>, name: string): string | undefined {
  const values = fields.get(name);
  if (values === undefined) return undefined;
  if (values.length !== 1) throw StanzaError.badRequest(`field ${name} takes exactly one value`);
  const v = values[0]!.trim();
  if (v === '') throw StanzaError.badRequest(`field ${name} is empty`);
  return v;
}

function nonNegativeInt(text: string, what: string): number {
  const t = text.trim();
  if (!/^\d{1,9}$/.test(t)) throw StanzaError.badRequest(`${what} must be a non-negative integer`);
  return Number(t);
}

export function parseMamQuery(query: Element): MamQuery {
  if (query.attrs.node !== undefined) {
    // The node attribute is reserved for pubsub archives (XEP-0442); user archives have none.
    throw StanzaError.featureNotImplemented('this archive has no nodes');
  }
  const q: MamQuery = {
    queryId: query.attrs.queryid as string | undefined,
    with: undefined,
    start: undefined,
    end: undefined,
    afterId: undefined,
    beforeId: undefined,
    ids: undefined,
    max: undefined,
    after: undefined,
    before: undefined,
    flip: query.getChild('flip-page') !== undefined,
  };

  const forms = query.getChildren('x', NS.dataForms);
  if (forms.length > 1) throw StanzaError.badRequest('one form per query');
  const submitted = readForm(query);
  if (submitted) {
    const type = forms[0]!.attrs.type as string | undefined;
    // XEP-0004 §3.1: a query is a submitted form.
    if (type !== undefined && type !== 'submit') throw StanzaError.badRequest(`the query form must be of type submit, not ${type}`);
    const fields = submitted.fields;
    for (const name of fields.keys()) {
      // §4.1.5: "If a client includes a form field that the server does not recognise, the
      // server MUST respond with a 'feature-not-implemented' error."
      if (!FIELDS.has(name)) throw StanzaError.featureNotImplemented(`unknown query field ${name}`);
    }
    const formType = single(fields, 'FORM_TYPE');
    if (formType !== undefined && formType !== NS.mam) throw StanzaError.badRequest(`FORM_TYPE must be ${NS.mam}`);
    const withText = single(fields, 'with');
    if (withText !== undefined) {
      q.with = Jid.tryParse(withText);
      if (!q.with) throw StanzaError.badRequest('with is not a valid JID');
    }
    const start = single(fields, 'start');
    if (start !== undefined) {
      q.start = parseDateTime(start, 'up');
      if (q.start === undefined) throw StanzaError.badRequest('start is not a XEP-0082 DateTime');
    }
    const end = single(fields, 'end');
    if (end !== undefined) {
      q.end = parseDateTime(end, 'down');
      if (q.end === undefined) throw StanzaError.badRequest('end is not a XEP-0082 DateTime');
    }
    q.afterId = single(fields, 'after-id');
    q.beforeId = single(fields, 'before-id');
    const ids = fields.get('ids');
    if (ids !== undefined) {
      const clean = ids.map((v) => v.trim());
      if (clean.length === 0 || clean.some((v) => v === '')) throw StanzaError.badRequest('ids needs one or more non-empty values');
      if (clean.length > MAX_QUERY_IDS) throw StanzaError.badRequest(`at most ${MAX_QUERY_IDS} ids per query`);
      q.ids = [...new Set(clean)];
    }
  }

  const set = query.getChild('set', NS.rsm);
  if (set) {
    const max = set.getChild('max');
    if (max) q.max = nonNegativeInt(max.getText(), 'max');
    const after = set.getChild('after');
    if (after) {
      q.after = after.getText().trim();
      if (q.after === '') throw StanzaError.badRequest('after needs an id');
    }
    const before = set.getChild('before');
    if (before) q.before = before.getText().trim();
    if (set.getChild('index')) {
      // XEP-0059 §2.6 allows refusing out-of-order pages; ids page exactly and cheaply.
      throw StanzaError.featureNotImplemented('page by after/before ids, not by index');
    }
  }
  return q;
}

/** §4.1.5: the fields this archive supports, for clients that ask before querying. */
export function queryForm(): Element {
  const form = buildForm(
    'form',
    [
      { type: 'jid-single', var: 'with' },
      { type: 'text-single', var: 'start' },
      { type: 'text-single', var: 'end' },
      { type: 'text-single', var: 'before-id' },
      { type: 'text-single', var: 'after-id' },
      { type: 'list-multi', var: 'ids' },
    ],
    { formType: NS.mam },
  );
  // §4.1.5: the ids list is open (XEP-0122) and never enumerated.
  const ids = form.getChildren('field').find((f) => f.attrs.var === 'ids')!;
  ids.cnode(xml('validate', { xmlns: NS_XDATA_VALIDATE, datatype: 'xs:string' }, xml('open')));
  return form;
}
