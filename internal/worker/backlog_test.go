package worker

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store/sqlite"
)

func TestBacklogCollectorExportsBothWorkersBacklog(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ironflow.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewBacklogCollector(st, nil))
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		got[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
	}
	require.Equal(t, map[string]float64{
		"ironflow_effects_pending":                    0,
		"ironflow_effects_oldest_pending_age_seconds": 0,
		"ironflow_effects_dead":                       0,
		"ironflow_effects_cancelled":                  0,
		"ironflow_timers_pending":                     0,
		"ironflow_timers_dead":                        0,
	}, got)
}
