'use strict'
// kafkajs against the suite's SASL_SSL broker; run by interop/run.sh with
// GREGOR_SECURE_ADDR and GREGOR_TLS_CA set (user alice, password
// alice-secret).
//
//   node kafkajs_secure.js MECHANISM   produce over TLS after SASL MECHANISM
//                                      (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
//                                      consume back in a group; a wrong
//                                      password is refused

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const ADDR = process.env.GREGOR_SECURE_ADDR
const CA = process.env.GREGOR_TLS_CA
if (!ADDR || !CA) {
  console.error('GREGOR_SECURE_ADDR and GREGOR_TLS_CA are not set: run interop/run.sh')
  process.exit(2)
}
const MECH = process.argv[2]
const N = 100

function client (password) {
  return new Kafka({
    clientId: 'interop-kafkajs-sasl',
    brokers: [ADDR],
    logLevel: logLevel.NOTHING,
    retry: { retries: password === 'wrong' ? 0 : 5 },
    ssl: { ca: [fs.readFileSync(CA, 'utf-8')] },
    sasl: { mechanism: MECH.toLowerCase(), username: 'alice', password }
  })
}

async function main () {
  const topic = 'kafkajs-sasl-' + MECH.toLowerCase()
  const kafka = client('alice-secret')
  const producer = kafka.producer()
  await producer.connect()
  const want = []
  for (let i = 0; i < N; i++) want.push('v-' + String(i).padStart(5, '0'))
  await producer.send({ topic, messages: want.map(value => ({ value, partition: 0 })) })
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: 'g-' + topic })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const got = []
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`consumed ${got.length} of ${N} in 60s`)), 60000)
    consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value.toString())
        if (got.length === N) { clearTimeout(timer); resolve() }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  if (got.join() !== want.join()) throw new Error('consumed records differ from the produced ones')

  const bad = client('wrong').producer()
  let refused = false
  try {
    await bad.connect()
  } catch (e) {
    refused = /SASL|[Aa]uthentication/.test(String(e))
    if (!refused) throw e
  }
  if (!refused) throw new Error('a wrong password connected')
  console.log(`PASS: kafkajs ${MECH} over SASL_SSL: ${N} records round trip; wrong password refused`)
}

main().catch(e => { console.log('FAIL: ' + (e.stack || e)); process.exit(1) })
