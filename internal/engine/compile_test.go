package engine

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ironflow/ironflow/internal/store/sqlite"
	"github.com/ironflow/ironflow/internal/workflow"
)

// TestConcurrentFirstUsesShareOneCompile: a process that did not store a version
// compiles it on first use, once, however many decisions ask for it at the same
// time; they all get the same compiled definition.
func TestConcurrentFirstUsesShareOneCompile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ironflow.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	body := []byte(`{"initial_state":"s","inputs":{"go":{}},"states":{"s":{"on":{"go":{"to":"s","data":"{'n': 1}"}}}}}`)
	_, _, err = New(Config{Store: s}).PutDefinition(ctx, "shared", body)
	require.NoError(t, err)

	other := New(Config{Store: s}) // a second process: nothing compiled yet
	const n = 8
	got := make([]*workflow.Definition, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := other.definition(ctx, "shared", 1)
			require.NoError(t, err)
			got[i] = d
		}()
	}
	wg.Wait()
	for i := range n {
		require.Same(t, got[0], got[i], "use %d compiled its own copy", i)
	}
	require.Empty(t, other.compiling)
	require.Len(t, other.defs, 1)
}

// TestPutDefinitionKeepsTheCompile: the engine that stores a version keeps what it
// compiled for it, so the version's first input compiles nothing.
func TestPutDefinitionKeepsTheCompile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ironflow.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	e := New(Config{Store: s, DecisionTimeout: time.Second})
	body := []byte(`{"initial_state":"s","inputs":{"go":{}},"states":{"s":{"on":{"go":{"to":"s"}}}}}`)
	v, _, err := e.PutDefinition(ctx, "kept", body)
	require.NoError(t, err)
	e.mu.RLock()
	_, ok := e.defs[defKey{"kept", v.Version}]
	e.mu.RUnlock()
	require.True(t, ok)
}

// TestDecisionTimeBudget: a decision whose expressions run past the engine's time
// budget fails as the input's fault (ErrEvaluation, 422), records nothing, and a
// cheap input to the same type still passes.
//
// The slow expression also reaches the evaluation's cost limit, after about a
// millisecond on a fast machine; the budget is a fifth of that, so the budget is what
// stops it. The cheap input's decision takes microseconds, but on a busy machine its
// goroutine may be descheduled past the budget: it is tried up to three times, and an
// engine whose budget outlived one decision fails all three.
func TestDecisionTimeBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ironflow.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	e := New(Config{Store: s, DecisionTimeout: 200 * time.Microsecond})
	body := []byte(`{"initial_state":"s","inputs":{"go":{}},"states":{"s":{"on":{"go":{"to":"s",
	  "data":"{'n': input.data.r.filter(i, input.data.r.exists(j, j == i + 1)).size()}"}}}}}`)
	_, _, err = e.PutDefinition(ctx, "slow", body)
	require.NoError(t, err)

	r := make([]int, 3000)
	for i := range r {
		r[i] = -i
	}
	data, err := json.Marshal(map[string]any{"r": r[:300]})
	require.NoError(t, err)
	start := time.Now()
	_, err = e.Execute(ctx, "slow", "a", workflow.Input{Type: "go", Data: data}, ExecuteOptions{})
	require.ErrorIs(t, err, workflow.ErrEvaluation)
	require.ErrorContains(t, err, "budget of 200µs")
	require.Less(t, time.Since(start), time.Second)
	_, err = e.store.GetInstance(ctx, "slow", "a")
	require.Error(t, err, "nothing recorded")

	var out Outcome
	for range 3 {
		out, err = e.Execute(ctx, "slow", "b", workflow.Input{Type: "go", Data: json.RawMessage(`{"r":[]}`)}, ExecuteOptions{})
		if err == nil {
			break
		}
	}
	require.NoError(t, err)
	require.Equal(t, "accepted", out.Outcome)
}
