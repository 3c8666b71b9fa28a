#!/usr/bin/env node
// ONNX Runtime (CPU, from npm) as a peer for qtool's tests and benchmarks.
//
//   node ort.js run MODEL OUTDIR NAME=FILE.npy ...     outputs written as OUTDIR/<output>.npy
//   node ort.js bench MODEL [--runs N] [--warmup N] [--threads N] NAME=FILE.npy ...
//                                                     prints one JSON line: median/p90 latency in ms
// Inputs not given on the command line are filled with a fixed pseudo-random
// pattern (same every run) when their shape is fully known, or with 1 for
// symbolic dims, so `bench` needs no data.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const DT = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array],
  '<i4': ['int32', Int32Array], '<i8': ['int64', BigInt64Array],
  '<u2': ['uint16', Uint16Array], '<i2': ['int16', Int16Array], '|b1': ['bool', Uint8Array],
};

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = b.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const [type, Arr] = DT[descr] || (() => { throw new Error(`${file}: dtype ${descr}`); })();
  const off = hstart + hlen;
  const n = shape.reduce((a, c) => a * c, 1);
  const bytes = b.subarray(off, off + n * Arr.BYTES_PER_ELEMENT);
  const data = new Arr(n);
  new Uint8Array(data.buffer).set(bytes);
  return new ort.Tensor(type === 'bool' ? 'bool' : type, type === 'bool' ? Uint8Array.from(data) : data, shape);
}

function writeNpy(file, t) {
  const map = { float32: '<f4', float64: '<f8', uint8: '|u1', int8: '|i1', int32: '<i4', int64: '<i8', uint16: '<u2', int16: '<i2', bool: '|b1' };
  const descr = map[t.type];
  if (!descr) throw new Error(`cannot write ${t.type}`);
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1'); head[6] = 1; head[7] = 0; head.writeUInt16LE(dict.length, 8);
  const data = t.type === 'bool' ? Buffer.from(Uint8Array.from(t.data, v => (v ? 1 : 0))) : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(dict, 'latin1'), data]));
}

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

function parseArgs(argv) {
  const o = { runs: 50, warmup: 5, threads: 1, inputs: {}, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs') o.runs = +argv[++i];
    else if (a === '--warmup') o.warmup = +argv[++i];
    else if (a === '--threads') o.threads = +argv[++i];
    else if (a.includes('=')) { const k = a.indexOf('='); o.inputs[a.slice(0, k)] = a.slice(k + 1); }
    else o.rest.push(a);
  }
  return o;
}

async function main() {
  const [cmd, ...argv] = process.argv.slice(2);
  const o = parseArgs(argv);
  const model = o.rest[0];
  if (!cmd || !model) {
    console.error('usage: ort.js run MODEL OUTDIR NAME=FILE.npy ... | ort.js bench MODEL [--runs N] [--threads N] [NAME=FILE.npy ...]');
    process.exit(2);
  }
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: o.threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: process.env.QTOOL_ORT_OPT_LEVEL || 'all', // 'disabled' runs QDQ graphs literally
  });
  const feeds = {};
  const metas = sess.inputMetadata || [];
  sess.inputNames.forEach((name, i) => {
    if (o.inputs[name]) feeds[name] = readNpy(o.inputs[name]);
    else if (Object.keys(o.inputs).length === 1 && sess.inputNames.length === 1) feeds[name] = readNpy(Object.values(o.inputs)[0]);
    else feeds[name] = filler({ name, ...(metas[i] || {}) });
  });
  if (cmd === 'run') {
    const outdir = o.rest[1];
    fs.mkdirSync(outdir, { recursive: true });
    const res = await sess.run(feeds);
    for (const name of sess.outputNames) writeNpy(path.join(outdir, name.replace(/[^A-Za-z0-9_.-]/g, '_') + '.npy'), res[name]);
    return;
  }
  if (cmd === 'bench') {
    for (let i = 0; i < o.warmup; i++) await sess.run(feeds);
    const t = [];
    for (let i = 0; i < o.runs; i++) {
      const s = process.hrtime.bigint();
      await sess.run(feeds);
      t.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    t.sort((a, b) => a - b);
    const q = p => t[Math.min(t.length - 1, Math.floor(p * t.length))];
    console.log(JSON.stringify({ runtime: 'onnxruntime-node', version: require('onnxruntime-node/package.json').version, model, threads: o.threads, runs: o.runs, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99) }));
    return;
  }
  console.error(`unknown command ${cmd}`);
  process.exit(2);
}
main().catch(e => { console.error(String(e && e.message || e)); process.exit(1); });
