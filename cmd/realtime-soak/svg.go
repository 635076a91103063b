package main

import (
	"fmt"
	"html"
	"strings"
	"time"
)

// series is one line of the plot, scaled to its own maximum (the axis
// label says it).
type series struct {
	name, color string
	unit        func(float64) string
	get         func(Sample) float64
}

// plot draws connections, RSS, goroutines and open files over time as an
// SVG, each line on its own scale (0 to its maximum), with the restart
// marked where the server process changes.
func plot(samples []Sample, start time.Time) []byte {
	const (
		w, h               = 900.0, 420.0
		left, right        = 60.0, 20.0
		top, bottom        = 40.0, 70.0
		plotW, plotH       = w - left - right, h - top - bottom
		gridLines          = 4
		legendY            = h - 25
		legendGap          = 220.0
		fontAttrs          = `font-family="sans-serif" font-size="12"`
		emptyPlotPlacehold = "no samples"
	)
	all := []series{
		{"connections", "#1f77b4", func(x float64) string { return fmt.Sprintf("%.0f", x) }, func(s Sample) float64 { return float64(s.Conns) }},
		{"RSS", "#d62728", func(x float64) string { return fmt.Sprintf("%.0f MiB", x/(1<<20)) }, func(s Sample) float64 { return s.RSS }},
		{"goroutines", "#2ca02c", func(x float64) string { return fmt.Sprintf("%.0f", x) }, func(s Sample) float64 { return s.Goroutines }},
		{"open files", "#9467bd", func(x float64) string { return fmt.Sprintf("%.0f", x) }, func(s Sample) float64 { return s.FDs }},
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-family="sans-serif" font-size="14">%s</text>`+"\n", left,
		html.EscapeString("realtime soak: the server over time (each line on its own scale, 0 to its maximum)"))
	if len(samples) == 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" %s>%s</text>`+"\n", left, top+plotH/2, fontAttrs, emptyPlotPlacehold)
		b.WriteString("</svg>\n")
		return []byte(b.String())
	}
	t0 := start
	if samples[0].At.Before(t0) {
		t0 = samples[0].At
	}
	span := samples[len(samples)-1].At.Sub(t0).Seconds()
	if span <= 0 {
		span = 1
	}
	x := func(t time.Time) float64 { return left + t.Sub(t0).Seconds()/span*plotW }
	// Grid and time axis.
	for i := 0; i <= gridLines; i++ {
		y := top + plotH*float64(i)/gridLines
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+plotW, y)
	}
	for i := 0; i <= 6; i++ {
		sec := span * float64(i) / 6
		xx := left + plotW*float64(i)/6
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", xx, top, xx, top+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" %s text-anchor="middle">%s</text>`+"\n", xx, top+plotH+16, fontAttrs,
			(time.Duration(sec) * time.Second).Round(time.Second))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" %s text-anchor="middle">time since the population connected</text>`+"\n", left+plotW/2, top+plotH+32, fontAttrs)
	// The restart.
	for i := 1; i < len(samples); i++ {
		if samples[i].Gen != samples[i-1].Gen {
			xx := x(samples[i].At)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888" stroke-dasharray="4 3"/>`+"\n", xx, top, xx, top+plotH)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" %s fill="#555">restart</text>`+"\n", xx+3, top+12, fontAttrs)
		}
	}
	for k, s := range all {
		peak := 0.0
		for _, m := range samples {
			peak = max(peak, s.get(m))
		}
		if peak == 0 {
			peak = 1
		}
		var pts []string
		for _, m := range samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(m.At), top+plotH-s.get(m)/peak*plotH))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		lx := left + legendGap*float64(k)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="14" height="4" fill="%s"/>`+"\n", lx, legendY-4, s.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" %s>%s</text>`+"\n", lx+18, legendY, fontAttrs,
			html.EscapeString(fmt.Sprintf("%s (max %s)", s.name, s.unit(peak))))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}
