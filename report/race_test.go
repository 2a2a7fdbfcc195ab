//go:build race

package report

// Under the race detector, rasterising charts at full resolution takes
// most of the package's test time and checks nothing about races: draw
// the PNGs small. Everything else is drawn as usual.
func init() { pngDPI = 20 }
