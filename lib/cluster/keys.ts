// The Redis keys of one cluster, all under its configured prefix.
export class ClusterKeys {
  constructor(readonly prefix: string) {}

  /** Set of the nodes that registered and were not yet reaped. */
  get nodes(): string { return `${this.prefix}nodes`; }
  /** A node's heartbeat; it expires when the node stops beating. */
  heartbeat(node: string): string { return `${this.prefix}node:${node}`; }
  /** Hash: session id -> SessionEntry JSON, for the sessions bound on a node. */
  sessions(node: string): string { return `${this.prefix}sessions:${node}`; }
  /**
   * Hash: session id -> node, for the sessions of one account (bare JID) on every node: lets a
   * node read one account's sessions at once when its replica may lag (account-lookup.ts).
   */
  account(bare: string): string { return `${this.prefix}account:${bare}`; }
  /** Stream of stanzas for a node, read in order by that node alone. */
  inbox(node: string): string { return `${this.prefix}inbox:${node}`; }
  /** The id of the last inbox entry a node has handled. */
  cursor(node: string): string { return `${this.prefix}cursor:${node}`; }
  /** The node owning a service JID (a MUC room). */
  owner(jid: string): string { return `${this.prefix}owner:${jid}`; }
  /** Set of the service JIDs a node owns. */
  owned(node: string): string { return `${this.prefix}owned:${node}`; }
  /** Held by the node cleaning up after a dead one. */
  reaper(node: string): string { return `${this.prefix}reap:${node}`; }
  /** Pub/sub channel of directory changes. */
  get directory(): string { return `${this.prefix}directory`; }
}
