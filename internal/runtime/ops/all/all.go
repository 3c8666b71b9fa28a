// Package all registers every kernel package of the runtime: commands and
// tests that run whole models import it for its side effects.
package all

import (
	_ "github.com/qtool/qtool/internal/runtime/ops/basic"
	_ "github.com/qtool/qtool/internal/runtime/ops/nn"
	_ "github.com/qtool/qtool/internal/runtime/ops/qlinear"
	_ "github.com/qtool/qtool/internal/runtime/ops/quant"
)
