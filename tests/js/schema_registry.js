// @kafkajs/confluent-schema-registry (npm, its own HTTP client) through keygate's HTTP
// gateway: register an Avro schema under orders-value, encode and decode with it.
// Env: SR_URL, SR_KEY, SR_SECRET (a key allowed to write subjects orders*).
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');

(async () => {
  const registry = new SchemaRegistry({
    host: process.env.SR_URL,
    auth: { username: process.env.SR_KEY, password: process.env.SR_SECRET },
  });
  const schema = JSON.stringify({
    type: 'record', name: 'Shipment', namespace: 'shop',
    fields: [{ name: 'id', type: 'long' }],
  });
  const { id } = await registry.register({ type: SchemaType.AVRO, schema }, { subject: 'orders-shipments' });
  const encoded = await registry.encode(id, { id: 42 });
  const decoded = await registry.decode(encoded);
  if (decoded.id !== 42) throw new Error(`decoded ${JSON.stringify(decoded)}`);
  let refused = false;
  try {
    await registry.register({ type: SchemaType.AVRO, schema }, { subject: 'payments-value' });
  } catch (e) {
    refused = String(e.status || e.message).includes('403');
    if (!refused) throw e;
  }
  if (!refused) throw new Error('payments-value was registered');
  console.log('kafkajs registry ok', id);
})().catch((e) => { console.error(e); process.exit(1); });
