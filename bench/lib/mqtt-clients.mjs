// MQTT clients of bench/mqtt.mjs, run as a child process (child_process.fork, serialization 'advanced')
// so their event loop and CPU are not the parent's nor the service's. One child plays one role, chosen by
// its first message; every command answers one message ({type:'error', message} on failure).
//
// Publisher ({type:'publisher', url, clientId}): one mqtt.js connection (clean session). Then
// {type:'publish', prefix, tag, n, sensorIds, window, deadlineMs}: publishes n one-reading QoS 1 messages of
// reference §9.2 to `<prefix>/iot/sensors/<sensorId>/readings` with msgId `<tag>-<i>` (the dedup key) and the
// publish wall time as the device `timestamp`, keeping `window` publishes awaiting their PUBACK, and answers
// {type:'published', acked, firstMs, lastAckMs, sendMs: Float64Array} once every PUBACK is in (the broker has
// the message: a publisher that exits earlier loses the tail, performance.md §2.1). With `rate` (msgs/s) the
// sends are paced instead (message i due at t0 + i/rate), for a latency segment below saturation.
//
// Raw subscriber ({type:'subscriber', url, clientId, filter}): the ceiling. One mqtt.js connection (clean
// session), QoS 1, mqtt.js's default handleMessage (the PUBACK at once), JSON.parse of each payload to find
// its msgId. Then {type:'expect', tag, n, deadlineMs}: answers {type:'armed'} at once, then {type:'received',
// count, distinct, dup, lastMs, recvMs: Float64Array} when n distinct msgIds `<tag>-*` arrived (or at the deadline).
import mqtt from 'mqtt'

const now = () => performance.timeOrigin + performance.now() // wall clock with sub-ms resolution, comparable across processes
let client
let role

function connect(url, clientId, extra = {}) {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { clientId, clean: true, protocolVersion: 4, reconnectPeriod: 500, connectTimeout: 5000, ...extra })
    c.once('connect', () => resolve(c))
    c.once('error', reject)
  })
}

// ------------------------------------------------------------------ publisher

function publish({ prefix, tag, n, sensorIds, window, deadlineMs, rate }) {
  return new Promise((resolve) => {
    const sendMs = new Float64Array(n)
    let next = 0
    let acked = 0
    let inFlight = 0
    let failed = 0
    let firstMs = NaN
    let done = false
    const timer = setTimeout(() => finish(), deadlineMs)
    function finish() {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve({ type: 'published', acked, failed, firstMs, lastAckMs: now(), sendMs })
    }
    // Paced (rate msgs/s): message i is due at t0 + i/rate and waits for its time; else as fast as the window allows.
    const t0 = now()
    let paceTimer
    let pumpQueued = false
    function pump() {
      while (!done && inFlight < window && next < n) {
        if (rate > 0) {
          const due = t0 + (next * 1000) / rate
          const wait = due - now()
          if (wait > 1) {
            if (!paceTimer) paceTimer = setTimeout(() => ((paceTimer = undefined), pump()), Math.floor(wait))
            return
          }
        }
        const i = next++
        const sid = sensorIds[i % sensorIds.length]
        const t = now()
        if (i === 0) firstMs = t
        sendMs[i] = t
        const payload = `{"sensorId":${sid},"value":${40 + (i % 20)},"timestamp":"${new Date(t).toISOString()}","msgId":"${tag}-${i}"}`
        inFlight++
        client.publish(`${prefix}/iot/sensors/${sid}/readings`, payload, { qos: 1 }, (err) => {
          inFlight--
          if (err) failed++
          else acked++
          if (acked + failed === n) finish()
          else if (!pumpQueued) {
            // One refill per turn of the event loop for all the PUBACKs that arrived in it.
            pumpQueued = true
            setImmediate(() => ((pumpQueued = false), pump()))
          }
        })
      }
    }
    pump()
  })
}

// ------------------------------------------------------------------ raw subscriber

let expecting // { tag, n, recvMs, seen, count, dup, resolve, timer }

function onMessage(_topic, payload) {
  const e = expecting
  if (!e) return
  const t = now()
  let msgId
  try {
    msgId = JSON.parse(payload.toString()).msgId
  } catch {
    return
  }
  if (typeof msgId !== 'string' || !msgId.startsWith(e.prefix)) return
  const i = Number(msgId.slice(e.prefix.length))
  if (!(i >= 0 && i < e.n)) return
  e.count++
  if (e.recvMs[i] !== 0) {
    e.dup++
    return
  }
  e.recvMs[i] = t
  e.lastMs = t
  if (++e.distinct === e.n) finishExpect()
}

function finishExpect() {
  const e = expecting
  if (!e) return
  expecting = undefined
  clearTimeout(e.timer)
  e.resolve({ type: 'received', count: e.count, distinct: e.distinct, dup: e.dup, lastMs: e.lastMs, recvMs: e.recvMs })
}

/** Arms the counter (answers {type:'armed'} at once, so the parent publishes only after) and resolves at the end. */
function expect({ tag, n, deadlineMs }) {
  return new Promise((resolve) => {
    expecting = { prefix: `${tag}-`, n, recvMs: new Float64Array(n), count: 0, distinct: 0, dup: 0, lastMs: NaN, resolve }
    expecting.timer = setTimeout(finishExpect, deadlineMs)
    process.send({ type: 'armed' })
  })
}

// ------------------------------------------------------------------ commands

process.on('message', async (m) => {
  try {
    if (m.type === 'publisher') {
      role = 'publisher'
      client = await connect(m.url, m.clientId)
      process.send({ type: 'ready' })
    } else if (m.type === 'subscriber') {
      role = 'subscriber'
      client = await connect(m.url, m.clientId)
      client.on('message', onMessage)
      await client.subscribeAsync(m.filter, { qos: 1 })
      process.send({ type: 'ready' })
    } else if (m.type === 'publish' && role === 'publisher') {
      process.send(await publish(m))
    } else if (m.type === 'expect' && role === 'subscriber') {
      process.send(await expect(m))
    } else if (m.type === 'exit') {
      await client?.endAsync(true).catch(() => {})
      process.exit(0)
    } else {
      process.send({ type: 'error', message: `unexpected command ${m.type} for role ${role}` })
    }
  } catch (err) {
    process.send({ type: 'error', message: err?.message ?? String(err) })
  }
})
process.on('disconnect', () => process.exit(0))
