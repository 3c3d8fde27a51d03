package testutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"k"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "g"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Help: "h"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("a").Add(2)
	c.WithLabelValues("b").Add(5)
	g.Set(7)
	h.Observe(1)
	h.Observe(2)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"c_total", []string{"k", "b"}, 5},
		{"c_total", []string{"k", "a"}, 2},
		{"c_total", []string{"k", "z"}, 0},
		{"g", nil, 7},
		{"h", nil, 2},
		{"absent", nil, 0},
	} {
		if got := Metric(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("Metric(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
