#!/usr/bin/env python3
"""Golden files for the LSTM/GRU/RNN kernels, computed by PyTorch 1.13.

Run: /usr/bin/python3 gen_rnn.py   (writes rnn_*.npz here)

Each archive holds the ONNX-layout inputs (X, W, R, B, seq, h0, c0) and
PyTorch's outputs converted to ONNX layout (Y, Yh, Yc), plus attrs as
small int arrays. PyTorch's gate orders differ from ONNX's: LSTM i,f,g,o
vs i,o,f,c; GRU r,z,n vs z,r,h. PyTorch's GRU is ONNX's
linear_before_reset=1. Sequence lengths go through pack_padded_sequence,
which gives ONNX's semantics: padded steps output zeros, and Y_h is the
state after each sequence's last valid step (reverse: after step 0).
"""
import numpy as np
import torch

torch.manual_seed(0)


def reorder(w, kind, H):
    g = [w[i * H:(i + 1) * H] for i in range(w.shape[0] // H)]
    if kind == "LSTM":  # torch i f g o -> onnx i o f c
        return np.concatenate([g[0], g[3], g[1], g[2]])
    if kind == "GRU":  # torch r z n -> onnx z r h
        return np.concatenate([g[1], g[0], g[2]])
    return np.concatenate(g)


def case(name, kind, T=5, B=3, I=4, H=6, bidir=False, layout=0, seq=None,
         init=True, nonlin="tanh"):
    D = 2 if bidir else 1
    if kind == "LSTM":
        m = torch.nn.LSTM(I, H, bidirectional=bidir, batch_first=layout == 1)
    elif kind == "GRU":
        m = torch.nn.GRU(I, H, bidirectional=bidir, batch_first=layout == 1)
    else:
        m = torch.nn.RNN(I, H, nonlinearity=nonlin, bidirectional=bidir, batch_first=layout == 1)
    x = torch.randn(B, T, I) if layout == 1 else torch.randn(T, B, I)
    h0 = torch.randn(D, B, H) if init else torch.zeros(D, B, H)
    c0 = torch.randn(D, B, H) if init else torch.zeros(D, B, H)
    with torch.no_grad():
        inp = x
        if seq is not None:
            inp = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(seq), batch_first=layout == 1, enforce_sorted=False)
        if kind == "LSTM":
            out, (hn, cn) = m(inp, (h0, c0))
        else:
            out, hn = m(inp, h0)
            cn = None
        if seq is not None:
            out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=layout == 1, total_length=T)
    Ws, Rs, Bs = [], [], []
    for sfx in ([""] + (["_reverse"] if bidir else [])):
        p = dict(m.named_parameters())
        Ws.append(reorder(p["weight_ih_l0" + sfx].detach().numpy(), kind, H))
        Rs.append(reorder(p["weight_hh_l0" + sfx].detach().numpy(), kind, H))
        Bs.append(np.concatenate([reorder(p["bias_ih_l0" + sfx].detach().numpy(), kind, H),
                                  reorder(p["bias_hh_l0" + sfx].detach().numpy(), kind, H)]))
    out = out.numpy()
    if layout == 1:
        Y = out.reshape(B, T, D, H)
        tr = lambda s: np.ascontiguousarray(s.transpose(1, 0, 2))
    else:
        Y = out.reshape(T, B, D, H).transpose(0, 2, 1, 3)
        tr = lambda s: s
    arrs = dict(
        X=x.numpy(), W=np.stack(Ws), R=np.stack(Rs), B=np.stack(Bs),
        Y=np.ascontiguousarray(Y), Yh=tr(hn.numpy()),
        attrs=np.array([D, layout, H, 1 if kind == "GRU" else 0], dtype=np.int64),
        kind=np.frombuffer(kind.ljust(4).encode(), dtype=np.uint8),
    )
    if init:
        arrs["h0"] = tr(h0.numpy())
        if kind == "LSTM":
            arrs["c0"] = tr(c0.numpy())
    if kind == "LSTM":
        arrs["Yc"] = tr(cn.numpy())
    if seq is not None:
        arrs["seq"] = np.array(seq, dtype=np.int32)
    if kind == "RNN":
        arrs["act"] = np.frombuffer(nonlin.ljust(4).encode(), dtype=np.uint8)
    for k in arrs:
        arrs[k] = np.ascontiguousarray(arrs[k]).astype(arrs[k].dtype)
    np.savez("rnn_%s.npz" % name, **{k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in arrs.items()})


case("lstm_bidir_seq", "LSTM", bidir=True, seq=[5, 3, 1])
case("lstm_layout1_init", "LSTM", layout=1, bidir=True)
case("lstm_noinit", "LSTM", init=False)
case("gru_bidir_seq_layout1", "GRU", bidir=True, layout=1, seq=[2, 5, 4])
case("gru_fwd", "GRU")
case("rnn_relu_bidir", "RNN", bidir=True, nonlin="relu", seq=[4, 5, 2])
case("rnn_tanh_layout1", "RNN", layout=1)
