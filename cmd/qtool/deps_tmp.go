package main
import (
 _ "github.com/spf13/cobra"
 _ "github.com/spf13/viper"
 _ "github.com/x448/float16"
 _ "github.com/schollz/progressbar/v3"
 _ "github.com/klauspost/cpuid/v2"
 _ "google.golang.org/protobuf/proto"
)
func main(){}
