'use strict'
// kafkajs against Gregor; run by interop/run.sh with GREGOR_ADDR set.
//
//   node kafkajs_case.js produce  admin creates a topic; producer sends keyed
//                                 records with headers (plain and gzip);
//                                 fetchTopicOffsets (ListOffsets); kcat reads
//                                 them back (kafkajs consumes only in groups)
//   node kafkajs_case.js idempotent  the same with an idempotent producer: the
//                                 stored batches carry one producer ID and
//                                 gap-free sequences
//   node kafkajs_case.js group    two group consumers share the partitions and
//                                 commit; fetchOffsets sees the commits; a new
//                                 consumer resumes after them
//
// Records are the suite's usual ones: key k-%05d, value
// v-%05d-<src>-x…x (i % 61 x's), headers i and src, partition i % P.

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const fs = require('fs')
const net = require('net')
const path = require('path')
const { execFileSync } = require('child_process')
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')

const ADDR = process.env.GREGOR_ADDR
if (!ADDR) {
  console.error('GREGOR_ADDR is not set: run interop/run.sh, which starts a broker')
  process.exit(2)
}
const CID = 'interop-kafkajs'
const GATE = 'SKIP: broker lacks consumer groups'
// FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// OffsetCommit, OffsetFetch.
const GROUP_APIS = [10, 11, 14, 12, 13, 8, 9]

const kafka = new Kafka({ clientId: CID, brokers: [ADDR], logLevel: logLevel.WARN, retry: { retries: 5 } })

class Failure extends Error {}
function check (cond, msg) {
  if (!cond) throw new Failure(msg)
}
const pad = (i) => String(i).padStart(5, '0')
function want (src, i) {
  return {
    key: `k-${pad(i)}`,
    value: `v-${pad(i)}-${src}-${'x'.repeat(i % 61)}`,
    headers: { i: String(i), src }
  }
}
function index (key) {
  check(key && key.startsWith('k-'), `unexpected key ${key}`)
  return Number(key.slice(2))
}

// apiVersions sends a raw ApiVersions v0 request, independent of kafkajs,
// and resolves to Map(key → [min, max]).
function apiVersions (addr) {
  return new Promise((resolve, reject) => {
    const i = addr.lastIndexOf(':')
    const sock = net.connect({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)) })
    const cid = Buffer.from('interop-probe')
    const req = Buffer.alloc(14 + cid.length)
    req.writeInt32BE(10 + cid.length, 0)
    req.writeInt16BE(18, 4) // ApiVersions
    req.writeInt16BE(0, 6) // v0
    req.writeInt32BE(1, 8) // correlation ID
    req.writeInt16BE(cid.length, 12)
    cid.copy(req, 14)
    let buf = Buffer.alloc(0)
    sock.setTimeout(10000, () => { sock.destroy(); reject(new Error('ApiVersions timed out')) })
    sock.on('error', reject)
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      if (buf.length < 4 || buf.length < 4 + buf.readInt32BE(0)) return
      sock.destroy()
      const err = buf.readInt16BE(8)
      if (err !== 0) return reject(new Error(`ApiVersions error code ${err}`))
      const out = new Map()
      for (let j = 0, n = buf.readInt32BE(10); j < n; j++) {
        const at = 14 + 6 * j
        out.set(buf.readInt16BE(at), [buf.readInt16BE(at + 2), buf.readInt16BE(at + 4)])
      }
      resolve(out)
    })
    sock.write(req)
  })
}

