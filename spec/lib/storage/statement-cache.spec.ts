import { expect } from 'chai';
import BetterSqlite3 from 'better-sqlite3';
import { withStatementCache } from '../../../lib/storage/statement-cache.js';

describe('SQLite statement cache', () => {
  let sqlite: BetterSqlite3.Database;
  let prepared: string[];
  beforeEach(() => {
    sqlite = new BetterSqlite3(':memory:');
    sqlite.exec('create table t (n integer)');
    prepared = [];
    const prepare = sqlite.prepare.bind(sqlite);
    sqlite.prepare = ((sql: string) => {
      prepared.push(sql);
      return prepare(sql);
    }) as typeof sqlite.prepare;
  });
  afterEach(() => { if (sqlite.open) sqlite.close(); });

  it('prepares a statement once and runs it again with other parameters', () => {
    const db = withStatementCache(sqlite);
    for (let i = 0; i < 5; i++) db.prepare('insert into t (n) values (?)').run([i]);
    expect(db.prepare('select sum(n) as s from t').all([])).to.deep.equal([{ s: 10 }]);
    expect(prepared).to.deep.equal(['insert into t (n) values (?)', 'select sum(n) as s from t']);
  });

  it('keeps at most its capacity, dropping the least recently used', () => {
    const db = withStatementCache(sqlite, () => undefined, 2);
    db.prepare('select 1');
    db.prepare('select 2');
    db.prepare('select 1');
    db.prepare('select 3'); // drops 'select 2'
    db.prepare('select 1');
    db.prepare('select 2');
    expect(prepared).to.deep.equal(['select 1', 'select 2', 'select 3', 'select 2']);
  });

  it('reports every statement that may write, COMMIT included, and no read', () => {
    let writes = 0;
    const db = withStatementCache(sqlite, () => { writes++; });
    db.prepare('select count(*) from t').all([]);
    expect(writes).to.equal(0);
    db.prepare('insert into t (n) values (?)').run([1]);
    expect(writes).to.equal(1);
    db.prepare('begin').run([]);
    db.prepare('insert into t (n) values (?) returning n').all([2]);
    db.prepare('commit').run([]);
    expect(writes).to.equal(3);
  });

  it('gives a fresh statement while the cached one is still iterating', () => {
    sqlite.exec('insert into t (n) values (1), (2)');
    const db = withStatementCache(sqlite);
    const outer = db.prepare('select n from t order by n').iterate([]);
    expect(outer.next().value).to.deep.equal({ n: 1 });
    expect(db.prepare('select n from t order by n').all([])).to.deep.equal([{ n: 1 }, { n: 2 }]);
    expect(outer.next().value).to.deep.equal({ n: 2 });
    outer.return?.();
  });
});
