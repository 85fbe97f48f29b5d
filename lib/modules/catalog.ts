// Every built-in module. The config loader validates `modules.<name>` against these schemas.
import type { z } from 'zod';
import type { ModuleDefinition } from './define.js';
import acl from '../../modules/acl/index.js';
import adhoc from '../../modules/adhoc/index.js';
import admin from '../../modules/admin/index.js';
import avatars from '../../modules/avatars/index.js';
import blocking from '../../modules/blocking/index.js';
import bookmarks from '../../modules/bookmarks/index.js';
import caps from '../../modules/caps/index.js';
import carbons from '../../modules/carbons/index.js';
import contactInfo from '../../modules/contact_info/index.js';
import csi from '../../modules/csi/index.js';
import disco from '../../modules/disco/index.js';
import last from '../../modules/last/index.js';
import mam from '../../modules/mam/index.js';
import mds from '../../modules/mds/index.js';
import muc from '../../modules/muc/index.js';
import offline from '../../modules/offline/index.js';
import pep from '../../modules/pep/index.js';
import ping from '../../modules/ping/index.js';
import presence from '../../modules/presence/index.js';
import privateXml from '../../modules/private/index.js';
import pubsub from '../../modules/pubsub/index.js';
import push from '../../modules/push/index.js';
import register from '../../modules/register/index.js';
import roster from '../../modules/roster/index.js';
import security from '../../modules/security/index.js';
import cam from '../../modules/cam/index.js';
import sm from '../../modules/sm/index.js';
import time from '../../modules/time/index.js';
import upload from '../../modules/upload/index.js';
import extdisco from '../../modules/extdisco/index.js';
import fast from '../../modules/fast/index.js';
import invites from '../../modules/invites/index.js';
import vcard from '../../modules/vcard/index.js';
import version from '../../modules/version/index.js';

type AnyModule = ModuleDefinition<z.ZodType, unknown>;

export const MODULES: readonly AnyModule[] = [
  acl as AnyModule,
  adhoc as AnyModule,
  admin as AnyModule,
  avatars as AnyModule,
  blocking as AnyModule,
  bookmarks as AnyModule,
  caps as AnyModule,
  carbons as AnyModule,
  contactInfo as AnyModule,
  csi as AnyModule,
  disco as AnyModule,
  extdisco as AnyModule,
  fast as AnyModule,
  invites as AnyModule,
  last as AnyModule,
  mam as AnyModule,
  mds as AnyModule,
  muc as AnyModule,
  offline as AnyModule,
  pep as AnyModule,
  ping as AnyModule,
  presence as AnyModule,
  privateXml as AnyModule,
  pubsub as AnyModule,
  push as AnyModule,
  register as AnyModule,
  roster as AnyModule,
  security as AnyModule,
  cam as AnyModule,
  sm as AnyModule,
  time as AnyModule,
  upload as AnyModule,
  vcard as AnyModule,
  version as AnyModule,
];

export const MODULE_CATALOG: ReadonlyArray<{ name: string; config: z.ZodType; defaultEnabled: boolean }> = MODULES.map((m) => ({
  name: m.name,
  config: m.config,
  defaultEnabled: m.defaultEnabled ?? false,
}));

export function moduleByName(name: string): AnyModule | undefined {
  return MODULES.find((m) => m.name === name);
}
