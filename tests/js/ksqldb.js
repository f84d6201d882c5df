// npm's ksqldb-client (HTTP/2, its own protocol code) through keygate's HTTP gateway:
// the cluster is reached by host name (lksqlc-….<http_gateway_domain>, resolved to the
// gateway here), over HTTP/2 without TLS (prior knowledge), with a key as Basic.
// Env: HOST (lksqlc-….<domain>), PORT, KEY, SECRET; WANT=allowed|denied.
const KsqldbClient = require('ksqldb-client');

const lookup = (hostname, options, cb) => {
  if (options && options.all) cb(null, [{ address: '127.0.0.1', family: 4 }]);
  else cb(null, '127.0.0.1', 4);
};

(async () => {
  const client = new KsqldbClient({
    host: `http://${process.env.HOST}`,
    port: Number(process.env.PORT),
    authorization: { username: process.env.KEY, password: process.env.SECRET },
    sessionOptions: { lookup },
  });
  // ksqldb-client 1.0.5 builds its Basic header from the options but only sends it
  // when `client.authorization` is set, which nothing sets: set it as the README's
  // options intend. (Its header also carries a trailing space inside the base64.)
  client.authorization = { username: process.env.KEY, password: process.env.SECRET };
  await client.connect();
  const pulled = await client.query('SELECT * FROM orders;');
  if (process.env.WANT === 'denied') {
    if (pulled.status !== 403) throw new Error(`expected 403, got ${JSON.stringify(pulled)}`);
    console.log('ksqldb-client refused', pulled.status);
    await client.disconnect();
    return;
  }
  if (pulled.status !== 200 || pulled.data.rows.length !== 3) {
    throw new Error(`pull query: ${JSON.stringify(pulled)}`);
  }
  console.log('pull query rows', pulled.data.rows.length);
  // A push query streams over HTTP/2 until we have seen enough of it.
  let seen = 0;
  await new Promise((resolve, reject) => {
    client
      .streamQuery('SELECT * FROM orders EMIT CHANGES;', (data) => {
        seen += (data.rows || []).length;
        if (seen >= 5) resolve();
      })
      .then((r) => (r && r.error ? reject(new Error(JSON.stringify(r))) : resolve()))
      .catch(reject);
    setTimeout(() => reject(new Error(`push query: only ${seen} rows`)), 15000);
  });
  console.log('push query rows', seen);
  await client.disconnect().catch(() => {});
  console.log('ksqldb-client ok');
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
