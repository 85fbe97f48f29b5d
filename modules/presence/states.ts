// RFC 6121 Appendix A: the nine subscription states and how the server moves between them for
// outbound (A.2) and inbound (A.3) subscription stanzas. The tables are data, row for row.
import { hasFrom, hasTo, subscriptionOf, type Subscription } from '../roster/index.js';

export type StateName =
  | 'None'
  | 'None + Pending Out'
  | 'None + Pending In'
  | 'None + Pending Out+In'
  | 'To'
  | 'To + Pending In'
  | 'From'
  | 'From + Pending Out'
  | 'Both';

export const STATES: readonly StateName[] = [
  'None', 'None + Pending Out', 'None + Pending In', 'None + Pending Out+In',
  'To', 'To + Pending In', 'From', 'From + Pending Out', 'Both',
];

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

/** One table row: route (outbound) or deliver (inbound), and the new state (undefined: no change). */
export interface Row {
  readonly act: boolean;
  readonly next: StateName | undefined;
}

const r = (act: boolean, next?: StateName): Row => ({ act, next });

/** A.2: outbound subscription stanzas ("Route?", "New State"). */
export const OUTBOUND: Readonly<Record<SubscriptionType, Readonly<Record<StateName, Row>>>> = {
  // A.2.1
  subscribe: {
    'None': r(true, 'None + Pending Out'),
    'None + Pending Out': r(true),
    'None + Pending In': r(true, 'None + Pending Out+In'),
    'None + Pending Out+In': r(true),
    'To': r(true),
    'To + Pending In': r(true),
    'From': r(true, 'From + Pending Out'),
    'From + Pending Out': r(true),
    'Both': r(true),
  },
  // A.2.2
  unsubscribe: {
    'None': r(true),
    'None + Pending Out': r(true, 'None'),
    'None + Pending In': r(true),
    'None + Pending Out+In': r(true, 'None + Pending In'),
    'To': r(true, 'None'),
    'To + Pending In': r(true, 'None + Pending In'),
    'From': r(true),
    'From + Pending Out': r(true, 'From'),
    'Both': r(true, 'From'),
  },
  // A.2.3 (the "no" rows for None, None + Pending Out and To are where pre-approval applies, §3.4)
  subscribed: {
    'None': r(false),
    'None + Pending Out': r(false),
    'None + Pending In': r(true, 'From'),
    'None + Pending Out+In': r(true, 'From + Pending Out'),
    'To': r(false),
    'To + Pending In': r(true, 'Both'),
    'From': r(false),
    'From + Pending Out': r(false),
    'Both': r(false),
  },
  // A.2.4
  unsubscribed: {
    'None': r(false),
    'None + Pending Out': r(false),
    'None + Pending In': r(true, 'None'),
    'None + Pending Out+In': r(true, 'None + Pending Out'),
    'To': r(false),
    'To + Pending In': r(true, 'To'),
    'From': r(true, 'None'),
    'From + Pending Out': r(true, 'None + Pending Out'),
    'Both': r(true, 'To'),
  },
};

/** A.3: inbound subscription stanzas ("Deliver?", "New State"). */
export const INBOUND: Readonly<Record<SubscriptionType, Readonly<Record<StateName, Row>>>> = {
  // A.3.1 (the "no *" rows: the server auto-replies with "subscribed")
  subscribe: {
    'None': r(true, 'None + Pending In'),
    'None + Pending Out': r(true, 'None + Pending Out+In'),
    'None + Pending In': r(false),
    'None + Pending Out+In': r(false),
    'To': r(true, 'To + Pending In'),
    'To + Pending In': r(false),
    'From': r(false),
    'From + Pending Out': r(false),
    'Both': r(false),
  },
  // A.3.2
  subscribed: {
    'None': r(false),
    'None + Pending Out': r(true, 'To'),
    'None + Pending In': r(false),
    'None + Pending Out+In': r(true, 'To + Pending In'),
    'To': r(false),
    'To + Pending In': r(false),
    'From': r(false),
    'From + Pending Out': r(true, 'Both'),
    'Both': r(false),
  },
  // A.3.3
  unsubscribe: {
    'None': r(false),
    'None + Pending Out': r(false),
    'None + Pending In': r(true, 'None'),
    'None + Pending Out+In': r(true, 'None + Pending Out'),
    'To': r(false),
    'To + Pending In': r(true, 'To'),
    'From': r(true, 'None'),
    'From + Pending Out': r(true, 'None + Pending Out'),
    'Both': r(true, 'To'),
  },
  // A.3.4
  unsubscribed: {
    'None': r(false),
    'None + Pending Out': r(true, 'None'),
    'None + Pending In': r(false),
    'None + Pending Out+In': r(true, 'None + Pending In'),
    'To': r(true, 'None'),
    'To + Pending In': r(true, 'None + Pending In'),
    'From': r(false),
    'From + Pending Out': r(true, 'From'),
    'Both': r(true, 'From'),
  },
};

export interface StateParts {
  subscription: Subscription;
  pendingOut: boolean;
  pendingIn: boolean;
}

/**
 * The defined state (A.1) for stored facts. Combinations A.1 does not define are read as the
 * nearest defined state: a subscription "to" has nothing pending out, one "from" nothing in.
 */
export function stateOf(subscription: Subscription, pendingOut: boolean, pendingIn: boolean): StateName {
  const to = hasTo(subscription);
  const from = hasFrom(subscription);
  if (to && from) return 'Both';
  if (to) return pendingIn ? 'To + Pending In' : 'To';
  if (from) return pendingOut ? 'From + Pending Out' : 'From';
  if (pendingOut && pendingIn) return 'None + Pending Out+In';
  if (pendingOut) return 'None + Pending Out';
  if (pendingIn) return 'None + Pending In';
  return 'None';
}

export function partsOf(state: StateName): StateParts {
  const to = state === 'To' || state === 'To + Pending In' || state === 'Both';
  const from = state === 'From' || state === 'From + Pending Out' || state === 'Both';
  return {
    subscription: subscriptionOf(to, from),
    pendingOut: state.includes('Pending Out'),
    pendingIn: state.endsWith('Pending In') || state === 'None + Pending Out+In',
  };
}
