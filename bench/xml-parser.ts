// Micro-benchmark: one c2s stream of 100,000 small messages through StreamParser.
// Run: npx tsc -p . && node dist/bench/xml-parser.js
import { StreamParser } from '../lib/xml/stream-parser.js';
import type { XmlStreamError } from '../lib/xml/stream-parser.js';

const STANZAS = 100_000;
const CHUNK = 16_384; // a typical TLS record's worth per socket read

function buildStream(): Buffer {
  const parts: string[] = [
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " +
      "xmlns:stream='http://etherx.jabber.org/streams' to='b' version='1.0'>",
  ];
  for (let i = 0; i < STANZAS; i++) {
    parts.push(`<message to='a@b' id='${i}' type='chat'><body>hello</body></message>`);
  }
  return Buffer.from(parts.join(''));
}

function run(data: Buffer): { ms: number; count: number } {
  let count = 0;
  const parser = new StreamParser({
    onStreamOpen: () => undefined,
    onElement: () => {
      count++;
    },
    onStreamClose: () => undefined,
    onError: (err: XmlStreamError) => {
      throw err;
    },
  });
  const start = process.hrtime.bigint();
  for (let off = 0; off < data.length; off += CHUNK) parser.write(data.subarray(off, off + CHUNK));
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  return { ms, count };
}

const data = buildStream();
for (let i = 0; i < 2; i++) run(data); // warm up
const results: number[] = [];
for (let i = 0; i < 5; i++) {
  const { ms, count } = run(data);
  if (count !== STANZAS) throw new Error(`parsed ${count} stanzas, expected ${STANZAS}`);
  results.push((count / ms) * 1000);
}
results.sort((a, b) => a - b);
const median = results[Math.floor(results.length / 2)];
console.log(
  `xml-parser: ${STANZAS} stanzas, ${(data.length / 1e6).toFixed(1)} MB in ${CHUNK}-byte chunks: ` +
    `median ${Math.round(median).toLocaleString('en-US')} stanzas/s ` +
    `(min ${Math.round(results[0]).toLocaleString('en-US')}, max ${Math.round(results[results.length - 1]).toLocaleString('en-US')})`,
);
