// @grpc/grpc-js as a client of the server under test. Runs every scenario once and prints one JSON object per
// line: {"scenario": ..., "result": {...}} or {"scenario": ..., "error": "..."}; the C# tests assert on them.
const crypto = require('crypto');
const { grpc, load, statusName, protoDir } = require('./peer_protos');

const target = process.argv[2];
const { pkg, definition } = load(protoDir);
const Echo = pkg.chatservices.testing.v1.Echo;
const client = new Echo(target, grpc.credentials.createInsecure());
const gzipClient = new Echo(target, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
const health = new pkg.grpc.health.v1.Health(target, grpc.credentials.createInsecure());
const deadline = (ms) => ({ deadline: Date.now() + ms });
const mdObject = (md) => Object.fromEntries(Object.entries(md.getMap()).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('hex') : v]));

function unary(c, method, request, metadata = new grpc.Metadata(), options = deadline(10000)) {
  return new Promise((resolve) => {
    const out = {};
    const call = c[method](request, metadata, options, (err, reply) => { out.err = err; out.reply = reply; });
    call.on('metadata', (md) => { out.initial = md; });
    call.on('status', (s) => { out.status = s; resolve(out); });
  });
}

function errorOf(out) {
  return { code: statusName(out.status.code), details: out.status.details, trailers: mdObject(out.status.metadata) };
}

function stream(call) {
  return new Promise((resolve) => {
    const items = [];
    call.on('data', (d) => items.push(d));
    call.on('error', () => {});
    call.on('status', (s) => resolve({ items, status: s }));
  });
}

const wasCancelled = async (id) => (await unary(client, 'Unary', { message: 'was-cancelled:' + id })).reply.message;

