package observe

import (
	"errors"
	"fmt"
	"math"

	"github.com/qtool/qtool/internal/tensor"
)

// MinMax is PyTorch's MinMaxObserver (kind "minmax": running min and max)
// and MovingAverageMinMaxObserver (kind "moving_average_minmax": the first
// batch sets the range, later ones move it by
// min += c*(batch_min - min), in float32 as torch does).
//
// Merge: for "minmax" the min of the minima and the max of the maxima,
// exactly what one observer would hold. For the moving average, a.Merge(b)
// means b's batches came after a's: with b's first-batch range f_b and m
// batches, the average over the concatenation is
// avg_b + (1-c)^m (avg_a - f_b), which is what the sequential update gives in
// exact arithmetic (the float32 results can differ in the last bits). The
// result depends on the order of merging, and only on it.
type MinMax struct {
	kind               Kind
	cfg                Config
	min, max           float32
	firstMin, firstMax float32
	batches            int64
}

func (o *MinMax) Kind() Kind     { return o.kind }
func (o *MinMax) Config() Config { return o.cfg }

func (o *MinMax) Reset() {
	o.min, o.max = float32(math.Inf(1)), float32(math.Inf(-1))
	o.firstMin, o.firstMax, o.batches = 0, 0, 0
}

// Range returns the current (running or averaged) min and max.
func (o *MinMax) Range() (min, max float32) { return o.min, o.max }

func (o *MinMax) Observe(x []float32, shape []int) error {
	if err := checkBatch(x, shape); err != nil {
		return err
	}
	if len(x) == 0 {
		return nil
	}
	mn, mx, ok := minMax(x)
	if !ok {
		return ErrNonFinite
	}
	if o.kind == KindMovingAverageMinMax && o.batches > 0 {
		c := o.cfg.averaging()
		o.min = ema(o.min, mn, c)
		o.max = ema(o.max, mx, c)
	} else if o.kind == KindMovingAverageMinMax {
		o.min, o.max = mn, mx
	} else {
		o.min, o.max = min(o.min, mn), max(o.max, mx)
	}
	if o.batches == 0 {
		o.firstMin, o.firstMax = mn, mx
	}
	o.batches++
	return nil
}

// ema is torch's min_val + c * (cur - min_val) on float32 tensors: three
// separately rounded float32 operations (the conversions stop Go from fusing
// them into an FMA).
func ema(avg, cur, c float32) float32 {
	d := float32(cur - avg)
	p := float32(c * d)
	return float32(avg + p)
}

func (o *MinMax) QParams() ([]float32, []int32, error) {
	s, z, err := tensor.ChooseQParams(o.min, o.max, o.cfg.opts())
	if errors.Is(err, tensor.ErrEmptyRange) {
		return []float32{1}, []int32{0}, ErrEmpty
	}
	if err != nil {
		return nil, nil, err
	}
	return []float32{s}, []int32{z}, nil
}

func (o *MinMax) Merge(other Observer) error {
	if err := sameConfig(o, other); err != nil {
		return err
	}
	b := other.(*MinMax)
	switch {
	case b.batches == 0:
	case o.batches == 0:
		*o = *b
	case o.kind == KindMovingAverageMinMax:
		w := math.Pow(1-float64(o.cfg.averaging()), float64(b.batches))
		o.min = float32(float64(b.min) + w*(float64(o.min)-float64(b.firstMin)))
		o.max = float32(float64(b.max) + w*(float64(o.max)-float64(b.firstMax)))
		o.batches += b.batches
	default:
		o.min, o.max = min(o.min, b.min), max(o.max, b.max)
		o.batches += b.batches
	}
	return nil
}

func (o *MinMax) State() State {
	s := State{Kind: o.kind, Config: o.cfg, Batches: o.batches,
		Min: []F32{F32(o.min)}, Max: []F32{F32(o.max)}}
	if o.kind == KindMovingAverageMinMax && o.batches > 0 {
		s.FirstMin, s.FirstMax = []F32{F32(o.firstMin)}, []F32{F32(o.firstMax)}
	}
	return s
}

