/**
 * The dedup pre-filter (DESIGN §6): a fast "already committed" hint in front of the database's unique
 * keys. It is written only after a commit, so a hit is always a key that was stored; a miss proves
 * nothing (the database decides).
 */
export interface DedupFilter {
  readonly kind: 'memory' | 'redis'
  /** Which of these (already scoped) keys were committed recently. Never throws: on trouble, none. */
  seen(keys: readonly string[]): Promise<Set<string>>
  /** Records committed keys (best effort, after the commit). */
  remember(keys: readonly string[]): void
}
