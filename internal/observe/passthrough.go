package observe

import (
	"errors"
	"fmt"

	"github.com/qtool/qtool/internal/tensor"
)

// Passthrough is PyTorch's NoopObserver (kind "noop", dtype float16 by
// default: the tensor is converted to float16, no qparams) and
// PlaceholderObserver (kind "placeholder": carries a dtype for dynamic
// quantization). Neither looks at the data; QParams returns ErrNoQParams and
// Config().DType is the marker callers act on.
type Passthrough struct {
	kind    Kind
	cfg     Config
	batches int64
}

func (o *Passthrough) Kind() Kind     { return o.kind }
func (o *Passthrough) Config() Config { return o.cfg }
func (o *Passthrough) Reset()         { o.batches = 0 }

func (o *Passthrough) Observe(x []float32, shape []int) error {
	if err := checkBatch(x, shape); err != nil {
		return err
	}
	if len(x) > 0 {
		o.batches++
	}
	return nil
}

func (o *Passthrough) QParams() ([]float32, []int32, error) {
	return nil, nil, fmt.Errorf("%s observer (dtype %v): %w", o.kind, o.cfg.DType, ErrNoQParams)
}

func (o *Passthrough) Merge(other Observer) error {
	if err := sameConfig(o, other); err != nil {
		return err
	}
	o.batches += other.(*Passthrough).batches
	return nil
}

func (o *Passthrough) State() State {
	return State{Kind: o.kind, Config: o.cfg, Batches: o.batches}
}

func (o *Passthrough) setState(s State) error {
	if s.Batches < 0 {
		return errors.New("negative batch count")
	}
	o.batches = s.Batches
	return nil
}

func (o *Passthrough) MarshalJSON() ([]byte, error)    { return marshalState(o) }
func (o *Passthrough) UnmarshalJSON(data []byte) error { return unmarshalInto(o, data) }

// MaxRecorded bounds what a RecordingObserver keeps (elements over all
// batches), so that a debugging observer left on during calibration cannot
// exhaust memory; batches past the bound are counted, not kept.
const MaxRecorded = 1 << 24

// Recording is PyTorch's RecordingObserver (kind "recording"): it keeps a
// copy of every batch, for debugging. No qparams. Merge appends the other
// observer's batches after this one's.
type Recording struct {
	cfg      Config
	batches  int64
	kept     int
	Recorded []Recorded
}

func (o *Recording) Kind() Kind     { return KindRecording }
func (o *Recording) Config() Config { return o.cfg }
func (o *Recording) Reset()         { o.batches, o.kept, o.Recorded = 0, 0, nil }

func (o *Recording) Observe(x []float32, shape []int) error {
	if err := checkBatch(x, shape); err != nil {
		return err
	}
	o.batches++
	if o.kept+len(x) > MaxRecorded {
		return nil
	}
	o.kept += len(x)
	o.Recorded = append(o.Recorded, Recorded{Shape: append([]int(nil), shape...), Data: toF32(x)})
	return nil
}

func (o *Recording) QParams() ([]float32, []int32, error) {
	return nil, nil, fmt.Errorf("recording observer: %w", ErrNoQParams)
}

func (o *Recording) Merge(other Observer) error {
	if err := sameConfig(o, other); err != nil {
		return err
	}
	b := other.(*Recording)
	o.batches += b.batches
	for _, r := range b.Recorded {
		if o.kept+len(r.Data) > MaxRecorded {
			break
		}
		o.kept += len(r.Data)
		o.Recorded = append(o.Recorded, Recorded{Shape: append([]int(nil), r.Shape...), Data: append([]F32(nil), r.Data...)})
	}
	return nil
}

func (o *Recording) State() State {
	return State{Kind: KindRecording, Config: o.cfg, Batches: o.batches, Recorded: o.Recorded}
}

func (o *Recording) setState(s State) error {
	o.Reset()
	if s.Batches < 0 {
		return errors.New("negative batch count")
	}
	for i, r := range s.Recorded {
		n, err := tensor.NumElements(r.Shape)
		if err != nil {
			return fmt.Errorf("recorded batch %d: %w", i, err)
		}
		if n != len(r.Data) {
			return fmt.Errorf("recorded batch %d: %d values for shape %v", i, len(r.Data), r.Shape)
		}
		o.kept += len(r.Data)
	}
	if o.kept > MaxRecorded {
		return fmt.Errorf("recorded data holds %d values, more than %d", o.kept, MaxRecorded)
	}
	o.batches, o.Recorded = s.Batches, s.Recorded
	return nil
}

func (o *Recording) MarshalJSON() ([]byte, error)    { return marshalState(o) }
func (o *Recording) UnmarshalJSON(data []byte) error { return unmarshalInto(o, data) }
