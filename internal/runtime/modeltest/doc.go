// Package modeltest holds whole-model tests and benchmarks of the float
// runtime: torchvision's ResNet-18 and MobileNetV2 (random weights, from
// ../shared/models/torchvision-random) run through runtime.Session with
// every registered op package, compared with PyTorch's committed outputs
// and timed against ONNX Runtime in the same run.
//
// The models live outside the repository; tests skip when they are absent.
package modeltest