const scenarios = {
  unary: async () => { const o = await unary(client, 'Unary', { message: 'hello' }); return { message: o.reply.message, code: statusName(o.status.code) }; },
  server_stream: async () => ({ indexes: (await stream(client.ServerStream({ message: 's', count: 50 }, deadline(10000)))).items.map((r) => r.index) }),
  client_stream: async () => new Promise((resolve) => {
    const call = client.ClientStream(deadline(10000), (err, reply) => resolve({ message: reply.message, index: reply.index }));
    for (const m of ['a', 'b', 'c']) call.write({ message: m });
    call.end();
  }),
  duplex: async () => {
    const call = client.Duplex(deadline(10000));
    const seen = [];
    const queue = [];
    let waiting = null;
    call.on('data', (d) => { if (waiting) { const w = waiting; waiting = null; w(d); } else queue.push(d); });
    const next = () => new Promise((r) => { if (queue.length) r(queue.shift()); else waiting = r; });
    for (let i = 0; i < 5; i++) { call.write({ message: 'm' + i }); seen.push((await next()).message); }
    const done = new Promise((r) => call.on('status', r));
    call.end();
    const status = await done;
    return { messages: seen, after_close: queue.length, code: statusName(status.code) };
  },
  error_with_trailers: async () => errorOf(await unary(client, 'Unary', { fail_code: 5, fail_message: 'nöt found: 100% gone' })),
  stream_error_after_messages: async () => {
    const r = await stream(client.ServerStream({ count: 3, fail_code: 10, fail_message: 'late' }, deadline(10000)));
    return { code: statusName(r.status.code), details: r.status.details, received: r.items.length, trailers: mdObject(r.status.metadata) };
  },
  handler_exception: async () => errorOf(await unary(client, 'Unary', { throw_exception: true })),
  metadata: async () => {
    const md = new grpc.Metadata();
    md.set('x-echo', 'value-1');
    md.set('x-echo-bin', Buffer.from([1, 2, 3, 0, 255]));
    const o = await unary(client, 'Unary', { message: 'md' }, md);
    return { initial: mdObject(o.initial), trailing: mdObject(o.status.metadata) };
  },
  deadline_sent: async () => ({ remaining_ms: (await unary(client, 'Unary', { message: 'd' }, new grpc.Metadata(), deadline(30000))).reply.deadline_remaining_ms }),
  deadline_exceeded: async () => {
    const id = crypto.randomUUID();
    const o = await unary(client, 'Unary', { message: id, delay_ms: 10000 }, new grpc.Metadata(), deadline(1000));
    return { ...errorOf(o), handler_cancelled: await wasCancelled(id) };
  },
  cancellation: async () => {
    const id = crypto.randomUUID();
    const call = client.ServerStream({ message: id, count: 2, delay_ms: 10000 }, deadline(30000));
    const first = await new Promise((r) => call.once('data', r));
    const status = new Promise((r) => call.on('status', r));
    call.on('error', () => {});
    call.cancel();
    return { first: first.index, code: statusName((await status).code), handler_cancelled: await wasCancelled(id) };
  },
  server_abort: async () => errorOf(await unary(client, 'Unary', { abort: true })),
  unimplemented: async () => {
    const call = (path) => new Promise((resolve) => client.makeUnaryRequest(path, (x) => x, (x) => x, Buffer.alloc(0), deadline(10000), (err) => resolve(statusName(err ? err.code : 0))));
    return { method: await call('/chatservices.testing.v1.Echo/Nope'), service: await call('/no.such.Service/Call') };
  },
  gzip: async () => {
    const o = await unary(gzipClient, 'Unary', { message: 'zip', payload: Buffer.alloc(100000), response_size: 100000 });
    return { payload_size: o.reply.payload_size, reply_payload: o.reply.payload.length, request_encoding: o.reply.request_encoding };
  },
  size_limit: async () => {
    const limit = 4 * 1024 * 1024;
    const near = await unary(client, 'Unary', { payload: Buffer.alloc(limit - 100), response_size: limit - 100 }, new grpc.Metadata(), deadline(30000));
    const over = await unary(client, 'Unary', { payload: Buffer.alloc(limit + 100) }, new grpc.Metadata(), deadline(30000));
    return { near_request: near.reply.payload_size, near_reply: near.reply.payload.length, over: statusName(over.status.code) };
  },
  health: async () => {
    const check = (service) => new Promise((resolve) => health.Check({ service }, deadline(10000), (err, r) => resolve(err ? statusName(err.code) : r.status)));
    const overall = await check('');
    const echo = await check('chatservices.testing.v1.Echo');
    const unknown = await check('no.such.Service');
    const watch = health.Watch({ service: 'watched.node' }, deadline(20000));
    watch.on('error', () => {});
    const seen = [];
    let waiting = null;
    watch.on('data', (d) => { seen.push(d.status); if (waiting) { const w = waiting; waiting = null; w(); } });
    const nextUpdate = (n) => new Promise((r) => { if (seen.length >= n) r(); else waiting = r; });
    await nextUpdate(1);
    await unary(client, 'Unary', { message: 'set-health:watched.node:SERVING' });
    await nextUpdate(2);
    await unary(client, 'Unary', { message: 'set-health:watched.node:NOT_SERVING' });
    await nextUpdate(3);
    watch.cancel();
    return { overall, echo, unknown, watch: seen };
  },
  reflection_v1alpha: async () => reflection(pkg.grpc.reflection.v1alpha.ServerReflection),
  reflection_v1: async () => reflection(pkg.grpc.reflection.v1.ServerReflection),
};

async function reflection(Service) {
  const c = new Service(target, grpc.credentials.createInsecure());
  const call = c.ServerReflectionInfo(deadline(10000));
  const result = stream(call);
  call.write({ list_services: '' });
  call.write({ file_containing_symbol: 'chatservices.testing.v1.Echo' });
  call.end();
  const { items } = await result;
  // FileDescriptorProto decoded with protobufjs' descriptor support, which proto-loader depends on.
  const descriptor = require('protobufjs/ext/descriptor');
  const file = descriptor.FileDescriptorProto.decode(items[1].file_descriptor_response.file_descriptor_proto[0]);
  return { services: items[0].list_services_response.service.map((s) => s.name), methods: file.service[0].method.map((m) => m.name) };
}

(async () => {
  for (const [name, fn] of Object.entries(scenarios)) {
    try {
      console.log(JSON.stringify({ scenario: name, result: await fn() }));
    } catch (e) {
      console.log(JSON.stringify({ scenario: name, error: String(e && e.stack || e) }));
    }
  }
  process.exit(0);
})();
