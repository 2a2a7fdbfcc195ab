package bench

import (
	"math"
	"reflect"
	"slices"
	"strings"

	"pushbench/results"
)

// keepFinite zeroes every figure of rec that is not a finite number (a
// division by zero on some path no test took) and names them in the
// failed check figures_finite: JSON cannot hold NaN or ±Inf, and a record
// that cannot be written would lose everything else it measured.
func keepFinite(rec *results.Record) {
	var bad []string
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Float32, reflect.Float64:
			if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				bad = append(bad, path)
				v.SetFloat(0)
			}
		case reflect.Struct:
			t := v.Type()
			for i := range v.NumField() {
				if f := t.Field(i); f.IsExported() {
					name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
					if name == "" || name == "-" {
						name = f.Name
					}
					walk(v.Field(i), strings.TrimPrefix(path+"."+name, "."))
				}
			}
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i), path)
			}
		}
	}
	walk(reflect.ValueOf(rec).Elem(), "")
	if len(bad) > 0 {
		slices.Sort(bad)
		rec.Checks["figures_finite"] = results.Check{OK: false,
			Detail: "not a finite number, written as 0: " + strings.Join(slices.Compact(bad), ", ")}
	}
}
