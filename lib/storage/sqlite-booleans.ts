// SQLite has no boolean type and better-sqlite3 refuses to bind a JS boolean ("SQLite3 can only
// bind numbers, strings, bigints, buffers, and null"), while PostgreSQL has `boolean`. So that a
// module can write `flag: true` once for both dialects, this plugin binds booleans as 1 and 0 on
// SQLite. Reads differ: a boolean column reads back as 1/0 on SQLite and true/false on
// PostgreSQL, so read it with `Boolean(row.flag)` (or store 0/1 in an integer column).
import {
  OperationNodeTransformer,
  type KyselyPlugin,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type PrimitiveValueListNode,
  type QueryResult,
  type RootOperationNode,
  type UnknownRow,
  type ValueNode,
} from 'kysely';

const bind = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 1 : 0) : v);

class BooleansAsIntegers extends OperationNodeTransformer {
  protected override transformValue(node: ValueNode): ValueNode {
    return typeof node.value === 'boolean' ? Object.freeze({ ...node, value: bind(node.value) }) : node;
  }

  protected override transformPrimitiveValueList(node: PrimitiveValueListNode): PrimitiveValueListNode {
    return node.values.some((v) => typeof v === 'boolean') ? Object.freeze({ ...node, values: Object.freeze(node.values.map(bind)) }) : node;
  }
}

export class SqliteBooleanPlugin implements KyselyPlugin {
  readonly #transformer = new BooleansAsIntegers();

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.#transformer.transformNode(args.node, args.queryId);
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}
