// Additions to StanzaJS's own typings for what the e2e specs plug into it: the STARTTLS
// elements (Stanza defines them in its registry, under the key `tls`, but leaves them out of its
// typed top-level elements and events).
import 'stanza';

declare module 'stanza' {
  interface StartTlsElement {
    type: 'start' | 'proceed' | 'failure';
    required?: boolean;
  }
  interface TopLevelElements {
    tls: StartTlsElement;
  }
  interface AgentEvents {
    tls: StartTlsElement;
  }
}
