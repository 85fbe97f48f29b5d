// Row shapes of the tables the storage core owns. Modules declare their own.
import type { Generated } from 'kysely';

export interface SchemaTable {
  owner: string;
  version: number;
  applied_at: number;
}

export interface KeyValTable {
  host: string;
  user: string;
  store: string;
  key: string;
  value: string;
  updated_at: number;
}

export interface ArchiveTable {
  /** Insertion order; breaks ties between items with the same `ts`. */
  seq: Generated<number>;
  host: string;
  user: string;
  store: string;
  id: string;
  ts: number;
  with_jid: string | null;
  value: string;
}

export interface CoreTables {
  parley_schema: SchemaTable;
  keyval: KeyValTable;
  archive: ArchiveTable;
}