func (o *MinMax) setState(s State) error {
	o.Reset()
	if s.Batches < 0 {
		return errors.New("negative batch count")
	}
	if s.Batches == 0 {
		return nil
	}
	if len(s.Min) != 1 || len(s.Max) != 1 {
		return fmt.Errorf("want one min and max, got %d and %d", len(s.Min), len(s.Max))
	}
	o.min, o.max, o.batches = float32(s.Min[0]), float32(s.Max[0]), s.Batches
	if !finite(o.min) || !finite(o.max) || o.min > o.max {
		return fmt.Errorf("bad range [%v, %v]", o.min, o.max)
	}
	if o.kind == KindMovingAverageMinMax {
		if len(s.FirstMin) != 1 || len(s.FirstMax) != 1 {
			return errors.New("moving average state needs first_min and first_max")
		}
		o.firstMin, o.firstMax = float32(s.FirstMin[0]), float32(s.FirstMax[0])
	}
	return nil
}

func (o *MinMax) MarshalJSON() ([]byte, error)    { return marshalState(o) }
func (o *MinMax) UnmarshalJSON(data []byte) error { return unmarshalInto(o, data) }

// PerChannelMinMax is PyTorch's PerChannelMinMaxObserver (kind
// "per_channel_minmax") and MovingAveragePerChannelMinMaxObserver (kind
// "moving_average_per_channel_minmax"): MinMax per index of the channel axis
// Config.Axis. Merge is MinMax's, per channel.
type PerChannelMinMax struct {
	kind               Kind
	cfg                Config
	min, max           []float32
	firstMin, firstMax []float32
	batches            int64
	curMin, curMax     []float32 // scratch
}

func (o *PerChannelMinMax) Kind() Kind     { return o.kind }
func (o *PerChannelMinMax) Config() Config { return o.cfg }

func (o *PerChannelMinMax) Reset() {
	o.min, o.max, o.firstMin, o.firstMax, o.batches = nil, nil, nil, nil, 0
}

// Range returns the per-channel min and max (nil before the first batch).
func (o *PerChannelMinMax) Range() (min, max []float32) { return o.min, o.max }

func (o *PerChannelMinMax) Observe(x []float32, shape []int) error {
	if err := checkBatch(x, shape); err != nil {
		return err
	}
	if len(x) == 0 {
		return nil
	}
	axis := o.cfg.Axis
	if axis < 0 {
		axis += len(shape)
	}
	if axis < 0 || axis >= len(shape) {
		return fmt.Errorf("observe: channel axis %d out of range for shape %v", o.cfg.Axis, shape)
	}
	outer, inner := 1, 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	nc := shape[axis]
	if o.min != nil && len(o.min) != nc {
		return fmt.Errorf("observe: %d channels on axis %d, earlier batches had %d", nc, o.cfg.Axis, len(o.min))
	}
	if cap(o.curMin) < nc {
		o.curMin, o.curMax = make([]float32, nc), make([]float32, nc)
	}
	cmin, cmax := o.curMin[:nc], o.curMax[:nc]
	if !channelMinMax(x, outer, nc, inner, cmin, cmax) {
		return ErrNonFinite
	}
	switch {
	case o.min == nil:
		o.min, o.max = append([]float32(nil), cmin...), append([]float32(nil), cmax...)
		o.firstMin, o.firstMax = append([]float32(nil), cmin...), append([]float32(nil), cmax...)
	case o.kind == KindMovingAveragePerChannelMinMax:
		c := o.cfg.averaging()
		for i := range cmin {
			o.min[i] = ema(o.min[i], cmin[i], c)
			o.max[i] = ema(o.max[i], cmax[i], c)
		}
	default:
		for i := range cmin {
			o.min[i] = min(o.min[i], cmin[i])
			o.max[i] = max(o.max[i], cmax[i])
		}
	}
	o.batches++
	return nil
}