async function eventually (what, cond, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Failure(`timed out after ${timeoutMs / 1000}s waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function createTopic (admin, topic, parts) {
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: parts, replicationFactor: 1 }], waitForLeaders: true })
  check(created === true, `createTopics(${topic}) = ${created}`)
  // kafkajs answers false for a topic that already exists.
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: parts, replicationFactor: 1 }], waitForLeaders: true })
  check(again === false, `createTopics(${topic}) again = ${again}`)
  check((await admin.listTopics()).includes(topic), `listTopics lacks ${topic}`)
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  check(md.topics[0].partitions.length === parts, `fetchTopicMetadata: ${JSON.stringify(md)}`)
}

async function produce (producer, topic, src, parts, from, to, compression) {
  const messages = []
  for (let i = from; i < to; i++) messages.push({ ...want(src, i), partition: i % parts })
  const res = await producer.send({ topic, acks: -1, messages, compression })
  for (const r of res) check(r.errorCode === 0, `produce: ${JSON.stringify(r)}`)
}

// storedBatches reads a partition's first segment from the broker's data
// directory (GREGOR_DATA): the batch headers the broker wrote.
function storedBatches (topic, partition) {
  const data = fs.readFileSync(path.join(process.env.GREGOR_DATA, `${topic}-${partition}`, '0'.repeat(20) + '.log'))
  const out = []
  for (let pos = 0; pos + 61 <= data.length; pos += data.readInt32BE(pos + 8) + 12) {
    out.push({
      baseOffset: data.readBigInt64BE(pos),
      producerId: data.readBigInt64BE(pos + 43),
      producerEpoch: data.readInt16BE(pos + 51),
      baseSequence: data.readInt32BE(pos + 53),
      records: data.readInt32BE(pos + 57)
    })
  }
  return out
}

// checkIdempotentBatches: one idempotent producer wrote the partition, a
// producer ID and sequences from 0 without gap or repeat.
function checkIdempotentBatches (topic, partition) {
  const bs = storedBatches(topic, partition)
  check(bs.length > 0, `${topic}-${partition}: no stored batches`)
  let seq = 0
  for (const b of bs) {
    check(b.producerId >= 0n && b.producerId === bs[0].producerId && b.producerEpoch === bs[0].producerEpoch,
      `${topic}-${partition} offset ${b.baseOffset}: producer ${b.producerId} epoch ${b.producerEpoch}, want one idempotent producer`)
    check(b.baseSequence === seq, `${topic}-${partition} offset ${b.baseOffset}: base sequence ${b.baseSequence}, want ${seq}`)
    seq += b.records
  }
}

async function produceCase (idempotent = false) {
  const topic = idempotent ? 'kafkajs-idempotent' : 'kafkajs'
  const src = topic
  const parts = 3
  const n = idempotent ? 3000 : 600
  if (idempotent) {
    const vs = await apiVersions(ADDR)
    if (!vs.has(22)) {
      console.log('SKIP: broker lacks idempotent producers (ApiVersions lacks InitProducerID)')
      return null
    }
  }
  const admin = kafka.admin()
  await admin.connect()
  await createTopic(admin, topic, parts)
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent, maxInFlightRequests: idempotent ? 1 : undefined })
  await producer.connect()
  // Several sends, so each partition gets several batches.
  for (let from = 0, k = 0; from < n; from += 300, k++) {
    await produce(producer, topic, src, parts, from, Math.min(from + 300, n), k % 2 ? CompressionTypes.GZIP : CompressionTypes.None)
  }
  await producer.disconnect()

  const offsets = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  let sum = 0
  for (const o of offsets) {
    check(o.low === '0', `partition ${o.partition}: low ${o.low}`)
    sum += Number(o.high)
  }
  check(sum === n, `high watermarks ${JSON.stringify(offsets)} add up to ${sum}, want ${n}`)

  // Read back with kcat (librdkafka): partition, offset, key, value, headers.
  for (const o of offsets) {
    const p = o.partition
    const out = execFileSync('kcat', ['-b', ADDR, '-X', 'client.id=interop-kafkajs-check', '-C', '-t', topic, '-p', String(p),
      '-o', 'beginning', '-e', '-q', '-f', '%o\t%k\t%s\t%h\n'], { encoding: 'utf8', timeout: 60000 })
    const lines = out.split('\n').filter((l) => l !== '')
    check(lines.length === Number(o.high), `partition ${p}: kcat read ${lines.length} records, want ${o.high}`)
    let last = -1
    lines.forEach((line, j) => {
      const [off, key, value, headers] = line.split('\t')
      const i = index(key)
      const w = want(src, i)
      check(Number(off) === j, `partition ${p}: record ${j} at offset ${off}`)
      check(i % parts === p, `record ${i} in partition ${p}`)
      check(i > last, `partition ${p}: record ${i} after ${last}: order not kept`)
      check(value === w.value, `${p}/${off}: value ${value}, want ${w.value}`)
      check(headers === `i=${i},src=${src}`, `${p}/${off}: headers ${headers}`)
      last = i
    })
    if (idempotent) checkIdempotentBatches(topic, p)
  }
  return `${n} records in ${parts} partitions (plain and gzip${idempotent ? ', idempotent: one producer ID, gap-free sequences' : ''}): produced, listed, read back by kcat`
}

// member is a group consumer recording its assignment and records.
async function member (group, topic) {
  const m = { got: [], assigned: [], consumer: kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 100, retry: { retries: 5 } }) }
  m.consumer.on(m.consumer.events.GROUP_JOIN, (e) => { m.assigned = (e.payload.memberAssignment[topic] || []).slice() })
  m.consumer.on(m.consumer.events.CRASH, (e) => { m.crash = e.payload.error })
  await m.consumer.connect()
  await m.consumer.subscribe({ topics: [topic], fromBeginning: true })
  await m.consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      m.got.push({ partition, offset: Number(message.offset), key: message.key.toString(), value: message.value.toString(), headers: message.headers })
    }
  })
  return m
}

function checkRecord (src, parts, r) {
  const i = index(r.key)
  const w = want(src, i)
  check(r.value === w.value, `${r.partition}/${r.offset}: value ${r.value}, want ${w.value}`)
  const h = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, v.toString()]))
  check(JSON.stringify(h) === JSON.stringify(w.headers), `${r.partition}/${r.offset}: headers ${JSON.stringify(h)}`)
  check(i % parts === r.partition, `record ${i} in partition ${r.partition}`)
  return i
}

const distinct = (...ms) => new Set(ms.flatMap((m) => m.got.map((r) => index(r.key)))).size

// commit commits, for each partition the member owns, the offset after
// the last record any member consumed there.
async function commit (m, topic, next) {
  const partitions = m.assigned.filter((p) => next.has(p)).map((p) => ({ topic, partition: p, offset: String(next.get(p)) }))
  if (partitions.length > 0) await m.consumer.commitOffsets(partitions)
}

async function groupCase () {
  const vs = await apiVersions(ADDR)
  if (!GROUP_APIS.some((k) => vs.has(k))) {
    console.log(`${GATE} (ApiVersions advertises none of FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch)`)
    return null
  }
  const topic = 'kafkajs-group'
  const group = topic
  const src = topic
  const parts = 4
  const n = 400
  const m = 100
  const admin = kafka.admin()
  await admin.connect()
  await createTopic(admin, topic, parts)

  const a = await member(group, topic)
  const b = await member(group, topic)
  await eventually('both consumers to share the partitions', () => {
    check(!a.crash && !b.crash, `consumer crashed: ${a.crash || b.crash}`)
    const all = new Set([...a.assigned, ...b.assigned])
    return a.assigned.length > 0 && b.assigned.length > 0 && all.size === parts && a.assigned.length + b.assigned.length === parts
  })
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  await produce(producer, topic, src, parts, 0, n, CompressionTypes.None)
  await eventually('the two consumers to consume every record', () => {
    check(!a.crash && !b.crash, `consumer crashed: ${a.crash || b.crash}`)
    return distinct(a, b) >= n
  })
  const next = new Map()
  for (const r of [...a.got, ...b.got]) next.set(r.partition, Math.max(next.get(r.partition) || 0, r.offset + 1))
  await commit(a, topic, next)
  await commit(b, topic, next)
  await a.consumer.disconnect()
  await b.consumer.disconnect()
  check(a.got.length > 0 && b.got.length > 0, `a member consumed nothing (${a.got.length}, ${b.got.length}): the partitions were not shared`)
  const seen = new Set()
  for (const r of [...a.got, ...b.got]) seen.add(checkRecord(src, parts, r))
  check(seen.size === n, `consumed ${seen.size} distinct records, want ${n}`)

  // OffsetFetch: the committed offsets are the ends of the partitions.
  const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  for (const po of committed.partitions) {
    check(Number(po.offset) === next.get(po.partition), `fetchOffsets partition ${po.partition}: ${po.offset}, want ${next.get(po.partition)}`)
  }

  await produce(producer, topic, src, parts, n, n + m, CompressionTypes.None)
  await producer.disconnect()
  const c = await member(group, topic)
  await eventually('the new consumer to consume the new records', () => {
    check(!c.crash, `consumer crashed: ${c.crash}`)
    return distinct(c) >= m
  })
  await c.consumer.disconnect()
  await admin.disconnect()
  const resumed = new Set()
  for (const r of c.got) {
    const i = checkRecord(src, parts, r)
    check(i >= n, `new consumer re-consumed record ${i} (partition ${r.partition} offset ${r.offset}): the commits were not honoured`)
    resumed.add(i)
  }
  check(resumed.size === m, `new consumer consumed ${resumed.size} distinct records, want ${m}`)
  return `two consumers shared ${parts} partitions (${a.got.length} and ${b.got.length} records), commits fetched back, a new consumer resumed after them`
}

async function main () {
  const cases = { produce: () => produceCase(false), idempotent: () => produceCase(true), group: groupCase }
  const name = process.argv[2]
  if (!cases[name]) {
    console.error(`usage: node kafkajs_case.js ${Object.keys(cases).join('|')}`)
    process.exit(2)
  }
  try {
    const summary = await cases[name]()
    if (summary !== null) console.log(`PASS: ${summary}`)
    process.exit(0)
  } catch (e) {
    console.log(`FAIL: ${e instanceof Failure ? e.message : e.stack}`)
    process.exit(1)
  }
}

main()
