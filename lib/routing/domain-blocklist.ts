// Domains this server refuses to exchange stanzas with (config `s2s.blockedDomains`). A listed
// domain covers its subdomains too: blocking evil.example also blocks conference.evil.example.
export class DomainBlocklist {
  private readonly domains: ReadonlySet<string>;

  constructor(domains: readonly string[]) {
    this.domains = new Set(domains);
  }

  get size(): number {
    return this.domains.size;
  }

  /** True when `domain` (prepared) or one of its parent domains is listed. */
  has(domain: string): boolean {
    if (this.domains.size === 0) return false;
    for (let d = domain; ; d = d.slice(d.indexOf('.') + 1)) {
      if (this.domains.has(d)) return true;
      if (!d.includes('.')) return false;
    }
  }
}
