// The invite landing page (XEP-0401 §3.1): what someone who opens an invite link in a browser
// sees. Plain HTML, no script, no QR code: the xmpp: link a client opens, and clients to install.
import { escapeXMLText, escapeXML } from '../../lib/module-api.js';

/** Well-known clients that understand invite links (XEP-0401), per platform. */
const CLIENTS: ReadonlyArray<{ name: string; platform: string; url: string }> = [
  { name: 'Conversations', platform: 'Android', url: 'https://conversations.im/' },
  { name: 'Monal', platform: 'iOS and macOS', url: 'https://monal-im.org/' },
  { name: 'Gajim', platform: 'Windows and Linux', url: 'https://gajim.org/' },
  { name: 'Dino', platform: 'Linux', url: 'https://dino.im/' },
  { name: 'Converse.js', platform: 'the web', url: 'https://conversejs.org/' },
];

export interface PageContent {
  host: string;
  uri: string;
  /** The inviter, for contact invites. */
  inviter?: string;
  expires: Date;
}

export function invitePage(p: PageContent): string {
  const title = p.inviter === undefined ? `You are invited to ${p.host}` : `${p.inviter} invites you to chat on ${p.host}`;
  const clients = CLIENTS.map((c) => `<li><a href="${escapeXML(c.url)}">${escapeXMLText(c.name)}</a> (${escapeXMLText(c.platform)})</li>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>${escapeXMLText(title)}</title></head>
<body>
<h1>${escapeXMLText(title)}</h1>
<p>1. Install a chat app that speaks XMPP, if you have none yet:</p>
<ul>
${clients}
</ul>
<p>2. Open the invite in it: <a href="${escapeXML(p.uri)}">${escapeXMLText(p.uri)}</a></p>
<p>If the link does not open your app, copy it and paste it into the app.</p>
<p>This invite expires on ${escapeXMLText(p.expires.toUTCString())}.</p>
</body></html>
`;
}

export function expiredPage(host: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>Invite not valid</title></head>
<body><h1>This invite is not valid</h1><p>It has expired, was used up, or never existed. Ask the person who sent it for a new one (${escapeXMLText(host)}).</p></body></html>
`;
}
