// Bookify's gRPC API for Node.js, loaded at run time from proto/bookify/v1 alone (no codegen).
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
// keepCase: the proto's field names are the HTTP API's JSON names; keep them as written.
const LOADER_OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, includeDirs: [PROTO_ROOT] };

function connect(address) {
  const definition = protoLoader.loadSync(['bookify/v1/auth.proto', 'bookify/v1/reservations.proto'], LOADER_OPTIONS);
  const v1 = grpc.loadPackageDefinition(definition).bookify.v1;
  const credentials = grpc.credentials.createInsecure();
  return { auth: new v1.Auth(address, credentials), reservations: new v1.Reservations(address, credentials) };
}

function bearer(accessToken) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${accessToken}`);
  return metadata;
}

// A unary call as a promise; rejects with the grpc-js error (error.code is a grpc.status).
function call(client, method, request, metadata = new grpc.Metadata(), timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + timeoutMs }, (error, response) =>
      (error ? reject(error) : resolve(response)));
  });
}

function timestamp(date) {
  const millis = date.getTime();
  return { seconds: Math.floor(millis / 1000), nanos: (millis % 1000) * 1e6 };
}

function toDate(stamp) {
  return new Date(Number(stamp.seconds) * 1000 + Math.floor(stamp.nanos / 1e6));
}

module.exports = { connect, bearer, call, timestamp, toDate, grpc };
