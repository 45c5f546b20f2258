package sqlite

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store"
	"github.com/ironflow/ironflow/internal/store/storetest"
)

// TestClaimReadsOnlyDeliverableRows: an effect claim searches the due rows of one active
// endpoint's type at a time, and the due sends, each through its index in due order
// (migration 000014); it reads no other row of effects. So the due rows of a type
// without an active endpoint, or of a type the claim excludes, are never read. With one
// due index in due order, the claim read past every such row to find those it could
// deliver (decision 0032).
func TestClaimReadsOnlyDeliverableRows(t *testing.T) {
	t.Parallel()
	_, d := openDriver(t)
	plan := queryPlan(t, d, sqlClaimEffects, "w", 0, 0, store.LeaseTimeouts, "[]", 10)
	var steps []string
	for _, step := range plan {
		steps = append(steps, strings.TrimSpace(step))
	}
	for _, search := range []string{
		"SEARCH f USING INDEX effects_due_by_type (workflow_type=? AND next_attempt_at<?)",
		"SEARCH effects USING INDEX effects_due_sends (next_attempt_at<?)",
	} {
		require.Contains(t, steps, search, strings.Join(plan, "\n"))
	}
	for _, step := range steps {
		// Whole reads may only be of the endpoints (w), the JSON list of excluded types
		// and the rows found above.
		if strings.HasPrefix(step, "SCAN ") {
			require.True(t, step == "SCAN w" || strings.Contains(step, "json_each") || strings.HasPrefix(step, "SCAN (subquery"),
				"plan step %q:\n%s", step, strings.Join(plan, "\n"))
		}
	}
}

// BenchmarkClaimEffects: a claim beside rows it may not deliver (storetest).
func BenchmarkClaimEffects(b *testing.B) {
	storetest.BenchmarkClaimEffects(b, func(b *testing.B) store.Store {
		s, _ := openDriver(b)
		return s
	})
}
