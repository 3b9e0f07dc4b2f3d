import { MemoryStore } from '../../src/store/memory-store.js'
import type { GroupWrite } from '../../src/store/types.js'

/**
 * The embedded store, watched from outside so that tests can list what it holds, as a Redis test
 * lists keys with its own client. Keys only ever enter the store through `applyGroups`: every key a
 * group names is noted there, and `keys()` asks the store, through its own contract (`fieldNames`),
 * which of those it holds. As in Redis, a key without a field is no key.
 */
export class PeekStore extends MemoryStore {
  /** Every key a group named, in the order first named. */
  readonly #named = new Set<string>()

  override async applyGroups (seq: number, groups: GroupWrite[]): Promise<Array<Error | null>> {
    for (const g of groups) for (const kw of g.keys) this.#named.add(kw.key)
    return await super.applyGroups(seq, groups)
  }

  /** The keys the store holds (none past its expiry), in the order first written. */
  async keys (): Promise<string[]> {
    const named = [...this.#named]
    const fields = await this.fieldNames(named)
    return named.filter((_, i) => fields[i]!.length > 0)
  }
}
