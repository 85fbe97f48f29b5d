// Every built-in module. The config loader validates `modules.<name>` against these schemas.
import type { z } from 'zod';
import type { ModuleDefinition } from './define.js';
import ping from '../../modules/ping/index.js';

type AnyModule = ModuleDefinition<z.ZodType, unknown>;

export const MODULES: readonly AnyModule[] = [ping as AnyModule];

export const MODULE_CATALOG: ReadonlyArray<{ name: string; config: z.ZodType; defaultEnabled: boolean }> = MODULES.map((m) => ({
  name: m.name,
  config: m.config,
  defaultEnabled: m.defaultEnabled ?? false,
}));

export function moduleByName(name: string): AnyModule | undefined {
  return MODULES.find((m) => m.name === name);
}
