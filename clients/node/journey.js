// login -> availability -> create -> get -> watch, then cancel and see the watch report it.
// Usage: BOOKIFY_GRPC=127.0.0.1:50051 BOOKIFY_EMAIL=... BOOKIFY_PASSWORD=... BOOKIFY_PLACE_ID=1 \
//        BOOKIFY_START=2027-01-01T10:00:00Z BOOKIFY_END=2027-01-01T12:00:00Z node journey.js
// Prints one JSON summary line; exits 1 on any failure.
'use strict';
const { connect, bearer, call, timestamp, toDate } = require('./client');

function nextMessage(stream, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error('no message from watch_reservations')); }, timeoutMs);
    const onData = (message) => { cleanup(); resolve(message); };
    const onError = (error) => { cleanup(); reject(error); };
    function cleanup() { clearTimeout(timer); stream.off('data', onData); stream.off('error', onError); stream.pause(); }
    stream.on('data', onData);
    stream.on('error', onError);
    stream.resume();
  });
}

async function main() {
  const env = process.env;
  const { auth, reservations } = connect(env.BOOKIFY_GRPC || '127.0.0.1:50051');
  const tokens = await call(auth, 'login', { email: env.BOOKIFY_EMAIL, password: env.BOOKIFY_PASSWORD });
  const metadata = bearer(tokens.access_token);
  const placeId = Number(env.BOOKIFY_PLACE_ID);
  const start = new Date(env.BOOKIFY_START);
  const end = new Date(env.BOOKIFY_END);

  const day = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate()));
  const availability = await call(reservations, 'check_availability', {
    place_id: placeId, from: timestamp(day), to: timestamp(new Date(day.getTime() + 86400000)) }, metadata);
  const created = await call(reservations, 'create_reservation', {
    place_id: placeId, start: timestamp(start), end: timestamp(end), payment_method: 'pm_card_visa' },
  metadata, 30000);
  const got = await call(reservations, 'get_reservation', { id: created.id }, metadata);

  const watch = reservations.watch_reservations({ place_id: placeId }, metadata);
  watch.on('error', () => {}); // our own cancel() ends it with CANCELLED
  const current = await nextMessage(watch, 15000);
  await call(reservations, 'cancel_reservation', { id: created.id, reason: 'from node' }, metadata, 30000);
  const change = await nextMessage(watch, 15000);
  watch.cancel();

  console.log(JSON.stringify({
    token_type: tokens.token_type,
    free: availability.free.map((w) => [toDate(w.start).toISOString(), toDate(w.end).toISOString()]),
    created: { id: created.id, status: created.status, amount: created.amount, currency: created.currency,
      start: toDate(created.start).toISOString(), end: toDate(created.end).toISOString() },
    got: { id: got.id, status: got.status },
    watched: [{ id: current.id, status: current.status }, { id: change.id, status: change.status,
      cancel_reason: change.cancel_reason }],
  }));
  auth.close();
  reservations.close();
}

main().catch((error) => {
  console.error(`journey failed: ${error.code !== undefined ? `gRPC status ${error.code}: ` : ''}${error.message}`);
  process.exit(1);
});
