// A tiny authoritative DNS server over UDP for tests (RFC 1035 wire format, SRV per RFC 2782):
// answers A, AAAA and SRV from a table, NXDOMAIN for names it does not know, and an empty
// NOERROR for known names without records of the asked type. Used to test the s2s resolver
// with real queries, and to let Prosody (via libunbound's `forward`) find a Parley under test.
import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

export type FakeRecord =
  | { type: 'A'; address: string }
  | { type: 'AAAA'; address: string }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string };

const TYPE = { A: 1, AAAA: 28, SRV: 33 } as const;

export class FakeDns {
  private readonly records = new Map<string, FakeRecord[]>();
  /** Names asked, in order (lowercase, with their type number). */
  readonly queries: Array<{ name: string; type: number }> = [];

  private constructor(private readonly socket: dgram.Socket, readonly port: number) {}

  static async start(address = '127.0.0.1'): Promise<FakeDns> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, address, () => resolve());
    });
    const dns = new FakeDns(socket, socket.address().port);
    socket.on('message', (msg, rinfo) => {
      const reply = dns.answer(msg);
      if (reply) socket.send(reply, rinfo.port, rinfo.address);
    });
    return dns;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  add(name: string, record: FakeRecord): this {
    const key = name.toLowerCase().replace(/\.$/, '');
    const list = this.records.get(key) ?? [];
    list.push(record);
    this.records.set(key, list);
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  private answer(msg: Buffer): Buffer | undefined {
    if (msg.length < 12) return undefined;
    const id = msg.readUInt16BE(0);
    const flags = msg.readUInt16BE(2);
    const qd = msg.readUInt16BE(4);
    if (qd !== 1 || flags & 0x8000) return undefined;
    let off = 12;
    const labels: string[] = [];
    for (;;) {
      const len = msg[off];
      if (len === undefined) return undefined;
      off++;
      if (len === 0) break;
      labels.push(msg.subarray(off, off + len).toString('latin1'));
      off += len;
    }
    const qtype = msg.readUInt16BE(off);
    const question = msg.subarray(12, off + 4);
    const name = labels.join('.').toLowerCase();
    this.queries.push({ name, type: qtype });
    const known = this.records.get(name);
    const answers = (known ?? []).filter((r) => TYPE[r.type] === qtype).map((r) => encodeRecord(r));
    const header = Buffer.alloc(12);
    header.writeUInt16BE(id, 0);
    // QR, opcode 0, AA, RD copied, RA; rcode NXDOMAIN when the name is unknown.
    header.writeUInt16BE(0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | (known ? 0 : 3), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    return Buffer.concat([header, question, ...answers]);
  }
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter((p) => p !== '');
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, 'latin1')])), Buffer.from([0])]);
}

function encodeRecord(r: FakeRecord): Buffer {
  let rdata: Buffer;
  switch (r.type) {
    case 'A':
      if (!isIPv4(r.address)) throw new Error(`not IPv4: ${r.address}`);
      rdata = Buffer.from(r.address.split('.').map(Number));
      break;
    case 'AAAA': {
      if (!isIPv6(r.address)) throw new Error(`not IPv6: ${r.address}`);
      const [head, tail] = r.address.split('::') as [string, string | undefined];
      const h = head ? head.split(':') : [];
      const t = tail ? tail.split(':') : [];
      const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
      rdata = Buffer.alloc(16);
      groups.forEach((g, i) => rdata.writeUInt16BE(Number.parseInt(g || '0', 16), i * 2));
      break;
    }
    case 'SRV': {
      const fixed = Buffer.alloc(6);
      fixed.writeUInt16BE(r.priority, 0);
      fixed.writeUInt16BE(r.weight, 2);
      fixed.writeUInt16BE(r.port, 4);
      rdata = Buffer.concat([fixed, encodeName(r.target)]);
      break;
    }
  }
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // pointer to the question's name
  head.writeUInt16BE(TYPE[r.type], 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(5, 6); // short TTL: tests change records
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}
