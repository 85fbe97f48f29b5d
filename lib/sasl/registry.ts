// The SASL mechanisms a server offers, in preference order. More (EXTERNAL for s2s and client
// certificates, FAST tokens) are registered by their owners.
import type { SaslMechanism } from './mechanism.js';
import { plainMechanism } from './plain.js';
import { scramMechanism } from './scram.js';

/** The built-in mechanisms, strongest first: channel-bound SCRAM, SCRAM, then PLAIN (TLS only). */
export function defaultMechanisms(): SaslMechanism[] {
  return [
    scramMechanism('SHA-512', true),
    scramMechanism('SHA-256', true),
    scramMechanism('SHA-1', true),
    scramMechanism('SHA-512', false),
    scramMechanism('SHA-256', false),
    scramMechanism('SHA-1', false),
    plainMechanism,
  ];
}

export interface MechanismPosition {
  /** Insert just before this mechanism (by name); appended when it is not registered. */
  before?: string;
  /** Insert just after this mechanism (by name); appended when it is not registered. */
  after?: string;
}

/** An ordered set of mechanisms, unique by name. The order is the order of preference. */
export class MechanismRegistry {
  private readonly mechanisms: SaslMechanism[] = [];

  constructor(initial: readonly SaslMechanism[] = defaultMechanisms()) {
    for (const m of initial) this.register(m);
  }

  /** Adds a mechanism; a second one with the same name is an error naming it. */
  register(mechanism: SaslMechanism, position: MechanismPosition = {}): void {
    if (this.get(mechanism.name) !== undefined) {
      throw new Error(`SASL mechanism ${mechanism.name} is already registered`);
    }
    if (position.before !== undefined && position.after !== undefined) {
      throw new Error('register: give either before or after, not both');
    }
    const anchor = position.before ?? position.after;
    const at = anchor === undefined ? -1 : this.mechanisms.findIndex((m) => m.name === anchor);
    if (at === -1) this.mechanisms.push(mechanism);
    else this.mechanisms.splice(position.before !== undefined ? at : at + 1, 0, mechanism);
  }

  /** Removes a mechanism by name; returns whether it was registered. */
  unregister(name: string): boolean {
    const at = this.mechanisms.findIndex((m) => m.name === name);
    if (at === -1) return false;
    this.mechanisms.splice(at, 1);
    return true;
  }

  get(name: string): SaslMechanism | undefined {
    return this.mechanisms.find((m) => m.name === name);
  }

  /** A copy of the mechanisms, in preference order. */
  list(): SaslMechanism[] {
    return [...this.mechanisms];
  }
}
