'use strict'
// kafkajs and ACLs against the suite's SASL_SSL broker, which runs Kafka's
// StandardAuthorizer with super user alice; bob has only what is granted
// here. Run by interop/run.sh with GREGOR_SECURE_ADDR and GREGOR_TLS_CA set.
//
//   node kafkajs_acl.js   bob's producer is refused on topic acl-kafkajs;
//                         bob's admin.createAcls/describeAcls/deleteAcls get
//                         CLUSTER_AUTHORIZATION_FAILED; alice's createAcls
//                         grants bob WRITE and DESCRIBE, describeAcls finds
//                         exactly those, the same producer then writes;
//                         deleteAcls removes them and its next send is
//                         refused (by the Produce request itself)

const fs = require('fs')
const {
  Kafka, logLevel, AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes
} = require('kafkajs')

const ADDR = process.env.GREGOR_SECURE_ADDR
const CA = process.env.GREGOR_TLS_CA
if (!ADDR || !CA) {
  console.error('GREGOR_SECURE_ADDR and GREGOR_TLS_CA are not set: run interop/run.sh')
  process.exit(2)
}
const TOPIC = 'acl-kafkajs'
const BOB = 'User:bob'
const N = 20

function client (user) {
  return new Kafka({
    clientId: 'interop-kafkajs-acl',
    brokers: [ADDR],
    logLevel: logLevel.NOTHING,
    // Generous bounds for a loaded machine; authorization errors are
    // not retried.
    connectionTimeout: 10000,
    retry: { retries: 5 },
    ssl: { ca: [fs.readFileSync(CA, 'utf-8')] },
    sasl: { mechanism: 'scram-sha-256', username: user, password: user + '-secret' }
  })
}

// errorType: the Kafka error type an error (or one it wraps) carries.
function errorTypes (e, out = []) {
  if (!e || out.length > 20) return out
  if (e.type) out.push(e.type)
  errorTypes(e.cause, out)
  errorTypes(e.originalError, out)
  for (const x of e.errors || []) errorTypes(x, out)
  return out
}

async function refused (what, type, fn) {
  try {
    await fn()
  } catch (e) {
    const types = errorTypes(e)
    if (types.includes(type)) return
    throw new Error(`${what}: ${e} (types ${types.join(',') || 'none'}), want ${type}`)
  }
  throw new Error(`${what} succeeded, want ${type}`)
}

const key = a => [a.resourceType, a.resourceName, a.resourcePatternType, a.principal, a.host, a.operation,
  a.permissionType].join('|')

function flatten (resources) {
  const out = []
  for (const r of resources) {
    for (const a of r.acls) out.push({ ...a, resourceType: r.resourceType, resourceName: r.resourceName, resourcePatternType: r.resourcePatternType })
  }
  return out.map(key).sort()
}

async function main () {
  const alice = client('alice').admin()
  await alice.connect()
  if (!await alice.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }], waitForLeaders: true })) {
    throw new Error(`topic ${TOPIC} already existed`)
  }

  const producer = client('bob').producer()
  await producer.connect()
  const send = (n) => producer.send({
    topic: TOPIC,
    messages: Array.from({ length: n }, (_, i) => ({ value: 'v-' + String(i).padStart(5, '0'), partition: 0 }))
  })
  await refused("bob's send before the grant", 'TOPIC_AUTHORIZATION_FAILED', () => send(1))

  const acl = [AclOperationTypes.WRITE, AclOperationTypes.DESCRIBE].map(operation => ({
    resourceType: AclResourceTypes.TOPIC,
    resourceName: TOPIC,
    resourcePatternType: ResourcePatternTypes.LITERAL,
    principal: BOB,
    host: '*',
    operation,
    permissionType: AclPermissionTypes.ALLOW
  }))
  const filter = {
    resourceType: AclResourceTypes.TOPIC,
    resourceName: TOPIC,
    resourcePatternType: ResourcePatternTypes.LITERAL,
    principal: BOB,
    operation: AclOperationTypes.ANY,
    permissionType: AclPermissionTypes.ANY
  }

  // bob may not manage ACLs.
  const bobAdmin = client('bob').admin()
  await bobAdmin.connect()
  await refused("bob's createAcls", 'CLUSTER_AUTHORIZATION_FAILED', () => bobAdmin.createAcls({ acl }))
  await refused("bob's describeAcls", 'CLUSTER_AUTHORIZATION_FAILED', () => bobAdmin.describeAcls(filter))
  await refused("bob's deleteAcls", 'CLUSTER_AUTHORIZATION_FAILED', () => bobAdmin.deleteAcls({ filters: [filter] }))
  await bobAdmin.disconnect()

  await alice.createAcls({ acl })
  const want = acl.map(key).sort()
  const described = flatten((await alice.describeAcls(filter)).resources)
  if (described.join() !== want.join()) throw new Error(`describeAcls: ${described}, want ${want}`)

  // The same producer that was refused now writes.
  const res = await send(N)
  if (res.length !== 1 || res[0].errorCode !== 0 || res[0].baseOffset !== '0') {
    throw new Error(`bob's send: ${JSON.stringify(res)}`)
  }
  const offsets = await alice.fetchTopicOffsets(TOPIC)
  if (offsets.length !== 1 || offsets[0].high !== String(N)) throw new Error(`offsets: ${JSON.stringify(offsets)}`)

  const { filterResponses } = await alice.deleteAcls({ filters: [filter] })
  const deleted = filterResponses.length === 1 && filterResponses[0].errorCode === 0 &&
    flatten(filterResponses[0].matchingAcls.map(m => ({ ...m, acls: [m] })))
  if (!deleted || deleted.join() !== want.join()) {
    throw new Error(`deleteAcls: ${JSON.stringify(filterResponses)}`)
  }
  const left = (await alice.describeAcls(filter)).resources
  if (left.length !== 0) throw new Error(`describeAcls after the delete: ${JSON.stringify(left)}`)
  await refused("bob's send after the delete", 'TOPIC_AUTHORIZATION_FAILED', () => send(1))

  await producer.disconnect()
  await alice.disconnect()
  console.log(`PASS: kafkajs createAcls/describeAcls/deleteAcls as alice; bob's producer refused, then wrote ${N} ` +
    'records, then refused after the delete; bob\'s createAcls/describeAcls/deleteAcls refused')
}

main().catch(e => { console.log('FAIL: ' + (e.stack || e)); process.exit(1) })
