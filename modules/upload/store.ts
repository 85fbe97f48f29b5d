// Upload slots and files (XEP-0363): one row per slot, kept until the file expires. The file
// itself is `<dir>/<id>` on disk; the row knows its owner (quota), size, type and name.
import type { Database, Migration } from '../../lib/module-api.js';

export const uploadMigrations: readonly Migration[] = [
  {
    version: 1,
    async up(db) {
      await db.schema
        .createTable('upload_files')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('filename', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('content_type', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        // Null until the PUT completed.
        .addColumn('uploaded_at', 'bigint')
        .execute();
      await db.schema.createIndex('upload_files_owner').on('upload_files').columns(['host', 'user']).execute();
      await db.schema.createIndex('upload_files_age').on('upload_files').columns(['host', 'created_at']).execute();
    },
  },
];

export interface UploadRow {
  id: string;
  host: string;
  user: string;
  filename: string;
  size: number;
  contentType: string;
  createdAt: number;
  uploadedAt: number | undefined;
}

interface RawRow {
  id: string;
  host: string;
  user: string;
  filename: string;
  size: number | string;
  content_type: string;
  created_at: number | string;
  uploaded_at: number | string | null;
}

function fromRaw(r: RawRow): UploadRow {
  return {
    id: r.id,
    host: r.host,
    user: r.user,
    filename: r.filename,
    size: Number(r.size),
    contentType: r.content_type,
    createdAt: Number(r.created_at),
    uploadedAt: r.uploaded_at === null ? undefined : Number(r.uploaded_at),
  };
}

export class UploadStore {
  constructor(private readonly storage: Database, private readonly host: string) {}

  async insert(row: Omit<UploadRow, 'host' | 'uploadedAt'>): Promise<void> {
    await this.storage.db
      .insertInto('upload_files')
      .values({ id: row.id, host: this.host, user: row.user, filename: row.filename, size: row.size, content_type: row.contentType, created_at: row.createdAt, uploaded_at: null })
      .execute();
  }

  async get(id: string): Promise<UploadRow | undefined> {
    const r = (await this.storage.db.selectFrom('upload_files').selectAll().where('host', '=', this.host).where('id', '=', id).executeTakeFirst()) as RawRow | undefined;
    return r ? fromRaw(r) : undefined;
  }

  /** Bytes an account holds: uploaded files and slots still open for upload (created after `openSince`). */
  async used(user: string, openSince: number): Promise<number> {
    const r = (await this.storage.db
      .selectFrom('upload_files')
      .select((eb) => eb.fn.sum<number | string | null>('size').as('total'))
      .where('host', '=', this.host)
      .where('user', '=', user)
      .where((eb) => eb.or([eb('uploaded_at', 'is not', null), eb('created_at', '>=', openSince)]))
      .executeTakeFirst()) as { total: number | string | null } | undefined;
    return Number(r?.total ?? 0);
  }

  /** Marks a slot used; false when it already was (single use, also across nodes). */
  async markUploaded(id: string, at: number): Promise<boolean> {
    const r = await this.storage.db
      .updateTable('upload_files')
      .set({ uploaded_at: at })
      .where('host', '=', this.host)
      .where('id', '=', id)
      .where('uploaded_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Up to `limit` ids of files created before `before`, or of slots never used and created before `openBefore`. */
  async expired(before: number, openBefore: number, limit: number): Promise<string[]> {
    const rows = (await this.storage.db
      .selectFrom('upload_files')
      .select('id')
      .where('host', '=', this.host)
      .where((eb) => eb.or([eb('created_at', '<', before), eb.and([eb('uploaded_at', 'is', null), eb('created_at', '<', openBefore)])]))
      .limit(limit)
      .execute()) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  async ofUser(user: string, limit: number): Promise<string[]> {
    const rows = (await this.storage.db.selectFrom('upload_files').select('id').where('host', '=', this.host).where('user', '=', user).limit(limit).execute()) as Array<{ id: string }>;
    return rows.map((r) => r.id);
  }

  async delete(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.storage.db.deleteFrom('upload_files').where('host', '=', this.host).where('id', 'in', [...ids]).execute();
  }
}
