// Per-virtual-host registries that modules fill through their context.
import type { Element } from '../xml/element.js';
import { HookBus } from '../hooks/bus.js';
import { IqRegistry } from './iq-registry.js';
import type { Bind2FeatureHandler, Sasl2InlineProvider } from '../modules/define.js';
import type { SaslMechanism } from '../sasl/mechanism.js';
import type { AuthGuard } from '../sasl2/guard.js';
import type { ModuleManifest, PreAuthIqHandler, StreamFeatureProvider, StreamNonzaHandler } from '../modules/define.js';
import type { SessionHandle, SessionTap } from '../sessions/types.js';

export type NonzaHandler = (session: SessionHandle, el: Element) => void | Promise<void>;

export class HostRuntime {
  readonly hooks = new HookBus();
  readonly iqs = new IqRegistry();
  readonly features: StreamFeatureProvider[] = [];
  readonly nonzas = new Map<string, NonzaHandler>();
  /** Nonzas handled on the stream from authentication on (`ctx.streamNonza`). */
  readonly streamNonzas = new Map<string, StreamNonzaHandler>();
  /** Taps on every stanza written to a session of this host (`ctx.onSessionWrite`). */
  readonly writeTaps: SessionTap[] = [];
  /** Taps on every stanza from a client of this host, once handled (`ctx.onSessionRead`). */
  readonly readTaps: SessionTap[] = [];
  /** Keyed by `type ns name`. */
  readonly preAuthIqs = new Map<string, PreAuthIqHandler>();
  readonly manifests: ModuleManifest[] = [];
  /** XEP-0386 inline features by namespace (`ctx.bind2Feature`). */
  readonly bind2Features = new Map<string, Bind2FeatureHandler>();
  /** XEP-0388 inline features by namespace (`ctx.sasl2Inline`). */
  readonly sasl2Inline = new Map<string, Sasl2InlineProvider>();
  /** SASL mechanisms of this host accepted only within SASL2 (`ctx.saslMechanism`). */
  readonly saslMechanisms: SaslMechanism[] = [];
  /** The login policy (`ctx.authGuard`): app passwords, second factor. */
  authGuard: AuthGuard | undefined;
  readonly services: string[] = [];

  constructor(readonly host: string) {}
}

export function preAuthKey(type: string, ns: string, name: string): string {
  return `${type}\u0000${ns}\u0000${name}`;
}