// channelMinMax reduces x viewed as [outer, nc, inner] over axes 0 and 2.
// It reports false if x holds NaN or Inf.
func channelMinMax(x []float32, outer, nc, inner int, cmin, cmax []float32) bool {
	for c := range cmin {
		cmin[c], cmax[c] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	if inner == 1 {
		bad := false
		for o := 0; o < outer; o++ {
			row := x[o*nc : o*nc+nc]
			for c, v := range row {
				if !(v >= cmin[c]) {
					if v != v {
						bad = true
						continue
					}
					cmin[c] = v
				}
				if v > cmax[c] {
					cmax[c] = v
				}
			}
		}
		if bad {
			return false
		}
	} else {
		for o := 0; o < outer; o++ {
			for c := 0; c < nc; c++ {
				off := (o*nc + c) * inner
				mn, mx, ok := minMax(x[off : off+inner])
				if !ok {
					return false
				}
				cmin[c] = min(cmin[c], mn)
				cmax[c] = max(cmax[c], mx)
			}
		}
	}
	for c := range cmin {
		if !finite(cmin[c]) || !finite(cmax[c]) {
			return false
		}
	}
	return true
}

func (o *PerChannelMinMax) QParams() ([]float32, []int32, error) {
	if o.min == nil {
		return []float32{1}, []int32{0}, ErrEmpty
	}
	return tensor.ChooseQParamsPerChannel(o.min, o.max, o.cfg.opts())
}

func (o *PerChannelMinMax) Merge(other Observer) error {
	if err := sameConfig(o, other); err != nil {
		return err
	}
	b := other.(*PerChannelMinMax)
	if b.batches == 0 {
		return nil
	}
	if o.batches == 0 {
		o.min, o.max = append([]float32(nil), b.min...), append([]float32(nil), b.max...)
		o.firstMin, o.firstMax = append([]float32(nil), b.firstMin...), append([]float32(nil), b.firstMax...)
		o.batches = b.batches
		return nil
	}
	if len(b.min) != len(o.min) {
		return fmt.Errorf("merge: %d channels vs %d", len(b.min), len(o.min))
	}
	if o.kind == KindMovingAveragePerChannelMinMax {
		w := math.Pow(1-float64(o.cfg.averaging()), float64(b.batches))
		for i := range o.min {
			o.min[i] = float32(float64(b.min[i]) + w*(float64(o.min[i])-float64(b.firstMin[i])))
			o.max[i] = float32(float64(b.max[i]) + w*(float64(o.max[i])-float64(b.firstMax[i])))
		}
	} else {
		for i := range o.min {
			o.min[i] = min(o.min[i], b.min[i])
			o.max[i] = max(o.max[i], b.max[i])
		}
	}
	o.batches += b.batches
	return nil
}

func (o *PerChannelMinMax) State() State {
	s := State{Kind: o.kind, Config: o.cfg, Batches: o.batches, Min: toF32(o.min), Max: toF32(o.max)}
	if o.kind == KindMovingAveragePerChannelMinMax {
		s.FirstMin, s.FirstMax = toF32(o.firstMin), toF32(o.firstMax)
	}
	return s
}

func (o *PerChannelMinMax) setState(s State) error {
	o.Reset()
	if s.Batches < 0 {
		return errors.New("negative batch count")
	}
	if s.Batches == 0 {
		return nil
	}
	if len(s.Min) == 0 || len(s.Min) != len(s.Max) {
		return fmt.Errorf("want equal, non-empty min and max lists, got %d and %d", len(s.Min), len(s.Max))
	}
	mn, mx := fromF32(s.Min), fromF32(s.Max)
	for i := range mn {
		if !finite(mn[i]) || !finite(mx[i]) || mn[i] > mx[i] {
			return fmt.Errorf("channel %d: bad range [%v, %v]", i, mn[i], mx[i])
		}
	}
	o.min, o.max, o.batches = mn, mx, s.Batches
	if o.kind == KindMovingAveragePerChannelMinMax {
		if len(s.FirstMin) != len(mn) || len(s.FirstMax) != len(mn) {
			return errors.New("moving average state needs first_min and first_max per channel")
		}
		o.firstMin, o.firstMax = fromF32(s.FirstMin), fromF32(s.FirstMax)
	} else {
		o.firstMin, o.firstMax = append([]float32(nil), mn...), append([]float32(nil), mx...)
	}
	return nil
}

func (o *PerChannelMinMax) MarshalJSON() ([]byte, error)    { return marshalState(o) }
func (o *PerChannelMinMax) UnmarshalJSON(data []byte) error { return unmarshalInto(o, data) }

func finite(v float32) bool { return !math.IsInf(float64(v), 0) && v == v }

// minMax returns the min and max of a non-empty x, and false if x holds a
// NaN or an infinity. Four independent lanes keep the compare chains short;
// the branches are almost never taken once the lanes hold the extremes.
func minMax(x []float32) (mn, mx float32, ok bool) {
	if useAVX2 && len(x) >= 8 {
		n8 := len(x) &^ 7
		mn, mx, unord := minMaxAVX2(x[:n8])
		if n8 < len(x) {
			tmn, tmx, tok := minMaxGo(x[n8:])
			mn, mx = min(mn, tmn), max(mx, tmx)
			unord = unord || !tok
		}
		if unord || !finite(mn) || !finite(mx) {
			return mn, mx, false
		}
		return mn, mx, true
	}
	return minMaxGo(x)
}

// minMaxGo is minMax's portable path.
func minMaxGo(x []float32) (mn, mx float32, ok bool) {
	if len(x) == 0 {
		return float32(math.Inf(1)), float32(math.Inf(-1)), true
	}
	bad := false
	lo0, lo1, lo2, lo3 := x[0], x[0], x[0], x[0]
	hi0, hi1, hi2, hi3 := x[0], x[0], x[0], x[0]
	if x[0] != x[0] {
		bad = true
		lo0, lo1, lo2, lo3 = float32(math.Inf(1)), float32(math.Inf(1)), float32(math.Inf(1)), float32(math.Inf(1))
		hi0, hi1, hi2, hi3 = float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1)), float32(math.Inf(-1))
	}
	i := 0
	for ; i+4 <= len(x); i += 4 {
		v := x[i : i+4 : i+4]
		v0, v1, v2, v3 := v[0], v[1], v[2], v[3]
		if !(v0 >= lo0) {
			if v0 != v0 {
				bad = true
			} else {
				lo0 = v0
			}
		}
		if !(v1 >= lo1) {
			if v1 != v1 {
				bad = true
			} else {
				lo1 = v1
			}
		}
		if !(v2 >= lo2) {
			if v2 != v2 {
				bad = true
			} else {
				lo2 = v2
			}
		}
		if !(v3 >= lo3) {
			if v3 != v3 {
				bad = true
			} else {
				lo3 = v3
			}
		}
		if v0 > hi0 {
			hi0 = v0
		}
		if v1 > hi1 {
			hi1 = v1
		}
		if v2 > hi2 {
			hi2 = v2
		}
		if v3 > hi3 {
			hi3 = v3
		}
	}
	for ; i < len(x); i++ {
		v := x[i]
		if v != v {
			bad = true
			continue
		}
		lo0 = min(lo0, v)
		hi0 = max(hi0, v)
	}
	mn = min(lo0, lo1, lo2, lo3)
	mx = max(hi0, hi1, hi2, hi3)
	if bad || !finite(mn) || !finite(mx) {
		return mn, mx, false
	}
	return mn, mx, true
}
