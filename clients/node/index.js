#!/usr/bin/env node
// Example pinsched client for Node.js (@grpc/grpc-js + @grpc/proto-loader, no code generation).
//
// Loads proto/pinsched/v1/*.proto at run time, optionally creates an account, schedules one pin,
// then follows the WatchJobs stream until the job is DELIVERED. Every step prints one JSON line
// on stdout. Exit codes: 0 delivered; 1 the job ended in another terminal state, an RPC failed or
// the deadline passed; 2 bad arguments.
//
//   node index.js --target 127.0.0.1:50051 --account acme \
//       --access-token pina_... --refresh-token pinr_... \
//       --board 123456789 --title "Hello" --image-url https://example.com/a.jpg
//
// The API token is read from --api-token or PINSCHED_API_TOKEN (sent as `authorization: Bearer`);
// TLS is on with --tls-ca FILE (and --tls-client-cert/--tls-client-key for mutual TLS).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'proto');
const PROTO_FILES = ['account.proto', 'job.proto', 'scheduler.proto'].map((f) =>
  path.join('pinsched', 'v1', f),
);
const TERMINAL = new Set([
  'STATE_DELIVERED',
  'STATE_FAILED',
  'STATE_PERMANENTLY_FAILED',
  'STATE_CANCELLED',
]);

const USAGE = `usage: node index.js --account ID --board BOARD_ID --image-url URL [options]
  --target HOST:PORT        daemon address (default 127.0.0.1:50051, env PINSCHED_TARGET)
  --api-token TOKEN         bearer token (env PINSCHED_API_TOKEN)
  --access-token TOKEN      create the account with these OAuth tokens first
  --refresh-token TOKEN
  --title TEXT --description TEXT --link URL --alt-text TEXT
  --at ISO8601              when to publish (default: now)
  --window SECONDS          delivery window (default 0)
  --request-id ID           idempotency key (default: a new uuid)
  --timeout SECONDS         give up after this long (default 60)
  --tls-ca FILE             use TLS trusting this CA; --tls-client-cert/--tls-client-key FILE
  --proto-root DIR          where pinsched/v1/*.proto live (default ../../proto)`;

function print(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function fail(code, message, extra = {}) {
  print({ event: 'error', message, ...extra });
  process.exit(code);
}

function parse() {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      'api-token': { type: 'string' },
      account: { type: 'string' },
      'access-token': { type: 'string' },
      'refresh-token': { type: 'string' },
      board: { type: 'string' },
      title: { type: 'string', default: '' },
      description: { type: 'string', default: '' },
      link: { type: 'string', default: '' },
      'alt-text': { type: 'string', default: '' },
      'image-url': { type: 'string' },
      at: { type: 'string' },
      window: { type: 'string', default: '0' },
      'request-id': { type: 'string' },
      timeout: { type: 'string', default: '60' },
      'tls-ca': { type: 'string' },
      'tls-client-cert': { type: 'string' },
      'tls-client-key': { type: 'string' },
      'proto-root': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  for (const required of ['account', 'board', 'image-url']) {
    if (!values[required]) fail(2, `--${required} is required`, { usage: USAGE });
  }
  return values;
}

function loadPackage(protoRoot) {
  const definition = protoLoader.loadSync(PROTO_FILES, {
    includeDirs: [protoRoot], // google/type/*.proto is vendored there; google/protobuf is built in
    keepCase: true, // proto field names, as in the API docs (snake_case)
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).pinsched.v1;
}

function credentials(opts) {
  if (!opts['tls-ca'] && !opts['tls-client-cert']) return grpc.credentials.createInsecure();
  const read = (file) => (file ? fs.readFileSync(file) : null);
  return grpc.credentials.createSsl(
    read(opts['tls-ca']),
    read(opts['tls-client-key']),
    read(opts['tls-client-cert']),
  );
}

function timestamp(date) {
  const ms = date.getTime();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

function unary(client, method, request, metadata, deadline) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline }, (err, reply) =>
      err ? reject(err) : resolve(reply),
    );
  });
}

