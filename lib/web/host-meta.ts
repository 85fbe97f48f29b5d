// XEP-0156 over HTTP: /.well-known/host-meta (XRD, RFC 6415) and host-meta.json, advertising
// the WebSocket (RFC 7395) and BOSH (XEP-0206) endpoints of this listener.
import { escapeXML } from '../xml/element.js';
import { boshUrl, websocketUrl } from '../transport/http-client.js';

export const HOST_META_PATH = '/.well-known/host-meta';
export const HOST_META_JSON_PATH = '/.well-known/host-meta.json';
export const REL_WEBSOCKET = 'urn:xmpp:alt-connections:websocket';
export const REL_BOSH = 'urn:xmpp:alt-connections:xbosh';
const NS_XRD = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';

export interface Endpoints {
  websocket: boolean;
  bosh: boolean;
}

export function connectionLinks(base: string, endpoints: Endpoints): Array<{ rel: string; href: string }> {
  const links: Array<{ rel: string; href: string }> = [];
  if (endpoints.websocket) links.push({ rel: REL_WEBSOCKET, href: websocketUrl(base) });
  if (endpoints.bosh) links.push({ rel: REL_BOSH, href: boshUrl(base) });
  return links;
}

export function hostMetaXml(base: string, endpoints: Endpoints): string {
  const links = connectionLinks(base, endpoints)
    .map((l) => `  <Link rel='${escapeXML(l.rel)}' href='${escapeXML(l.href)}'/>\n`)
    .join('');
  return `<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='${NS_XRD}'>\n${links}</XRD>\n`;
}

export function hostMetaJson(base: string, endpoints: Endpoints): string {
  return `${JSON.stringify({ links: connectionLinks(base, endpoints) }, null, 2)}\n`;
}
