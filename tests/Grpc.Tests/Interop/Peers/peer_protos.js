// Loads the Echo, health and reflection protos with @grpc/proto-loader for the node peers.
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

function load(protoDir) {
  const definition = loader.loadSync(
    ['interop.proto', 'grpc/health/v1/health.proto', 'grpc/reflection/v1alpha/reflection.proto', 'grpc/reflection/v1/reflection.proto'],
    { includeDirs: [protoDir], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  return { definition, pkg: grpc.loadPackageDefinition(definition) };
}

const statusName = (code) => grpc.status[code];
const TRAILER_BIN = Buffer.from([0, 1, 2, 250, 255]);

module.exports = { grpc, load, statusName, TRAILER_BIN, protoDir: process.env.PROTO_DIR || path.join(__dirname, '..', 'protos') };
