package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// configSections are the config file's top-level keys that hold a section
// of their own (decoded, with unknown keys refused, by the package that owns
// it) rather than the value of a flag.
var configSections = map[string]bool{"calibration": true, "quantization": true, "eval": true}

// checkConfigKeys refuses a config file whose top-level keys are neither a
// section nor a flag of some qtool command, or whose flag values have the
// wrong type: viper would otherwise ignore `thredas: 2` and read
// `threads: lots` as 0, and the user would never know. A flag of another
// command is accepted, so that one file can serve several commands.
func checkConfigKeys(root *cobra.Command, file string, settings map[string]any) error {
	flags := map[string]*pflag.Flag{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.PersistentFlags(), c.LocalFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if _, ok := flags[f.Name]; !ok {
					flags[f.Name] = f
				}
			})
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if configSections[k] {
			continue
		}
		f, ok := flags[k]
		if !ok {
			return fmt.Errorf("%s: unknown key %q (not a section or a flag of any qtool command)", file, k)
		}
		if err := checkFlagValue(f.Value.Type(), settings[k]); err != nil {
			return fmt.Errorf("%s: key %q: %v", file, k, err)
		}
	}
	return nil
}

func checkFlagValue(typ string, v any) error {
	isInt := func(x any) bool {
		switch x.(type) {
		case int, int64, uint64:
			return true
		}
		return false
	}
	ok := true
	switch typ {
	case "int", "int64":
		ok = isInt(v)
	case "uint64":
		ok = isInt(v) && fmt.Sprint(v)[0] != '-'
	case "bool":
		_, ok = v.(bool)
	case "float64":
		_, isF := v.(float64)
		ok = isF || isInt(v)
	case "duration":
		s, isS := v.(string)
		if ok = isS; ok {
			_, err := time.ParseDuration(s)
			ok = err == nil
		}
	case "string":
		_, ok = v.(string)
	case "stringArray", "stringSlice":
		switch x := v.(type) {
		case string:
		case []any:
			for _, e := range x {
				if _, s := e.(string); !s {
					ok = false
				}
			}
		default:
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("%v is not a valid %s", v, typ)
	}
	return nil
}

// readConfigOnly is the config file's own top-level settings (the merged
// viper also holds flags and environment variables). The file has already
// been read once, so an error here cannot happen; it yields no keys.
func readConfigOnly(file string) map[string]any {
	v := viper.New()
	v.SetConfigFile(file)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return nil
	}
	return v.AllSettings()
}