function rpcError(step, err) {
  return { step, code: grpc.status[err.code] ?? err.code, details: err.details };
}

async function main() {
  const opts = parse();
  const target = opts.target || process.env.PINSCHED_TARGET || '127.0.0.1:50051';
  const apiToken = opts['api-token'] || process.env.PINSCHED_API_TOKEN || '';
  const timeoutMs = Number(opts.timeout) * 1000;
  const deadline = new Date(Date.now() + timeoutMs);
  const pkg = loadPackage(opts['proto-root'] ? path.resolve(opts['proto-root']) : PROTO_ROOT);
  const creds = credentials(opts);
  const accounts = new pkg.AccountService(target, creds);
  const jobs = new pkg.PinScheduler(target, creds);
  const metadata = new grpc.Metadata();
  if (apiToken) metadata.set('authorization', `Bearer ${apiToken}`);

  if (opts['access-token']) {
    const account = {
      display_name: opts.account,
      access_token: opts['access-token'],
      refresh_token: opts['refresh-token'] || '',
    };
    try {
      const created = await unary(
        accounts,
        'CreateAccount',
        { account_id: opts.account, account },
        metadata,
        deadline,
      );
      print({ event: 'account_created', account_id: created.id, state: created.state });
    } catch (err) {
      if (err.code !== grpc.status.ALREADY_EXISTS) {
        fail(1, 'CreateAccount failed', rpcError('CreateAccount', err));
      }
      print({ event: 'account_exists', account_id: opts.account });
    }
  }

  const request = {
    request_id: opts['request-id'] || crypto.randomUUID(),
    account_id: opts.account,
    pin: {
      board_id: opts.board,
      title: opts.title,
      description: opts.description,
      link: opts.link,
      alt_text: opts['alt-text'],
      media_source: { image_url: { url: opts['image-url'] } },
    },
    scheduled_at: timestamp(opts.at ? new Date(opts.at) : new Date()),
    delivery_window: { seconds: String(Number(opts.window) || 0), nanos: 0 },
  };
  let job;
  try {
    job = await unary(jobs, 'SchedulePin', request, metadata, deadline);
  } catch (err) {
    fail(1, 'SchedulePin failed', rpcError('SchedulePin', err));
  }
  print({ event: 'scheduled', job_id: job.id, state: job.state, planned_at: job.planned_at });

  // since_sequence 0 replays the job's whole history first, so no event can be missed between
  // SchedulePin and the start of the stream.
  const call = jobs.WatchJobs({ job_ids: [job.id], since_sequence: '0' }, metadata, { deadline });
  const outcome = await new Promise((resolve) => {
    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      call.cancel();
      resolve(result);
    };
    // Each message is a batch: one event while we keep up, everything pending when behind.
    call.on('data', (message) => {
      for (const event of message.events) {
        if (done) return;
        print({
          event: 'job_event',
          sequence: event.sequence,
          job_id: event.job_id,
          from_state: event.from_state,
          to_state: event.to_state,
          reason: event.reason,
        });
        if (TERMINAL.has(event.to_state)) {
          finish({ state: event.to_state, job: event.job });
        }
      }
    });
    call.on('error', (err) => {
      if (!done) finish({ error: rpcError('WatchJobs', err) });
    });
    call.on('end', () => finish({ error: { step: 'WatchJobs', details: 'stream ended' } }));
  });
  accounts.close();
  jobs.close();
  if (outcome.error) fail(1, 'watch failed before the job settled', outcome.error);
  if (outcome.state !== 'STATE_DELIVERED') {
    fail(1, `job ended ${outcome.state}`, { job_id: job.id, last_error: outcome.job?.last_error });
  }
  print({
    event: 'delivered',
    job_id: job.id,
    pinterest_pin_id: outcome.job?.pinterest_pin_id ?? '',
    attempts: outcome.job?.attempts ?? 0,
  });
  process.exit(0);
}

main().catch((err) => fail(1, String(err && err.stack ? err.stack : err)));
