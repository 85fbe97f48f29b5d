// XEP-0004 data forms: building the forms Parley sends and reading the ones clients submit.
import { xml, type Element } from '../xml/element.js';
import { NS } from './ns.js';
import { StanzaError } from './error.js';

export type FieldType =
  | 'boolean' | 'fixed' | 'hidden' | 'jid-multi' | 'jid-single' | 'list-multi' | 'list-single'
  | 'text-multi' | 'text-private' | 'text-single';

export interface FormField {
  var?: string;
  type?: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  values?: readonly string[];
  options?: ReadonlyArray<{ value: string; label?: string }>;
}

export interface FormOptions {
  title?: string;
  instructions?: string;
  /** The hidden FORM_TYPE field (XEP-0068). */
  formType?: string;
}

export function buildForm(type: 'form' | 'result' | 'submit' | 'cancel', fields: readonly FormField[], opts: FormOptions = {}): Element {
  const form = xml(
    'x',
    { xmlns: NS.dataForms, type },
    opts.title ? xml('title', {}, opts.title) : null,
    opts.instructions ? xml('instructions', {}, opts.instructions) : null,
  );
  if (opts.formType) form.cnode(xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, opts.formType)));
  for (const f of fields) {
    form.cnode(
      xml(
        'field',
        { var: f.var, type: f.type, label: f.label },
        f.desc ? xml('desc', {}, f.desc) : null,
        f.required ? xml('required') : null,
        (f.options ?? []).map((o) => xml('option', { label: o.label }, xml('value', {}, o.value))),
        (f.values ?? []).map((v) => xml('value', {}, v)),
      ),
    );
  }
  return form;
}

export interface SubmittedForm {
  type: string;
  formType: string | undefined;
  fields: ReadonlyMap<string, readonly string[]>;
  /** The first value of a field. */
  value(name: string): string | undefined;
  /** XEP-0004 §3.3 booleans: "1"/"true" are true. */
  bool(name: string): boolean | undefined;
}

/** Reads the first `jabber:x:data` child of `parent`; bad-request when a field is malformed. */
export function readForm(parent: Element | undefined): SubmittedForm | undefined {
  const x = parent?.getChild('x', NS.dataForms);
  if (!x) return undefined;
  const fields = new Map<string, string[]>();
  for (const field of x.getChildren('field')) {
    const name = field.attrs.var as string | undefined;
    if (name === undefined) continue;
    if (fields.has(name)) throw StanzaError.badRequest(`field ${name} appears twice`);
    fields.set(name, field.getChildren('value').map((v) => v.getText()));
  }
  const value = (name: string) => fields.get(name)?.[0];
  return {
    type: String(x.attrs.type ?? 'form'),
    formType: value('FORM_TYPE'),
    fields,
    value,
    bool(name) {
      const v = value(name);
      if (v === undefined) return undefined;
      if (v === '1' || v === 'true') return true;
      if (v === '0' || v === 'false') return false;
      throw StanzaError.badRequest(`field ${name} must be a boolean`);
    },
  };
}
