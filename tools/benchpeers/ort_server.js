#!/usr/bin/env node
// ONNX Runtime peer for tools/benchpeers, as a server so that the driver can
// interleave single inferences of qtool, ONNX Runtime and PyTorch (A, B, A,
// B, ...) on a noisy machine. Session options and the input filler are
// those of tools/peers/ort.js `bench`, so the figures are comparable.
//
//   node ort_server.js THREADS
// reads one JSON request per line on stdin and answers one JSON line:
//   {"op": "load", "model": PATH}           -> {"ok": true, "version": ...}
//   {"op": "run", "model": PATH, "n": N}    -> {"ms": [N latencies]}
// Errors answer {"error": "..."}.
'use strict';
const path = require('path');
const readline = require('readline');
const ort = require(path.join(__dirname, '..', 'peers', 'node_modules', 'onnxruntime-node'));
const version = require(path.join(__dirname, '..', 'peers', 'node_modules', 'onnxruntime-node', 'package.json')).version;

const threads = +(process.argv[2] || 1);
const sessions = new Map();

// Same as tools/peers/ort.js's filler (and qtool's bench.SynthInput).
function filler(meta) {
  const shape = (meta.shape || []).map(d => (typeof d === 'number' && d > 0 ? d : 1));
  const n = shape.reduce((a, c) => a * c, 1);
  const types = { float: Float32Array, float32: Float32Array, uint8: Uint8Array, int8: Int8Array, int64: BigInt64Array, int32: Int32Array };
  const type = meta.type === 'float' ? 'float32' : meta.type;
  const Arr = types[type];
  if (!Arr) throw new Error(`cannot fill input ${meta.name} of type ${meta.type}`);
  const data = new Arr(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const u = (s >>> 8) / (1 << 24);
    data[i] = Arr === BigInt64Array ? 0n : Arr === Float32Array ? u * 2 - 1 : Math.floor(u * 255);
  }
  return new ort.Tensor(type, data, shape);
}

async function handle(req) {
  if (req.op === 'load') {
    if (!sessions.has(req.model)) {
      const sess = await ort.InferenceSession.create(req.model, {
        intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
      const feeds = {};
      const metas = sess.inputMetadata || [];
      sess.inputNames.forEach((name, i) => { feeds[name] = filler({ name, ...(metas[i] || {}) }); });
      sessions.set(req.model, { sess, feeds });
    }
    return { ok: true, version };
  }
  if (req.op === 'run') {
    const s = sessions.get(req.model);
    if (!s) throw new Error(`${req.model} not loaded`);
    const ms = [];
    for (let i = 0; i < (req.n || 1); i++) {
      const t = process.hrtime.bigint();
      await s.sess.run(s.feeds);
      ms.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return { ms };
  }
  throw new Error(`unknown op ${req.op}`);
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', line => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    let res;
    try { res = await handle(JSON.parse(line)); } catch (e) { res = { error: String(e && e.message || e).split('\n')[0] }; }
    process.stdout.write(JSON.stringify(res) + '\n');
  });
});
