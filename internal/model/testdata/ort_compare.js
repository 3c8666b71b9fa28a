// Runs pairs of ONNX models (a file and qtool's re-save of it) in ONNX
// Runtime with the same inputs and reports whether their outputs are
// bit-identical. Used by internal/model's TestSavedModelsInORT:
//
//   node ort_compare.js ORT_MODULE_DIR JOBS.json
//
// JOBS.json: [{"orig": PATH, "saved": PATH, "inputs": {NAME: FILE.npy}}, ...]
// Graph optimizations are off: with them ORT may fuse a model whose
// initializers are constants and not its twin that lists them as inputs,
// and fused kernels round differently.
// Prints one JSON line per job: {"i", "orig_error", "saved_error", "mismatch"}.
'use strict';
const fs = require('fs');
const ort = require(process.argv[2]);

const DT = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
  '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array],
  '<i4': ['int32', Int32Array], '<i8': ['int64', BigInt64Array],
  '<u2': ['uint16', Uint16Array], '<i2': ['int16', Int16Array], '|b1': ['bool', Uint8Array],
  '<f2': ['float16', Uint16Array], '<u4': ['uint32', Uint32Array], '<u8': ['uint64', BigUint64Array],
};

function readNpy(file) {
  const b = fs.readFileSync(file);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = b.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const [type, Arr] = DT[descr] || (() => { throw new Error(`${file}: dtype ${descr}`); })();
  const off = hstart + hlen;
  const n = shape.reduce((a, c) => a * c, 1);
  const data = new Arr(n);
  new Uint8Array(data.buffer).set(b.subarray(off, off + n * Arr.BYTES_PER_ELEMENT));
  return new ort.Tensor(type, data, shape);
}

async function run(model, feeds) {
  const sess = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  const res = await sess.run(feeds);
  return sess.outputNames.map(n => res[n]);
}

function bytesOf(t) {
  if (t.type === 'string') return Buffer.from(JSON.stringify(t.data));
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

async function main() {
  const jobs = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
  for (let i = 0; i < jobs.length; i++) {
    const j = jobs[i];
    const out = { i };
    let feeds;
    try {
      feeds = {};
      for (const [k, f] of Object.entries(j.inputs)) feeds[k] = readNpy(f);
    } catch (e) { out.orig_error = 'inputs: ' + String(e.message || e); console.log(JSON.stringify(out)); continue; }
    let a, b;
    try { a = await run(j.orig, feeds); } catch (e) { out.orig_error = String(e.message || e).split('\n')[0]; }
    if (!out.orig_error) {
      try { b = await run(j.saved, feeds); } catch (e) { out.saved_error = String(e.message || e).split('\n')[0]; }
    }
    if (a && b) {
      if (a.length !== b.length) out.mismatch = `${a.length} outputs vs ${b.length}`;
      else for (let k = 0; k < a.length; k++) {
        if (a[k].type !== b[k].type || a[k].dims.join(',') !== b[k].dims.join(',') || !bytesOf(a[k]).equals(bytesOf(b[k]))) {
          out.mismatch = `output ${k}: ${a[k].type}[${a[k].dims}] vs ${b[k].type}[${b[k].dims}]`;
          break;
        }
      }
    }
    console.log(JSON.stringify(out));
  }
}
main().catch(e => { console.error(String(e && e.message || e)); process.exit(1); });
