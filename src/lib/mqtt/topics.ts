/** The topic families a receiver subscribes to (DESIGN §10). */
export type TopicKind = 'iot' | 'universal'

export const TOPIC_KINDS: readonly TopicKind[] = ['iot', 'universal']

/** What an incoming topic addresses, once the prefix is stripped. */
export type TopicRoute =
  | { kind: 'iot'; /** The `{id}` segment: a number must equal the payload's sensorId. */ segment: string }
  | { kind: 'universal'; domain: string; source: string; stream: string }
  | { kind: 'unknown' }

/** `MQTT_TOPIC_PREFIX` as it is put in front of a topic: empty, or ending with one `/`. */
export function normalisePrefix(prefix: string): string {
  if (prefix === '') return ''
  return prefix.endsWith('/') ? prefix : `${prefix}/`
}

/**
 * The `MQTT_SHARED_GROUP` / `--shared-group` value that means no shared group: plain filters on one
 * connection. Mosquitto 2.0.11 keeps a persistent session's plain subscriptions across a broker restart
 * but drops its `$share` ones (measured: sessionPresent true, nothing delivered), so only plain filters
 * receive what is published to a restarted broker before the receivers reconnect.
 */
export const NO_SHARED_GROUP = 'none'

/** Whether a group value asks for plain subscriptions (`none`, any case). */
export function isPlainGroup(group: string): boolean {
  return group.toLowerCase() === NO_SHARED_GROUP
}

/**
 * The topic filters of each kind, prefixed, in the `$share/<group>/` form shared subscriptions use,
 * or plain with the group `none`.
 */
export function subscriptionFilters(kinds: readonly TopicKind[], options: { prefix: string; group: string }): string[] {
  const prefix = normalisePrefix(options.prefix)
  const filters: string[] = []
  // `+/+/+/data` never matches `iot/sensors/+/readings` (a different last segment): the kinds do not overlap.
  if (kinds.includes('iot')) filters.push(`${prefix}iot/sensors/+/readings`)
  if (kinds.includes('universal')) filters.push(`${prefix}+/+/+/data`)
  return isPlainGroup(options.group) ? filters : filters.map((f) => `$share/${options.group}/${f}`)
}

/**
 * Routes a received topic: `iot/sensors/{id}/readings` is IoT (reference §9.2), any 4-segment topic
 * ending in `data` is universal (§9.4, `iot` as its domain included: the receiver refuses it).
 */
export function routeTopic(topic: string, prefix: string): TopicRoute {
  const p = normalisePrefix(prefix)
  if (!topic.startsWith(p)) return { kind: 'unknown' }
  const parts = topic.slice(p.length).split('/')
  if (parts.length !== 4) return { kind: 'unknown' }
  const [a, b, c, d] = parts as [string, string, string, string]
  if (d === 'data') return { kind: 'universal', domain: a, source: b, stream: c }
  if (a === 'iot' && b === 'sensors' && d === 'readings') return { kind: 'iot', segment: c }
  return { kind: 'unknown' }
}

/**
 * Whether a topic `{id}` segment names another sensor than the payload (DESIGN §7: the broker's ACLs
 * authenticate the publisher of a topic, so a numeric segment must match). A non-numeric segment (a
 * device name, `+`-style wildcards of old firmware) binds nothing, as in the legacy receiver.
 */
export function topicSensorMismatch(segment: string, sensorId: number): boolean {
  if (!/^\d+$/.test(segment)) return false
  return Number(segment) !== sensorId
}

/** Parses a `--topics` list (`iot,universal`); unknown names are returned as errors. */
export function parseTopicKinds(list: string): { kinds: TopicKind[]; unknown: string[] } {
  const kinds: TopicKind[] = []
  const unknown: string[] = []
  for (const raw of list.split(',')) {
    const name = raw.trim()
    if (name === '') continue
    if ((TOPIC_KINDS as readonly string[]).includes(name)) {
      if (!kinds.includes(name as TopicKind)) kinds.push(name as TopicKind)
    } else unknown.push(name)
  }
  return { kinds, unknown }
}
