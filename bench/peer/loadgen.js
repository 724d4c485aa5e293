// A bounded loopback load generator: N POSTs over C keep-alive connections, then exit.
// Usage: node loadgen.js URL N C AUTHORIZATION BODY   (URL must be on 127.0.0.1)
// Prints {"ok":..,"failed":..,"seconds":..,"status":{..}} as JSON.
import http from 'node:http';

const [url, nRaw, cRaw, authorization, body] = process.argv.slice(2);
const target = new URL(url);
if (target.hostname !== '127.0.0.1' && target.hostname !== 'localhost') {
  throw new Error('loopback targets only');
}
const total = Number(nRaw);
const concurrency = Number(cRaw);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const payload = Buffer.from(body);
const headers = {
  'content-type': 'application/x-www-form-urlencoded',
  'content-length': payload.length,
  authorization,
};
let sent = 0;
let ok = 0;
let failed = 0;
const status = {};

function one() {
  return new Promise((resolve) => {
    const req = http.request(
      { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers, agent },
      (res) => {
        status[res.statusCode] = (status[res.statusCode] || 0) + 1;
        res.resume();
        res.on('end', () => { if (res.statusCode === 200) ok++; else failed++; resolve(); });
      },
    );
    req.setTimeout(10000, () => { req.destroy(); });
    req.on('error', () => { failed++; resolve(); });
    req.end(payload);
  });
}

async function worker() {
  while (sent < total) { sent++; await one(); }
}

const start = process.hrtime.bigint();
await Promise.all(Array.from({ length: concurrency }, worker));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
agent.destroy();
console.log(JSON.stringify({ ok, failed, seconds, status }));
