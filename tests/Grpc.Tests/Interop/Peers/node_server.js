// @grpc/grpc-js serving chatservices.testing.v1.Echo for the client under test. Prints its port on the first
// line of stdout, then serves until stdin closes.
const { grpc, load, protoDir, TRAILER_BIN } = require('./peer_protos');

const { pkg } = load(protoDir);
const cancelled = new Map();
const cancelEntry = (id) => {
  if (!cancelled.has(id)) { let resolve; const p = new Promise((r) => { resolve = r; }); cancelled.set(id, { p, resolve }); }
  return cancelled.get(id);
};

function delay(call, ms) {
  return new Promise((resolve) => {
    if (call.cancelled) { resolve(false); return; }
    const timer = setTimeout(() => resolve(true), ms);
    call.on('cancelled', () => { clearTimeout(timer); resolve(false); });
  });
}

function reply(call, request, index) {
  const d = call.getDeadline();
  const remaining = d instanceof Date ? d.getTime() - Date.now() : (Number.isFinite(d) ? d - Date.now() : -1);
  return { message: request.message, index, payload_size: request.payload.length, payload: Buffer.alloc(request.response_size), deadline_remaining_ms: remaining };
}

function failure(request) {
  if (!request.fail_code) return null;
  const metadata = new grpc.Metadata();
  metadata.set('x-trailer', 'trailer-value');
  metadata.set('x-trailer-bin', TRAILER_BIN);
  return { code: request.fail_code, details: request.fail_message, metadata };
}

function echoHeaders(call) {
  const initial = new grpc.Metadata();
  const trailing = new grpc.Metadata();
  const echo = call.metadata.get('x-echo');
  const echoBin = call.metadata.get('x-echo-bin');
  if (echo.length) { initial.set('x-echo', echo[0]); trailing.set('x-echo-trailer', echo[0]); }
  if (echoBin.length) { initial.set('x-echo-bin', echoBin[0]); trailing.set('x-echo-trailer-bin', echoBin[0]); }
  if (echo.length || echoBin.length) call.sendMetadata(initial);
  return trailing;
}

const handlers = {
  async Unary(call, callback) {
    const r = call.request;
    if (r.message.startsWith('was-cancelled:')) {
      const entry = cancelEntry(r.message.slice('was-cancelled:'.length));
      const seen = await Promise.race([entry.p.then(() => true), new Promise((res) => setTimeout(() => res(false), 5000))]);
      callback(null, { message: seen ? 'yes' : 'no' });
      return;
    }
    const trailing = echoHeaders(call);
    if (r.delay_ms && !(await delay(call, r.delay_ms))) { cancelEntry(r.message).resolve(); return; }
    const err = failure(r);
    if (err) { callback(err); return; }
    callback(null, reply(call, r, 0), trailing);
  },
  async ServerStream(call) {
    const r = call.request;
    const trailing = echoHeaders(call);
    for (let i = 0; i < r.count; i++) {
      if (i > 0 && r.delay_ms && !(await delay(call, r.delay_ms))) { cancelEntry(r.message).resolve(); return; }
      call.write(reply(call, r, i));
    }
    const err = failure(r);
    if (err) { call.emit('error', err); return; }
    call.end(trailing);
  },
  ClientStream(call, callback) {
    const messages = [];
    let size = 0;
    let failed = false;
    call.on('data', (r) => {
      messages.push(r.message); size += r.payload.length;
      const err = failure(r);
      if (err && !failed) { failed = true; callback(err); }
    });
    call.on('end', () => { if (!failed) callback(null, { message: messages.join(','), index: messages.length, payload_size: size }); });
  },
  Duplex(call) {
    let index = 0;
    call.on('data', (r) => {
      const err = failure(r);
      if (err) { call.emit('error', err); return; }
      call.write(reply(call, r, index++));
    });
    call.on('end', () => call.end());
  },
};

const server = new grpc.Server();
server.addService(pkg.chatservices.testing.v1.Echo.service, handlers);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) { console.error(err); process.exit(1); }
  console.log(port);
});
process.stdin.resume();
process.stdin.on('end', () => { server.forceShutdown(); process.exit(0); });
