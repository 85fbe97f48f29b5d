// New outbound subscription requests per account in a sliding hour, in this process's memory:
// what keeps an account from spraying subscription requests (presence spam) at strangers.
const HOUR_MS = 3_600_000;

export class SubscriptionRequestLimit {
  private readonly sent = new Map<string, number[]>();

  constructor(
    private readonly perHour: number,
    /** Accounts remembered at most; the least recently active are forgotten first. */
    private readonly maxAccounts = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records one request for `account`; false (nothing recorded) when it is over the limit. */
  take(account: string): boolean {
    const now = this.now();
    const recent = (this.sent.get(account) ?? []).filter((t) => now - t < HOUR_MS);
    const ok = recent.length < this.perHour;
    if (ok) recent.push(now);
    this.sent.delete(account);
    if (recent.length > 0) this.sent.set(account, recent);
    while (this.sent.size > this.maxAccounts) this.sent.delete(this.sent.keys().next().value as string);
    return ok;
  }
}
